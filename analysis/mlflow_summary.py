"""The report as one MLflow run, next to the training runs it compares.

`log_summary` logs, into the config's experiment ("jest-<name>", the store of
jest.tracking.records: `mlflow.tracking_uri`, else $MLFLOW_TRACKING_URI, else
sqlite:///<results>/mlflow.db), one run tagged kind=summary (and method=summary,
so `tags.method = 'jest'` / `'uniform'` still select only training runs) with

- metrics (one log_batch, step 0): per compared arm (JEST, the controls, the ablations of an
  all-arms report), its iso-loss compute multiplier `multiplier_iterations.<arm>`,
  `multiplier_examples.<arm>`, `multiplier_flops_<accounting>.<arm>` (accounting: train,
  train_score, total), each with `..._ci_low` / `..._ci_high` (a bound's open end is left out),
  and from the first-crossing view `reached.<arm>` (1 / 0) and `T_j.<arm>`. (Before issue #29 these
  were `speedup_*`, for the JEST arms and ablations only: the controls were missing.)
- tags: config, arm scope, `group` (headline, or ablation for the all-arms report), baseline arm,
  primary metric, the claim verdicts, the git commits (and MLflow's source tags when there is one);
- artifacts: summary.json, report.md, report.html and figures/.

It also tags every training run of the report with `group` = headline | ablation,
so that `tags.group = 'headline'` selects the headline comparison in the UI.

One summary run per report folder: its id is kept in <out>/mlflow_run.json and a
rebuilt report logs into the same run again (newer metric values win, artifacts are
replaced). MLflow trouble never fails the report: it is retried, then a warning.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

from jest.model.flops import ACCOUNTINGS
from jest.io import atomic_write_json
from jest.tracking.records import experiment_id, experiment_name, locked_retries, source_tags, tracking_uri

ID_FILE = "mlflow_run.json"
ARTIFACTS = ("summary.json", "report.md", "report.html")


def store_of(summary: dict, results_dir: Path) -> tuple[str, str]:
    """(tracking URI, experiment) the training runs of this report were logged to."""
    resolved = summary.get("config", {}).get("resolved") or {}
    mlflow_cfg = {"tracking_uri": None, "experiment": None, **(resolved.get("mlflow") or {})}
    cfg = {"mlflow": mlflow_cfg, "results_dir": str(Path(results_dir).resolve()),
           "name": summary.get("config", {}).get("name") or resolved.get("name", "unknown")}
    return tracking_uri(cfg), experiment_name(cfg)


def summary_metrics(summary: dict) -> dict[str, float]:
    """Every compared arm's multipliers as flat MLflow metrics (non-finite values left out)."""
    out: dict[str, float] = {}

    def put(key: str, value) -> None:
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)

    rows = [*summary.get("headline", []), *summary.get("control_arms", []), *summary.get("ablations", [])]
    for row in rows:
        arm = row["arm"]
        multipliers = {"iterations": row.get("iterations"), "examples": row.get("examples")}
        multipliers.update({f"flops_{ACCOUNTINGS[a].removeprefix('flops_')}": m
                            for a, m in (row.get("flops") or {}).items() if a in ACCOUNTINGS})
        for name, m in multipliers.items():
            if not m:
                continue
            put(f"multiplier_{name}.{arm}", m.get("value"))
            put(f"multiplier_{name}_ci_low.{arm}", m.get("ci_low"))
            put(f"multiplier_{name}_ci_high.{arm}", m.get("ci_high"))
        put(f"reached.{arm}", bool(row.get("reached")))
        put(f"T_j.{arm}", row.get("T_j"))
    return out


