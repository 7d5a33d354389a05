"""The sqlite MLflow store's file: the write lock, a health check, and MLflow's per-process caches.

Parallel jobs share one sqlite store. sqlite allows one writer at a time, and MLflow's schema
migration on a fresh file is not safe to race, so every write happens under an exclusive file lock
next to the database (`_store_lock`). Under it, the file is checked first: one that is no sqlite
database is refused at once with `MlflowStoreError`, naming the file and the rebuild that works
(jest/tracking/mlflow_rebuild.py), never retried; and a file deleted or replaced since this process last wrote
it is reopened (MLflow would keep writing to the old one).
"""
from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


class MlflowStoreError(RuntimeError):
    """The MLflow store itself is unusable (a damaged sqlite file): no retry can help, a rebuild can."""


REBUILD = "python -m jest rebuild-mlflow --config CONFIG"
SQLITE_HEADER = b"SQLite format 3\x00"
# sqlite's own messages for a file that is not (or no longer) a database
DAMAGED = ("file is not a database", "database disk image is malformed")


def damaged_store(db: Path, why: str) -> MlflowStoreError:
    return MlflowStoreError(
        f"the MLflow store {db} is damaged ({why}). MLflow only mirrors the run folders, which hold every "
        f"number: rebuild it with `{REBUILD}` (the config file you ran, e.g. config/tiny.yaml): it moves "
        f"{db.name} aside (kept, as {db.name}.replaced-<time>) and recreates every run from the run folders")


def check_store(uri: str) -> None:
    """Raise MlflowStoreError when a sqlite store's file exists but is no sqlite database (an empty or
    absent file is fine: MLflow creates the schema). Servers are not checked here."""
    db = _sqlite_path(uri)
    if db is None or not db.is_file() or db.stat().st_size == 0:
        return
    with open(db, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise damaged_store(db, f"its first bytes are {head!r}, not an SQLite header")


def _file_id(db: Path) -> tuple[int, int] | None:
    try:
        st = db.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


_STORE_FILES: dict[str, tuple[int, int] | None] = {}  # uri -> the sqlite file this process last wrote


def _forget_cached_store(uri: str) -> None:
    """MLflow keeps one store, and its sqlite engine, per URI for the life of a process (private caches,
    MLflow 3: TrackingStoreRegistry._get_store_with_resolved_uri, SqlAlchemyStore._engine_map). Once
    the file is deleted or replaced (`rm mlflow.db`, a rebuild), that engine still points at the old
    file and every write fails ("attempt to write a readonly database"): drop both caches."""
    if "mlflow" not in sys.modules:
        return
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service import utils
        for key in [k for k in SqlAlchemyStore._engine_map if k == uri]:
            SqlAlchemyStore._engine_map.pop(key).dispose()
        utils._tracking_store_registry._get_store_with_resolved_uri.cache_clear()
    except (ImportError, AttributeError):  # another MLflow: its caches differ; the write reports the error
        pass


@contextlib.contextmanager
def _store_lock(uri: str):
    """Exclusive inter-process lock for a sqlite store, whose file is checked first (check_store) and,
    when it is not the file this process last wrote, reopened; a no-op for tracking servers."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    check_store(uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if _STORE_FILES.get(uri, _file_id(db)) != _file_id(db):
                _forget_cached_store(uri)
            yield
        finally:
            _STORE_FILES[uri] = _file_id(db)
            fcntl.flock(handle, fcntl.LOCK_UN)
