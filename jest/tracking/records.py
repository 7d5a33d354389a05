"""Run records: the ID card and the MLflow mirror (metrics.jsonl: jest/tracking/metrics.py).

The files in a run folder are the source of truth. MLflow mirrors them through
`MlflowMirror.sync`, which is idempotent: it logs only the (key, step) points
MLflow does not have yet, so it can run every few steps during training, again
at the end, and once more later (`python -m jest sync-mlflow RUN_DIR`) if the
store was unreachable. MLflow trouble never stops training. A store that lost a
run gets it anew from the folder; a lost or damaged store is rebuilt from every
run folder by `python -m jest rebuild-mlflow --config CONFIG` (jest/tracking/mlflow_rebuild.py).

Parallel jobs share one sqlite store. sqlite allows one writer at a time, and
MLflow's schema migration on a fresh file is not safe to race, so every write
to a sqlite store happens under an exclusive file lock next to the database
(jest/tracking/mlflow_store.py, which also refuses a damaged file at once), with retries
on top for any other transient error.
"""
from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

from jest.config import PROJECT_ROOT, results_root
from jest.io import atomic_write_json
# metrics.jsonl lives in jest.tracking.metrics; MetricsFile and read_metrics stay importable from here
from jest.tracking.metrics import MetricsFile, metrics_digest, read_metrics, verified_rows  # noqa: F401
# the sqlite store's lock and health check; _sqlite_path, MlflowStoreError and check_store stay importable here
from jest.tracking.mlflow_store import (DAMAGED, REBUILD, MlflowStoreError, _sqlite_path, _store_lock,  # noqa: F401
                               check_store, damaged_store)
# a run's tags and colour from its arm's config (run_color stays importable from here)
from jest.tracking.run_tags import card_tags, run_color  # noqa: F401

PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "mlflow", "lm_eval", "snakemake", "datasets")


# ---------------------------------------------------------------- ID card
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict:
    from jest.model.cpu import cpu_bf16_units
    units = cpu_bf16_units()
    return {"host": socket.gethostname(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "cpu_model": units["model"], "cpu_bf16_units": [u for u in ("amx_bf16", "avx512_bf16") if units[u]]}


def write_card(path: Path, **fields) -> dict:
    """Write (or update) a run's ID card atomically; returns the merged card.

    Setting `status: finished` records the sha256 of the metrics.jsonl next to the card
    (`metrics_sha256`): the readers of a finished run (the report, the MLflow mirror) refuse a file
    changed since (jest.tracking.metrics.verified_rows). Any other status clears it: the file is being written."""
    if "status" in fields:
        fields["metrics_sha256"] = metrics_digest(Path(path).parent) if fields["status"] == "finished" else None
    card = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    card.update(fields)
    atomic_write_json(path, card)
    return card


# ---------------------------------------------------------------- MLflow
def tracking_uri(cfg: dict) -> str:
    uri = cfg["mlflow"]["tracking_uri"] or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(results_root(cfg) / 'mlflow.db').resolve()}"


def experiment_name(cfg: dict) -> str:
    return cfg["mlflow"]["experiment"] or f"jest-{cfg['name']}"


