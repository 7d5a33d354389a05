"""Small file helpers: atomic writes (a killed job never leaves a half file) and hashes."""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


class DiskFullError(OSError):
    """A write failed because the disk (or the user's quota) is full; the message names the folder and a fix."""


def disk_full(path: Path, needed: int, err: OSError) -> DiskFullError | None:
    """The DiskFullError `err` means, or None for another OSError. A full disk shows as ENOSPC (EDQUOT for
    a quota) or, from numpy's array.tofile, as a bare short write: "35328 requested and 16320 written"."""
    short_write = err.errno is None and "requested and" in str(err) and "written" in str(err)
    if err.errno not in (errno.ENOSPC, errno.EDQUOT) and not short_write:
        return None
    folder = Path(path).parent
    try:
        free = f"{shutil.disk_usage(folder).free:,} bytes are free there now"
    except OSError:
        free = "its free space is unknown"
    return DiskFullError(err.errno or errno.ENOSPC,
                         f"the disk holding {folder} is full: writing {Path(path).name} needed {needed:,} bytes and "
                         f"failed ({err}); {free}. Free space on that disk (or raise the quota), or point "
                         "'results_dir' (and 'cache_dir') at a larger disk, then run the same command again")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file next to `path`, fsync it, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        full = disk_full(path, len(data), err)
        if full is None:
            raise
        raise full from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# (path, size, mtime, ctime, inode) -> sha256, for this process.
_HASHED: dict[tuple, str] = {}
RACY_S = 2.0


def sha256_cached(path: Path, stamp: Path | None = None) -> str:
    """sha256 of `path`, hashed again only when its size, mtime, ctime or inode changed: remembered for
    this process and, with `stamp`, in that JSON file (path -> stat and sha256) for later processes.
    mtime alone would not do: `cp -p`, `rsync -a` and `tar x` put an old mtime back on an edited file;
    the kernel sets ctime on every write and every mtime change, so an edited file is always hashed
    again. A file changed in the last 2 s is not remembered (as git's "racily clean" entries): the
    kernel's ctime clock ticks coarsely, and an edit in the same tick as the hash would keep every field."""
    resolved = str(Path(path).resolve())
    st = Path(path).stat()
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    memo = (resolved, *key)
    if stamp is None and memo in _HASHED:
        return _HASHED[memo]
    try:
        recorded = json.loads(stamp.read_text()) if stamp is not None and stamp.is_file() else {}
    except (OSError, ValueError):
        recorded = {}
    entry = recorded.get(resolved)
    if entry and entry.get("stat") == key:
        return entry["sha256"]
    digest = _HASHED.get(memo) or sha256_file(path)
    if time.time() - st.st_ctime > RACY_S:
        _HASHED[memo] = digest
        if stamp is not None:
            recorded = {p: e for p, e in recorded.items() if Path(p).exists()}  # forget removed files
            recorded[resolved] = {"stat": key, "sha256": digest}
            try:
                atomic_write_json(stamp, recorded)
            except OSError:
                pass  # a read-only cache: the stamp only saves hashing next time
    return digest


def fetch_verified(target: Path, sha256: str, download, on_mismatch, staging_prefix: str) -> Path:
    """Return `target` once its sha256 is `sha256`, fetching it with `download(staging_dir) -> file`.

    A cached file with the wrong sha256 (truncated download, tampering) is deleted
    and fetched again once; if the fresh download is also wrong the pin or the
    registry is at fault, retrying would not help, and `on_mismatch(got_sha)`
    gives the error to raise. The download goes to a staging folder next to
    `target` and is moved in place only when verified.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        cached_sha = sha256_file(target)
        if cached_sha == sha256:
            return target
        log.warning("cached %s has sha256 %s, expected %s: deleting and re-fetching", target, cached_sha, sha256)
        target.unlink()
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix, dir=target.parent))
    try:
        fetched = download(staging)
        fetched_sha = sha256_file(fetched)
        if fetched_sha != sha256:
            raise on_mismatch(fetched_sha)
        os.replace(fetched, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
