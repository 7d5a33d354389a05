"""`make mlflow-ui`: the MLflow UI over a config's store, opened on the comparison.

    python -m jest mlflow-ui --config config/tiny.yaml [--port 5000]

MLflow 3 opens an experiment on its GenAI overview, shows 10 runs in its chart view and
sorts the charts alphabetically. Before serving, this writes into the experiment:

- `mlflow.experimentKind` = custom_model_development (jest.tracking.records.EXPERIMENT_TAGS), so the
  experiment page is the runs table;
- two saved views (`mlflow.sharedViewState.<key>`, the tag the UI's "Share" button writes,
  opened by `?viewStateShareKey=<key>`), the same but for the charts' x axis:
  `jest-headline` against the training step, `jest-headline-flops` against the cumulative FLOPs
  (train+score), the metric `flops_train_score` every training row logs (MLflow's x axis "by
  metric", `globalLineChartConfig`). A JEST step costs several uniform steps (it scores a
  super-batch): compared per step it looks better than it is; per FLOP the charts show the
  compute the claims are about. Both: the headline filter, every run shown in the charts (not
  the first 10), runs grouped by arm (the seeds of one arm are one line, their mean, and each
  budget of the uniform family is an arm of its own: uniform_x0.5 ... uniform_x3), the charts
  narrowed to the held-out metrics (the search box in the chart view; clear it for all 45), and
  the table's columns: held-out loss and bits per byte, arm, method, seed, filter ratio, budget.

Then it runs `mlflow server` bound to 127.0.0.1 in its own process group and prints the URL.
SIGTERM, SIGINT or SIGHUP to this process stop the server's whole group (its workers included).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from jest.config import ConfigError

from jest.experiment import load_config
from jest.tracking.records import (EXPERIMENT_TAGS, _sqlite_path, experiment_id, experiment_name, locked_retries,
                           tracking_uri)

HOST = "127.0.0.1"  # never anything else: the store holds the whole project's records
VIEW_KEY = "jest-headline"
FLOPS_VIEW_KEY = "jest-headline-flops"
FLOPS_METRIC = "flops_train_score"   # jest.tracking.metrics: cumulative FLOPs, training + scoring, every row
HEADLINE_FILTER = "tags.group = 'headline'"
PRIMARY_METRIC = "heldout_loss"


def view_state(x_axis: str = "step") -> dict:
    """A saved view (keys of MLflow 3's ExperimentPageSearchFacetsState and ExperimentPageUIState);
    x_axis: "step", or a metric's name to plot every chart against (MLflow: xAxisKey "metric")."""
    columns = ["attributes.`Source`", f"metrics.`{PRIMARY_METRIC}`", "metrics.`heldout_bpb`",
               "tags.`arm`", "tags.`method`", "tags.`seed`", "tags.`filter_ratio`", "tags.`budget`"]
    line = ({"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""} if x_axis == "step" else
            {"xAxisKey": "metric", "lineSmoothness": 0, "selectedXAxisMetricKey": x_axis})
    return {"searchFilter": HEADLINE_FILTER, "orderByKey": "attributes.start_time", "orderByAsc": False,
            "lifecycleFilter": "Active", "selectedColumns": columns,
            "runsHiddenMode": "SHOW_ALL", "chartsSearchFilter": "heldout", "hideEmptyCharts": True,
            # RunsGroupByConfig: the seeds of an arm as one line (their average) in the charts
            "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "arm"}]},
            "useGroupedValuesInCharts": True, "globalLineChartConfig": line}


VIEWS = {VIEW_KEY: "step", FLOPS_VIEW_KEY: FLOPS_METRIC}


def prepare_experiment(uri: str, experiment: str) -> str:
    """Create the experiment if needed, tag it as model training, save the headline view; its id."""
    from mlflow.tracking import MlflowClient

    def write() -> str:
        client = MlflowClient(tracking_uri=uri)
        exp_id = experiment_id(client, uri, experiment)
        tags = {**EXPERIMENT_TAGS, "mlflow.experiment.primaryMetric.name": PRIMARY_METRIC,
                **{f"mlflow.sharedViewState.{key}": json.dumps(view_state(x)) for key, x in VIEWS.items()}}
        for key, value in tags.items():
            client.set_experiment_tag(exp_id, key, value)
        return exp_id

    return locked_retries(uri, write, tries=3)


def runs_url(port: int, exp_id: str, view: str = VIEW_KEY) -> str:
    """The runs table of the experiment, in a saved headline view (default: against steps)."""
    query = urllib.parse.urlencode({"viewStateShareKey": view})
    return f"http://{HOST}:{port}/#/experiments/{exp_id}/runs?{query}"


def server_command(uri: str, port: int) -> list[str]:
    """One worker: a local store needs no more, and fewer processes to stop."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
            "--host", HOST, "--port", str(port), "--workers", "1"]


def serve(cfg: dict, port: int) -> int:
    """Prepare the experiment, start the server, print the URL, wait; the server's exit status."""
    uri, experiment = tracking_uri(cfg), experiment_name(cfg)
    if _sqlite_path(uri) is None:
        raise ConfigError(f"the config logs to the MLflow server {uri}: open that server's UI instead "
                          f"(this command serves a local sqlite store)")
    _sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
    exp_id = prepare_experiment(uri, experiment)
    # The server gets its own process group, so one signal reaches it and every worker it forks.
    # MLflow 3's job runner (GenAI background jobs) is not needed to browse runs: off unless asked.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    server = subprocess.Popen(server_command(uri, port), start_new_session=True, env=env)
    stop_signal: list[int] = []

    def on_signal(signum, _frame):
        # no waiting here: the main thread may be inside server.wait(), whose lock is not reentrant
        stop_signal.append(signum)
        _signal_group(server.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    print(f"MLflow UI over {uri}\n  experiment {experiment}, runs table with the headline filter "
          f"({HEADLINE_FILTER}), charts against steps:\n  {runs_url(port, exp_id)}\n  the same, charts against "
          f"FLOPs (train+score):\n  {runs_url(port, exp_id, FLOPS_VIEW_KEY)}\n  (Ctrl-C stops the server)", flush=True)
    try:
        rc = server.wait()
    finally:
        stop_group(server.pid)  # workers can outlive the process that forked them
    return 128 + stop_signal[0] if stop_signal else rc


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM to a process group, SIGKILL to what is left of it after `grace_s`."""
    deadline = time.monotonic() + grace_s
    alive = _signal_group(pgid, signal.SIGTERM)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = _signal_group(pgid, 0)
    if alive:
        _signal_group(pgid, signal.SIGKILL)


def main(config: str, port: int) -> None:
    sys.exit(serve(load_config(Path(config)), port))