def _metric_points(rows: list[dict]) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp_ms) for every numeric, finite field of every row."""
    points = []
    for row in rows:
        ts = int(row.get("time", time.time()) * 1000)
        for key, value in row.items():
            if key in ("step", "time") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                points.append((key, float(value), int(row["step"]), ts))
    return points


def locked_retries(uri: str, action, tries: int, on_error=None):
    """`action()` under the store's write lock, up to `tries` times, with a backoff between
    tries (0.2 s, doubling, at most 5 s); `on_error(err)` after each failed try. Returns what
    `action` returns; raises the last error once every try failed."""
    delay = 0.2
    for attempt in range(tries):
        try:
            with _store_lock(uri):
                return action()
        except MlflowStoreError:
            raise  # a damaged store stays damaged: no retry
        except Exception as err:  # noqa: BLE001 - the caller decides what a final failure means
            db = _sqlite_path(uri)
            if db is not None and any(text in str(err) for text in DAMAGED):
                raise damaged_store(db, str(err).splitlines()[0][:300]) from err
            if on_error is not None:
                on_error(err)
            if attempt + 1 >= tries:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# MLflow 3 opens an experiment on its GenAI (traces) overview unless the experiment says it
# holds model training; with this tag its UI opens on the runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def source_tags(commit: str | None, entry_point: str) -> dict[str, str]:
    """MLflow's own source tags (they fill the UI's Source column): the entry point and the git
    commit (a '-dirty' suffix, uncommitted changes, goes to its own tag: MLflow wants a bare hash)."""
    tags = {"mlflow.source.name": entry_point, "mlflow.source.type": "LOCAL"}
    if commit and commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
        tags["git_dirty"] = str(commit.endswith("-dirty")).lower()
    return tags


def experiment_id(client, uri: str, experiment: str) -> str:
    """The experiment's id, created if needed; with a sqlite store its artifacts live next to
    the store, not in the working directory."""
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    artifact_location = None
    db = _sqlite_path(uri)
    if db is not None:
        artifact_location = (db.parent / "mlartifacts" / experiment).resolve().as_uri()
    return client.create_experiment(experiment, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)


def _run_in_store(client, run_id: str) -> bool:
    """Whether the store holds this run, not deleted (MLflow refuses points for a deleted run)."""
    from mlflow.exceptions import MlflowException
    try:
        return client.get_run(run_id).info.lifecycle_stage != "deleted"
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise


class MlflowMirror:
    """Mirror one run folder into one MLflow run (created on first sync, id kept in mlflow_run.json)."""

    def __init__(self, run_dir: Path, uri: str, experiment: str, run_name: str,
                 params: dict, tags: dict, retries: int | None = None):
        self.run_dir = Path(run_dir)
        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        # A sqlite store is busy at worst (parallel writers): retry patiently. MLflow's HTTP client
        # already retries each request with backoff (MLFLOW_HTTP_REQUEST_MAX_RETRIES), so a server
        # gets fewer tries of ours on top: a dead one costs ~25 s, not minutes, per sync.
        if retries is None:
            retries = 3 if uri.startswith(("http://", "https://")) else 8
        self.params, self.tags, self.retries = params, tags, retries
        self.id_file = self.run_dir / "mlflow_run.json"
        self._logged: set[tuple[str, int]] | None = None  # (key, step) known to be in MLflow
        self._down = False  # the last sync failed after all its tries: the next ones try once
        self._checked_id: str | None = None  # the recorded run id, once seen in the store
        self.recreated_from: str | None = None  # a recorded run id the store had lost (a new run replaced it)
        self.last_error: str | None = None  # why the last sync failed (for the run's card); None after a success

    # -- public -------------------------------------------------------------
    def sync(self, final_status: str | None = None, artifacts: tuple[Path, ...] = (), strict: bool = False) -> bool:
        """Push missing points (and, at the end, status and artifacts). False if MLflow failed.

        After a sync that failed all its tries, the following syncs of this mirror try once
        until one succeeds: an unreachable store slows a training run by one try per sync,
        and the `sync_mlflow` step (a fresh mirror, all its tries) reconciles afterwards.
        """
        tries = 1 if self._down else self.retries
        try:
            locked_retries(self.uri, lambda: self._sync_once(final_status, artifacts), tries,
                           on_error=self._forget_logged)
        except Exception as err:  # noqa: BLE001 - any store error is retried, then reported
            last = err
        else:
            self._down, self.last_error = False, None
            return True
        self._down, self.last_error = True, f"{type(last).__name__}: {last}"[:2000]
        if isinstance(last, MlflowStoreError):  # a re-sync into the same damaged store cannot work
            message = f"MLflow sync of {self.run_dir} failed: {last}"
        else:
            message = (f"MLflow sync of {self.run_dir} failed after {tries} tr{'y' if tries == 1 else 'ies'} "
                       f"({last!r}); the run's files are intact: re-run `python -m jest sync-mlflow {self.run_dir}`")
        if strict:
            raise RuntimeError(message) from last
        warnings.warn(message, stacklevel=2)
        return False

    def run_id(self) -> str | None:
        return json.loads(self.id_file.read_text())["run_id"] if self.id_file.exists() else None

    def _points(self) -> list[tuple[str, float, int, int]]:
        """Training rows and, once evaluated, lm-eval rows (logged at their training step)."""
        return _metric_points(read_metrics(self.run_dir / "metrics.jsonl")
                              + read_metrics(self.run_dir / "eval" / "metrics.jsonl"))

    def file_points(self) -> int:
        return len(self._points())

    def missing_points(self) -> int:
        """Points of metrics.jsonl that MLflow does not hold (read back fresh from the store)."""
        points = self._points()
        with _store_lock(self.uri):
            known = self._known_points(self._client(), self.run_id(), {p[0] for p in points})
        return sum((k, s) not in known for k, _, s, _ in points)

    # -- internals ------------------------------------------------------------
    def _client(self):
        from mlflow.tracking import MlflowClient
        return MlflowClient(tracking_uri=self.uri)

    def _forget_logged(self, _err: Exception) -> None:
        self._logged = None  # re-read what MLflow holds before the next try
        self._checked_id = None  # and whether it still holds the run (the store may have been replaced)

    def _run_id(self, client) -> str:
        if self.id_file.exists():
            saved = json.loads(self.id_file.read_text())
            if saved.get("tracking_uri") == self.uri:
                if saved["run_id"] == self._checked_id or _run_in_store(client, saved["run_id"]):
                    self._checked_id = saved["run_id"]
                    return saved["run_id"]
                # The store lost the run (deleted, replaced by an empty one, or the run deleted in the UI):
                # the folder holds every point, so mirror it into a new run, and say so.
                warnings.warn(f"MLflow run {saved['run_id']} recorded in {self.id_file} is not in the store {self.uri} "
                              f"(the store was deleted or replaced): mirroring {self.run_dir} into a new run. To "
                              f"recreate every run of a config at once: `{REBUILD}`", stacklevel=2)
                self.recreated_from, self._logged = saved["run_id"], None
        from mlflow.entities import Param
        tags = {**source_tags(self.tags.get("git_commit"), f"python -m jest train ({self.run_name})"),
                "mlflow.runColor": run_color(self.tags.get("arm"), self.tags.get("method"), self.tags.get("budget")),
                **self.tags}
        run = client.create_run(experiment_id(client, self.uri, self.experiment), run_name=self.run_name,
                                tags={k: str(v) for k, v in tags.items()}, start_time=self._start_time_ms())
        params = [Param(k, str(v)[:6000]) for k, v in sorted(self.params.items())]
        for i in range(0, len(params), 100):
            client.log_batch(run.info.run_id, params=params[i:i + 100])
        atomic_write_json(self.id_file, {"run_id": run.info.run_id, "tracking_uri": self.uri,
                                         "experiment": self.experiment})
        self._checked_id, self._logged = run.info.run_id, None
        return run.info.run_id

    def _known_points(self, client, run_id: str, keys: set[str]) -> set[tuple[str, int]]:
        known = set()
        for key in keys:
            known.update((key, m.step) for m in client.get_metric_history(run_id, key))
        return known

    def _sync_once(self, final_status: str | None, artifacts: tuple[Path, ...]) -> None:
        from mlflow.entities import Metric
        client = self._client()
        run_id = self._run_id(client)
        points = self._points()
        if self._logged is None:
            self._logged = self._known_points(client, run_id, {p[0] for p in points})
        new = [p for p in points if (p[0], p[2]) not in self._logged]
        for i in range(0, len(new), 1000):  # MLflow accepts at most 1000 metrics per batch
            chunk = new[i:i + 1000]
            client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, s, ts in chunk])
            self._logged.update((k, s) for k, _, s, _ in chunk)
        for path in artifacts:
            if Path(path).exists():
                client.log_artifact(run_id, str(path))
        if final_status:
            client.set_terminated(run_id, status=final_status, end_time=self._end_time_ms(client, run_id))

    def _start_time_ms(self) -> int | None:
        """When training started (the run is created at its first sync, some steps later):
        the first row's time minus its training wall time; None (now) without a row."""
        rows = read_metrics(self.run_dir / "metrics.jsonl")
        if rows and isinstance(rows[0].get("time"), (int, float)) and isinstance(rows[0].get("wall_time"), (int, float)):
            return int((rows[0]["time"] - rows[0]["wall_time"]) * 1000)
        return None

    def _end_time_ms(self, client, run_id: str) -> int | None:
        """When the run ended, such that MLflow's Duration is its training time: start plus the
        training wall time of the last row (checkpointed, so a resumed run does not count the time
        it was down). A later sync (after the evaluation, `sync_mlflow`) must not move it to "now"."""
        rows = read_metrics(self.run_dir / "metrics.jsonl")
        wall = rows[-1].get("wall_time") if rows else None
        if not isinstance(wall, (int, float)) or not math.isfinite(wall):
            return None  # no training row: MLflow uses the current time
        return client.get_run(run_id).info.start_time + int(wall * 1000)


