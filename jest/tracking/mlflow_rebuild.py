"""Rebuild the MLflow store from the run folders (issue #30).

    python -m jest rebuild-mlflow --config CONFIG

MLflow only mirrors results/: a lost or damaged store is recreated from the folders, never
repaired. With a sqlite store (the default, results/mlflow.db) the file, when present, is moved
aside first (kept as mlflow.db.replaced-<UTC time>: delete it once the new store looks right), so
the same command serves a deleted store, a damaged one and a healthy one that should start over.
With a tracking server, the runs the folders recorded are deleted there first (when present).

Then every run folder under <results>/*/runs/ with a card (every config that mirrors into this
store, not only CONFIG's: they share it), and every reference that was mirrored (it has an
mlflow_run.json), becomes a new MLflow run with all its points, params, tags, status and
artifacts (jest.tracking.records.mirror_run). The stale records are replaced: each folder's
mlflow_run.json gets the new run id, and a receipt (mlflow_synced.json) that existed is written
again for the new run. Snakemake then sees the receipts newer than the report and re-runs it,
which logs the report's summary run again (analysis/mlflow_summary.py).

A run whose metrics.jsonl changed after it finished, or is damaged, is not mirrored: it is named,
with the training job that writes it again (jest.tracking.metrics.verified_rows); the command exits 1.
"""
from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path

from jest.config import results_root
from jest.tracking.metrics import MetricsError
from jest.tracking.records import _sqlite_path, mirror_run, tracking_uri, write_receipt

ID_FILE, RECEIPT = "mlflow_run.json", "mlflow_synced.json"


def run_folders(cfg: dict) -> tuple[list[Path], list[str]]:
    """The folders to mirror into CONFIG's store, and a line for each folder left out (another store)."""
    root = results_root(cfg)
    mine = cfg["mlflow"]["tracking_uri"]
    folders, skipped = [], []
    cards = sorted(root.glob("*/runs/*/card.json")) + sorted(root.glob("*/references/*/card.json"))
    for card_path in cards:
        folder = card_path.parent
        if folder.parent.name == "references" and not (folder / ID_FILE).exists():
            continue  # a reference trained with mlflow.live: false was never in MLflow
        try:
            theirs = json.loads(card_path.read_text())["config"]["mlflow"]["tracking_uri"]
        except (ValueError, KeyError, TypeError) as err:
            skipped.append(f"{folder}: unreadable card ({err!r})")
            continue
        # configs that name no store all mirror into the sqlite file under this same results root
        if theirs != mine:
            skipped.append(f"{folder}: mirrors into {theirs or 'the default sqlite store'}, not {mine or 'this one'}")
            continue
        folders.append(folder)
    return folders, skipped


def set_store_aside(uri: str) -> Path | None:
    """Move a sqlite store's file aside (kept, never deleted); where it went, or None."""
    db = _sqlite_path(uri)
    if db is None or not db.exists():
        return None
    aside = db.with_name(f"{db.name}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    with open(f"{db}.lock", "a") as handle:  # the writers' lock (jest.tracking.records._store_lock): none is mid-write
        fcntl.flock(handle, fcntl.LOCK_EX)
        db.rename(aside)
    return aside


def _forget_server_run(uri: str, folder: Path) -> None:
    """A tracking server keeps the old run: delete it (when there) so that the rebuild does not double it."""
    saved = json.loads((folder / ID_FILE).read_text()) if (folder / ID_FILE).exists() else {}
    if saved.get("tracking_uri") != uri:
        return
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    try:
        MlflowClient(tracking_uri=uri).delete_run(saved["run_id"])
    except MlflowException:
        pass  # already gone: nothing to double


def rebuild(cfg: dict, log=print) -> int:
    """Recreate CONFIG's MLflow store from the run folders; returns how many folders failed."""
    uri = tracking_uri(cfg)
    aside = set_store_aside(uri)
    if aside is not None:
        log(f"moved the old store aside: {aside} (delete it once the rebuilt store looks right)")
    folders, skipped = run_folders(cfg)
    for line in skipped:
        log(f"left out  {line}")
    failed, rewritten = [], 0
    for folder in folders:
        had_receipt = (folder / RECEIPT).exists()
        if _sqlite_path(uri) is None:
            _forget_server_run(uri, folder)
        # stale: both name a run of the old store
        (folder / ID_FILE).unlink(missing_ok=True)
        (folder / RECEIPT).unlink(missing_ok=True)
        try:
            mirror, ok, missing = mirror_run(folder, uri)
        except MetricsError as err:
            failed.append(f"{folder}: {err}")
            log(f"REFUSED  {folder}: {err}")
            continue
        if ok and had_receipt:
            write_receipt(folder / RECEIPT, mirror, missing)
            rewritten += 1
        if not ok:
            failed.append(f"{folder}: MLflow lacks {missing} points ({mirror.last_error})")
        log(f"{'rebuilt ' if ok else 'FAILED  '} {folder} -> run {mirror.run_id()} ({mirror.file_points()} points"
            f"{', receipt rewritten' if ok and had_receipt else ''})")
    log(f"{len(folders) - len(failed)} of {len(folders)} run folders mirrored into {uri}"
        + ("; `snakemake` (same config) re-runs the report, its receipts being newer: that logs the report's "
           "summary run again" if rewritten else ""))
    if failed:
        log("not mirrored (fix each, then run this command again):\n  " + "\n  ".join(failed))
    return len(failed)
