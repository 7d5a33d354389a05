"""Debian packages: fetch with ``apt-get download``, verify, cache, read members in pure Python.

Debian's mirror keeps only the current version of a package, so a pinned
version can vanish. The build must not break then: the current version is
fetched instead, its version and sha256 are recorded next to the cached file
(``<package>.resolved.json``) and in the data manifest, and the log says so.
Reading a ``.deb`` needs no dpkg: it is an ``ar`` archive holding
``data.tar.xz`` (or .gz/.bz2), which :mod:`tarfile` streams.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jest.data.errors import ChecksumMismatchError, SourceFetchError
from jest.io import atomic_write_json, fetch_verified, sha256_file

log = logging.getLogger(__name__)

# Looked up at call time so tests can point it at a fixture script.
APT_GET_EXECUTABLE = "apt-get"
APT_TIMEOUT_S = 900


@dataclass(frozen=True)
class DebPin:
    """One Debian binary package at a pinned version with the sha256 of its ``.deb``."""

    package: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return deb_file_name(self.package, self.version)


@dataclass(frozen=True)
class FetchedDeb:
    """What was actually read: the pin, or the current version when the pin was gone."""

    path: Path
    package: str
    version: str
    sha256: str
    pinned: bool


def deb_file_name(package: str, version: str) -> str:
    """The name ``apt-get download`` gives: an epoch colon is written as ``%3a``."""
    return f"{package}_{version.replace(':', '%3a')}_all.deb"


def _version_of(file_name: str) -> str:
    parts = file_name[: -len(".deb")].split("_")
    return parts[1].replace("%3a", ":") if len(parts) == 3 else "unknown"


def _apt_download(spec: str, staging: Path) -> Path:
    try:
        result = subprocess.run([APT_GET_EXECUTABLE, "download", spec], cwd=staging, capture_output=True,
                                text=True, timeout=APT_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise SourceFetchError(f"'{APT_GET_EXECUTABLE}' was not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceFetchError(f"'apt-get download {spec}' did not finish within {APT_TIMEOUT_S} s") from exc
    debs = sorted(staging.glob("*.deb"))
    if result.returncode != 0 or len(debs) != 1:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise SourceFetchError(f"'apt-get download {spec}' exited with code {result.returncode}:\n{tail}")
    return debs[0]


def _no_apt_error(pin: DebPin, deb_dir: Path) -> SourceFetchError:
    return SourceFetchError(
        f"cannot fetch Debian package {pin.package}: '{APT_GET_EXECUTABLE}' is not available "
        f"(macOS, or no apt). This source is only needed by the opt-in 'data.preset: large' corpus. "
        f"Place the file {pin.file_name} (sha256 {pin.sha256}; from any Debian 12 mirror, "
        f"pool/main/.../{pin.package}/) in {deb_dir}, or switch back to the default preset.")


def _resolved_record(deb_dir: Path, package: str) -> Path:
    return deb_dir / f"{package}.resolved.json"


def _cached_fallback(pin: DebPin, deb_dir: Path) -> FetchedDeb | None:
    """A current version fetched earlier because the pin was gone, if it is still intact."""
    record = _resolved_record(deb_dir, pin.package)
    if not record.exists():
        return None
    meta = json.loads(record.read_text())
    path = deb_dir / meta["file"]
    if path.exists() and sha256_file(path) == meta["sha256"]:
        return FetchedDeb(path, pin.package, meta["version"], meta["sha256"], pinned=False)
    return None


def fetch_deb(pin: DebPin, cache_dir: Path) -> FetchedDeb:
    """Return the verified ``.deb`` of ``pin`` under ``cache_dir/debian``, or the current version.

    A pinned file already in the cache (fetched or placed by hand) is used as is.
    """
    deb_dir = Path(cache_dir) / "debian"
    deb_dir.mkdir(parents=True, exist_ok=True)
    target = deb_dir / pin.file_name
    if target.exists() and sha256_file(target) == pin.sha256:
        return FetchedDeb(target, pin.package, pin.version, pin.sha256, pinned=True)
    fallback = _cached_fallback(pin, deb_dir)
    if fallback is not None:
        log.warning("%s: pinned %s is gone from the mirror; using the recorded current version %s (sha256 %s)",
                    pin.package, pin.version, fallback.version, fallback.sha256)
        return fallback
    if shutil.which(APT_GET_EXECUTABLE) is None:
        raise _no_apt_error(pin, deb_dir)
    try:
        path = fetch_verified(
            target, pin.sha256, lambda staging: _apt_download(f"{pin.package}={pin.version}", staging),
            lambda got: ChecksumMismatchError(
                f"sha256 mismatch for Debian package {pin.package}={pin.version}:\n  expected {pin.sha256}\n"
                f"  got      {got}\nDelete {target} and retry; if it persists, fix the pin in "
                "jest/data/catalogue.py."),
            staging_prefix=".apt-download-")
        return FetchedDeb(path, pin.package, pin.version, pin.sha256, pinned=True)
    except SourceFetchError as exc:
        log.warning("%s=%s could not be fetched (%s); taking the current version instead",
                    pin.package, pin.version, str(exc).splitlines()[0])
    staging = Path(deb_dir / f".apt-current-{pin.package}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        fetched = _apt_download(pin.package, staging)
        path = deb_dir / fetched.name
        fetched.replace(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sha = sha256_file(path)
    version = _version_of(path.name)
    atomic_write_json(_resolved_record(deb_dir, pin.package),
                      {"package": pin.package, "pinned_version": pin.version, "version": version,
                       "sha256": sha, "file": path.name})
    log.warning("%s: pinned version %s is gone from the mirror; took the current version %s (sha256 %s); "
                "recorded in the data manifest", pin.package, pin.version, version, sha)
    return FetchedDeb(path, pin.package, version, sha, pinned=False)


def _data_member(deb: Path) -> tuple[int, int, str]:
    """Offset, size and name of the ``data.tar.*`` member of the ``ar`` archive ``deb``."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise SourceFetchError(f"{deb} is not a Debian package (no ar header); delete it and fetch again")
        while header := f.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58])
            if name.startswith("data.tar"):
                return f.tell(), size, name
            f.seek(size + (size & 1), 1)
    raise SourceFetchError(f"{deb} has no data.tar member; delete it and fetch again")


class _Window:
    """A read-only file view of ``size`` bytes from ``offset`` (the tar inside the ar)."""

    def __init__(self, path: Path, offset: int, size: int):
        self._f = open(path, "rb")
        self._f.seek(offset)
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


def iter_deb_members(deb: Path, name_pattern: str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path without leading './', bytes)`` of regular files matching ``name_pattern``, in archive order."""
    offset, size, member = _data_member(deb)
    mode = {"xz": "r|xz", "gz": "r|gz", "bz2": "r|bz2", "tar": "r|"}.get(member.rsplit(".", 1)[-1])
    if mode is None:
        raise SourceFetchError(f"{deb}: unsupported compression of {member}")
    pattern = re.compile(name_pattern)
    window = _Window(deb, offset, size)
    try:
        with tarfile.open(fileobj=window, mode=mode) as archive:  # type: ignore[arg-type]
            for info in archive:
                name = info.name.removeprefix("./")
                if info.isfile() and pattern.fullmatch(name):
                    handle = archive.extractfile(info)
                    if handle is not None:
                        yield name, handle.read()
    finally:
        window.close()