def mirror_run(run_dir: Path, tracking_uri_override: str | None = None) -> tuple[MlflowMirror, bool, int | None]:
    """Mirror a finished (or failed) run folder into MLflow with all its tries: the training rows,
    the lm-eval rows once evaluated, the card and the final status. The MLflow run is created here
    when training did not mirror live (`mlflow.live: false`) or its store was down, with the params
    and tags the trainer wrote into the card. Returns (mirror, ok, points MLflow lacks)."""
    card = json.loads((Path(run_dir) / "card.json").read_text())
    verified_rows(Path(run_dir), card)  # MetricsError: an edited or damaged metrics.jsonl is not mirrored
    cfg = card["config"]
    mirror = MlflowMirror(Path(run_dir), tracking_uri_override or tracking_uri(cfg), experiment_name(cfg), card["run"],
                          card.get("mlflow_params") or {}, card_tags(card))
    status = {"finished": "FINISHED", "failed": "FAILED"}.get(card.get("status"))
    ok = mirror.sync(final_status=status, artifacts=(Path(run_dir) / "card.json", Path(run_dir) / "metrics.jsonl"))
    missing = mirror.missing_points() if ok else None
    return mirror, ok and missing == 0, missing


def write_receipt(path: Path, mirror: MlflowMirror, missing: int) -> None:
    """The workflow's proof that MLflow holds every point of the run (runs/<run>/mlflow_synced.json)."""
    atomic_write_json(Path(path), {"run_id": mirror.run_id(), "tracking_uri": mirror.uri,
                                   "experiment": mirror.experiment, "points": mirror.file_points(),
                                   "missing": missing})