def summary_tags(summary: dict) -> dict[str, str]:
    tags = {"kind": "summary", "method": "summary", "scale": summary.get("config", {}).get("name"),
            "arm_scope": summary.get("arm_scope", "headline"), "baseline": summary.get("baseline", {}).get("arm"),
            "primary_metric": summary.get("primary_metric", {}).get("name"),
            "schema_version": summary.get("schema_version"),
            "git_commits": ",".join(summary.get("provenance", {}).get("git_commits", [])),
            "headline_arms": ",".join(r["arm"] for r in summary.get("headline", [])),
            "control_arms": ",".join(r["arm"] for r in summary.get("control_arms", [])),
            "ablation_arms": ",".join(summary.get("ablation_arms", []))}
    # the UI's headline filter (tags.group = 'headline') lists the report next to its runs
    tags["group"] = "headline" if tags["arm_scope"] == "headline" else "ablation"
    commits = summary.get("provenance", {}).get("git_commits", [])
    tags.update(source_tags(commits[0] if len(commits) == 1 else None, "python -m analysis.report"))
    for claim in summary.get("claims", []):
        tags[f"verdict.{claim['id']}"] = claim["verdict"]
    return {k: str(v)[:5000] for k, v in tags.items() if v is not None}


def _run_groups(summary: dict, runs_dir: Path | None, uri: str) -> dict[str, str]:
    """MLflow run id -> group, for the report's training runs logged to this store."""
    if runs_dir is None:
        return {}
    ablations = set(summary.get("ablation_arms", []))
    out = {}
    for row in summary.get("runs", []):
        id_file = Path(runs_dir) / row["run"] / ID_FILE
        if id_file.exists():
            saved = json.loads(id_file.read_text())
            if saved.get("tracking_uri") == uri:
                out[saved["run_id"]] = "ablation" if row["arm"] in ablations else "headline"
    return out


def _log_once(summary: dict, out_dir: Path, uri: str, experiment: str, runs_dir: Path | None) -> str:
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    id_file = out_dir / ID_FILE
    run_id = None
    if id_file.exists():
        saved = json.loads(id_file.read_text())
        if saved.get("tracking_uri") == uri and saved.get("experiment") == experiment:
            try:
                run = client.get_run(saved["run_id"])
                run_id = run.info.run_id if run.info.lifecycle_stage == "active" else None
            except Exception:  # noqa: BLE001 - the run is gone (another store, deleted): make a new one
                run_id = None
    tags = summary_tags(summary)
    if run_id is None:
        # the experiment exactly as the training runs create it (artifacts next to a sqlite store)
        run_id = client.create_run(experiment_id(client, uri, experiment), run_name=f"summary-{tags['arm_scope']}", tags=tags).info.run_id
        atomic_write_json(id_file, {"run_id": run_id, "tracking_uri": uri, "experiment": experiment})
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in sorted(summary_metrics(summary).items())]
    tag_list = [RunTag(k, v) for k, v in tags.items()]
    for i in range(0, max(len(metrics), len(tag_list)), 100):   # MLflow: <= 1000 metrics, <= 100 tags a batch
        client.log_batch(run_id, metrics=metrics[i:i + 100], tags=tag_list[i:i + 100])
    for name in ARTIFACTS:
        if (out_dir / name).exists():
            client.log_artifact(run_id, str(out_dir / name))
    if (out_dir / "figures").is_dir():
        client.log_artifacts(run_id, str(out_dir / "figures"), "figures")
    for train_run, group in _run_groups(summary, runs_dir, uri).items():
        client.log_batch(train_run, tags=[RunTag("group", group)])
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def log_summary(summary: dict, out_dir: Path, results_dir: Path, runs_dir: Path | None = None, *,
                retries: int | None = None) -> str | None:
    """Log the report in `out_dir` as the MLflow summary run; its run id, or None after a warning.

    retries: tries in all (default 3 for a sqlite store; 2 for a server, whose client already retries
    each request: a dead server then costs under a minute, not many)."""
    out_dir = Path(out_dir)
    uri, experiment = store_of(summary, results_dir)
    if retries is None:
        retries = 2 if uri.startswith(("http://", "https://")) else 3
    try:
        return locked_retries(uri, lambda: _log_once(summary, out_dir, uri, experiment, runs_dir), retries)
    except Exception as err:  # noqa: BLE001 - MLflow trouble must not fail the report
        last = err
    warnings.warn(f"MLflow: the report in {out_dir} was not logged to {uri} ({last!r}); the report files are "
                  f"complete; re-run `python -m analysis.report ...` to log it", stacklevel=2)
    return None
