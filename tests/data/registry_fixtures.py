"""Tiny Debian packages and format fixtures for the registry-corpus tests (no apt, no network)."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from pathlib import Path


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo("./" + name)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A real ``.deb`` (ar archive: debian-binary, control.tar.xz, data.tar.xz) holding ``files``."""
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz({"control": b"Package: x\n"})),
               ("data.tar.xz", _tar_xz(files))]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(value: int) -> str:
    out = ""
    while True:
        out = _B64[value % 64] + out
        value //= 64
        if not value:
            return out


def dictd_files(entries: list[tuple[str, str]], stem: str = "demo") -> dict[str, bytes]:
    """A dictd database (``.index`` + gzip ``.dict.dz``) with a metadata entry first."""
    data, index = b"", []
    for headword, text in [("00-database-info", "metadata, not prose")] + entries:
        raw = (text + "\n").encode()
        index.append(f"{headword}\t{_b64(len(data))}\t{_b64(len(raw))}")
        data += raw
    return {f"usr/share/dictd/{stem}.index": ("\n".join(sorted(index)) + "\n").encode(),
            f"usr/share/dictd/{stem}.dict.dz": gzip.compress(data, mtime=0)}


def sword_files(books: list[str]) -> dict[str, bytes]:
    """A SWORD zText module: one zlib block per book in ``nt.bzz``, indexed by ``nt.bzs``."""
    bzs, bzz = b"", b""
    for osis in books:
        block = zlib.compress(osis.encode())
        bzs += struct.pack("<III", len(bzz), len(block), len(osis.encode()))
        bzz += block
    base = "usr/share/sword/modules/texts/ztext/demo/"
    return {base + "nt.bzs": bzs, base + "nt.bzz": bzz}


def wordnet_line(offset: int, words: list[str], gloss: str) -> str:
    lemmas = " ".join(f"{w.replace(' ', '_')} 0" for w in words)
    return f"{offset:08d} 03 n {len(words):02x} {lemmas} 000 | {gloss}  "
