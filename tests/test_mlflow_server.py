"""MLflow as users compare runs: a real `mlflow server` (bound to 127.0.0.1) over a store filled by
real run records, queried through its REST API.

The runs: the smoke DAG's, when this checkout has them (results/smoke/runs, from
`snakemake --configfile config/smoke.yaml`), else the committed real records of two tiny reference
runs (tests/analysis/data/tiny_runs: uniform_s0 and jest_f0.8_s0). They are copied to a temporary
results folder, mirrored into a fresh sqlite store through jest.tracking.records.MlflowMirror (the trainer's
path), then the report is built and logged as the summary run (analysis.mlflow_summary), as the
analyze rule does. The test asserts that baseline and JEST runs are one tag filter apart, with their
metrics; that the summary run (tags.kind = 'summary') holds the headline speedups and the report
files; and that the server listens on 127.0.0.1 only.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from analysis.mlflow_summary import log_summary, store_of
from analysis.report import build_report
from jest.config import PROJECT_ROOT
from jest.tracking.records import MlflowMirror, experiment_name, read_metrics
from jest.tracking.run_tags import arm_tags

FIXTURE_RUNS = PROJECT_ROOT / "tests" / "analysis" / "data" / "tiny_runs"
START_TIMEOUT_S = int(os.environ.get("JEST_TEST_SERVER_START_S", "90"))  # ~20 s on a loaded 2-core machine


def _source_runs() -> tuple[Path, str]:
    """(runs folder, where from): the smoke DAG's finished runs if present, else the committed records."""
    smoke = PROJECT_ROOT / "results" / "smoke" / "runs"
    cards = [json.loads(p.read_text()) for p in sorted(smoke.glob("*/card.json"))] if smoke.is_dir() else []
    policies = {c["config"]["arms"][c["arm"]]["policy"] for c in cards if c.get("status") == "finished"}
    if {"uniform", "jest"} <= policies:
        return smoke, "smoke DAG results"
    return FIXTURE_RUNS, "committed tiny run records"


def _pick(runs: Path) -> list[Path]:
    """One finished uniform run and one finished JEST run (seed 0 first)."""
    chosen = {}
    for card_path in sorted(runs.glob("*/card.json"), key=lambda p: (not p.parent.name.endswith("_s0"), p)):
        card = json.loads(card_path.read_text())
        policy = card["config"]["arms"][card["arm"]]["policy"]
        if card.get("status") == "finished" and policy not in chosen:
            chosen[policy] = card_path.parent
    return [chosen["uniform"], chosen["jest"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Run folders mirrored into a fresh sqlite store, and the report logged as the summary run."""
    source, origin = _source_runs()
    picked = _pick(source)
    name = json.loads((picked[0] / "card.json").read_text())["config"]["name"]
    results = tmp_path_factory.mktemp("mlflow") / "results"
    runs = results / name / "runs"
    for run in picked:
        (runs / run.name).mkdir(parents=True)
        for f in ("card.json", "metrics.jsonl"):
            shutil.copy(run / f, runs / run.name / f)
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)      # the store is the results folder's sqlite file
    try:
        uri = f"sqlite:///{(results / 'mlflow.db').resolve()}"
        for run in sorted(runs.iterdir()):
            card = json.loads((run / "card.json").read_text())
            arm = card["config"]["arms"][card["arm"]]
            tags = {"method": arm["policy"], "kind": "learner", "arm": card["arm"], "seed": card["seed"],
                    "scale": name, **arm_tags(arm["policy"], arm), "git_commit": card["git_commit"]}  # as the trainer
            mirror = MlflowMirror(run, uri, experiment_name(card["config"]), card["run"],
                                  {"arm": card["arm"], "policy": arm["policy"]}, tags)
            assert mirror.sync(final_status="FINISHED", strict=True)
        out = results / name / "report"
        summary = build_report(results, name, out, n_boot=50)
        assert store_of(summary, results) == (uri, f"jest-{name}")
        summary_run = log_summary(summary, out, results, runs)
        assert summary_run is not None
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return {"uri": uri, "experiment": f"jest-{name}", "runs": runs, "summary": summary, "out": out,
            "results": results, "summary_run": summary_run, "origin": origin}


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """`make mlflow-ui`'s command (python -m jest mlflow-ui) over the store, on a free port of
    127.0.0.1, with the URL it prints."""
    port = _free_port()
    tmp = tmp_path_factory.mktemp("server")
    config, log = tmp / "config.yaml", tmp / "server.log"
    config.write_text(f"name: {store['experiment'].removeprefix('jest-')}\nresults_dir: {store['results']}\n")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "jest", "mlflow-ui", "--config", str(config), "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"python -m jest mlflow-ui exited at start (rc {proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.time() > deadline:
                    pytest.skip(f"mlflow server did not answer within {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        # two saved views: charts against steps (first), against FLOPs train+score
        url, flops_url = [w for w in log.read_text().split() if w.startswith("http://") and "/#/experiments/" in w]
        yield {"base": base, "port": port, "proc": proc, "url": url, "flops_url": flops_url, "log": log}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)     # the wrapper's own group; it stops the server's group
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def _search(server, experiment_id: str, filter_string: str) -> list[dict]:
    body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 100}
    return _post(f"{server['base']}/api/2.0/mlflow/runs/search", body).get("runs", [])


def _metrics(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_baseline_and_jest_runs_are_one_filter_apart_with_their_metrics(server, store):
    exp = _get(f"{server['base']}/api/2.0/mlflow/experiments/get-by-name?experiment_name={store['experiment']}")
    exp_id = exp["experiment"]["experiment_id"]
    for method in ("uniform", "jest"):
        (run,) = _search(server, exp_id, f"tags.method = '{method}'")
        tags, metrics = _tags(run), _metrics(run)
        rows = read_metrics(store["runs"] / f"{tags['arm']}_s{tags['seed']}" / "metrics.jsonl")
        last_eval = [r for r in rows if "heldout_loss" in r][-1]
        assert metrics["heldout_loss"] == pytest.approx(last_eval["heldout_loss"]), store["origin"]
        assert metrics["flops_train"] == pytest.approx(rows[-1]["flops_train"])
        assert run["info"]["status"] == "FINISHED"
        assert tags["group"] == "headline"                  # set by the report's summary logging
        if method == "jest":
            assert float(tags["filter_ratio"]) > 0 and metrics["flops_train_score"] > metrics["flops_train"]
    # the JEST run's full history, point by point, through the REST API
    (jest_run,) = _search(server, exp_id, "tags.method = 'jest'")
    tags = _tags(jest_run)
    history = _get(f"{server['base']}/api/2.0/mlflow/metrics/get-history?run_id={jest_run['info']['run_id']}"
                   f"&metric_key=heldout_loss&max_results=1000")["metrics"]
    rows = read_metrics(store["runs"] / f"{tags['arm']}_s{tags['seed']}" / "metrics.jsonl")
    assert {m["step"]: m["value"] for m in history} == pytest.approx(
        {r["step"]: r["heldout_loss"] for r in rows if "heldout_loss" in r})
    headline = _search(server, exp_id, "tags.group = 'headline'")  # the two runs and the report
    assert sorted(_tags(r)["method"] for r in headline) == ["jest", "summary", "uniform"]


def test_summary_run_holds_the_headline_multipliers_and_the_report(server, store):
    exp_id = _get(f"{server['base']}/api/2.0/mlflow/experiments/get-by-name?"
                  f"experiment_name={store['experiment']}")["experiment"]["experiment_id"]
    (run,) = _search(server, exp_id, "tags.kind = 'summary'")
    assert run["info"]["run_id"] == store["summary_run"]
    tags, metrics = _tags(run), _metrics(run)
    assert tags["method"] == "summary" and tags["arm_scope"] == "headline" and tags["group"] == "headline"
    (head,) = store["summary"]["headline"]
    # a multiplier with no value (a one-budget family: only a bound or nothing) is left out, never logged as 0
    for key, multiplier in ((f"multiplier_iterations.{head['arm']}", head["iterations"] or {}),
                            (f"multiplier_flops_train_score.{head['arm']}",
                             (head["flops"] or {}).get("train+score") or {})):
        value = multiplier.get("value")
        assert metrics.get(key) == (None if value is None else pytest.approx(value)), key
    assert metrics[f"reached.{head['arm']}"] == float(head["reached"])
    assert tags["verdict.iterations_13x"] == store["summary"]["claims"][0]["verdict"]
    listed = _get(f"{server['base']}/api/2.0/mlflow/artifacts/list?run_id={run['info']['run_id']}")
    paths = {f["path"] for f in listed.get("files", [])}
    assert {"summary.json", "report.md", "report.html", "figures"} <= paths
    # a rebuilt report logs into the same summary run, not a new one
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        assert log_summary(store["summary"], store["out"], store["results"], store["runs"]) == store["summary_run"]
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    assert len(_search(server, exp_id, "tags.kind = 'summary'")) == 1


def test_server_listens_on_loopback_only(server):
    listening = []
    root = psutil.Process(server["proc"].pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        listening += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == server["port"]]
    assert listening, "no listening socket found for the server's port"
    assert {addr.ip for addr in listening} == {"127.0.0.1"}


def _printed_view(server) -> tuple[str, str]:
    """(experiment id, saved view key) of the URL `make mlflow-ui` prints."""
    parsed = urllib.parse.urlparse(server["url"])
    assert (parsed.hostname, parsed.port) == ("127.0.0.1", server["port"])
    route, _, query = parsed.fragment.partition("?")
    parts = route.strip("/").split("/")
    assert parts[0] == "experiments" and parts[2] == "runs", f"not the runs table: {server['url']}"
    return parts[1], urllib.parse.parse_qs(query)["viewStateShareKey"][0]


def test_the_printed_url_is_the_runs_table_in_the_headline_view(server, store):
    """What the UI does with the printed URL, through the same ajax API it calls: the experiment
    is a model-training one (runs table, not the GenAI overview), the saved view's filter lists
    the baseline, the JEST run and the report, every run shown in the charts, held-out metrics."""
    exp_id, key = _printed_view(server)
    exp = _get(f"{server['base']}/ajax-api/2.0/mlflow/experiments/get?experiment_id={exp_id}")["experiment"]
    assert exp["name"] == store["experiment"]
    tags = {t["key"]: t["value"] for t in exp["tags"]}
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags[f"mlflow.sharedViewState.{key}"])
    assert view["runsHiddenMode"] == "SHOW_ALL" and "heldout" in view["chartsSearchFilter"]
    assert "metrics.`heldout_loss`" in view["selectedColumns"]
    runs = _post(f"{server['base']}/ajax-api/2.0/mlflow/runs/search",
                 {"experiment_ids": [exp_id], "filter": view["searchFilter"], "max_results": 100})["runs"]
    assert sorted(_tags(r)["method"] for r in runs) == ["jest", "summary", "uniform"]
    for run in runs:
        tags = _tags(run)
        assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"].startswith("python -m ")
        if tags["method"] != "summary":           # the Source column's commit: MLflow's own tag, a bare hash
            card = json.loads((store["runs"] / run["info"]["run_name"] / "card.json").read_text())
            assert tags["mlflow.source.git.commit"] == card["git_commit"].removesuffix("-dirty")
            assert len(tags["mlflow.source.git.commit"]) == 40


def test_a_runs_duration_is_its_training_time_even_after_a_later_sync(server, store):
    """The evaluation's results reach MLflow later (sync_mlflow); that must not move the end."""
    exp_id, _ = _printed_view(server)
    for run_dir in sorted(store["runs"].iterdir()):
        card = json.loads((run_dir / "card.json").read_text())
        wall_ms = read_metrics(run_dir / "metrics.jsonl")[-1]["wall_time"] * 1000
        (run,) = _search(server, exp_id, f"attributes.run_name = '{card['run']}'")
        assert int(run["info"]["end_time"]) - int(run["info"]["start_time"]) == pytest.approx(wall_ms, abs=2)
        time.sleep(0.01)
        saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
        try:
            assert MlflowMirror(run_dir, store["uri"], store["experiment"], card["run"], {}, {}).sync(
                final_status="FINISHED", strict=True)
        finally:
            if saved is not None:
                os.environ["MLFLOW_TRACKING_URI"] = saved
        (again,) = _search(server, exp_id, f"attributes.run_name = '{card['run']}'")
        assert again["info"]["end_time"] == run["info"]["end_time"]


def test_the_flops_view_plots_the_same_runs_against_flops_grouped_by_arm(server, store):
    """Issue #29: compared per step, a JEST step (a scored super-batch) looks cheaper than it is;
    the second printed URL opens the same view with every chart against FLOPs (train+score), a
    metric each training run logs at every step the held-out loss has; both views group by arm."""
    exp_id, key = _printed_view(server)
    flops_key = urllib.parse.parse_qs(urllib.parse.urlparse(server["flops_url"]).fragment.partition("?")[2])[
        "viewStateShareKey"][0]
    assert flops_key != key
    exp = _get(f"{server['base']}/ajax-api/2.0/mlflow/experiments/get?experiment_id={exp_id}")["experiment"]
    tags = {t["key"]: t["value"] for t in exp["tags"]}
    steps, flops = (json.loads(tags[f"mlflow.sharedViewState.{k}"]) for k in (key, flops_key))
    assert steps["globalLineChartConfig"]["xAxisKey"] == "step"
    assert flops["globalLineChartConfig"] == {"xAxisKey": "metric", "lineSmoothness": 0,
                                              "selectedXAxisMetricKey": "flops_train_score"}
    for view in (steps, flops):
        assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "arm"}]
        assert view["searchFilter"] == steps["searchFilter"] and "tags.`budget`" in view["selectedColumns"]
    for method in ("uniform", "jest"):
        (run,) = _search(server, exp_id, f"tags.method = '{method}'")
        history = {}
        for metric in ("heldout_loss", "flops_train_score"):
            points = _get(f"{server['base']}/api/2.0/mlflow/metrics/get-history?run_id={run['info']['run_id']}"
                          f"&metric_key={metric}&max_results=10000")["metrics"]
            history[metric] = {m["step"] for m in points}
        assert history["heldout_loss"] and history["heldout_loss"] <= history["flops_train_score"]
        if method == "uniform":
            assert _tags(run)["budget"] == "1x" and "filter_ratio" not in _tags(run)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium): "
                                             "the UI's rendering is not checked; its API check above still runs")
def test_headless_chromium_shows_the_runs_table_with_baseline_and_jest_runs(server, store, tmp_path):
    """The printed URL in a real browser: the rendered page is the runs table of the headline
    view (its filter, grouped by arm, held-out columns) with the baseline and the JEST run in it."""
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,1000", "--virtual-time-budget=15000",
           "--dump-dom", server["url"]]
    try:
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=240).stdout
    except subprocess.TimeoutExpired as err:
        dom = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
    names = {json.loads((d / "card.json").read_text())["run"] for d in store["runs"].iterdir()}
    missing = [n for n in sorted(names) if f">{n}<" not in dom]
    assert not missing, f"runs not in the rendered table: {missing}; page starts {dom[:500]!r}"
    # the headline view: its filter (in the page's own links, URL-encoded), the runs grouped by arm (the
    # uniform family's budgets apart), held-out columns
    assert "searchFilter%3Dtags.group%2B%253D%2B%2527headline%2527" in dom, dom[:500]
    assert "Group by: arm" in dom and "metrics.`heldout_" in dom


def test_sigterm_stops_the_server_and_every_worker(server):
    """Last in this file: it stops the module's server."""
    wrapper = psutil.Process(server["proc"].pid)
    family = [wrapper, *wrapper.children(recursive=True)]
    assert len(family) >= 3, "expected the wrapper, mlflow server and its uvicorn worker"
    os.kill(wrapper.pid, signal.SIGTERM)
    gone, alive = psutil.wait_procs(family, timeout=30)   # reaps the wrapper (this test's child)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running after SIGTERM: {[(p.pid, p.cmdline()) for p in alive]}"
    assert [p.returncode for p in gone if p.pid == wrapper.pid] == [128 + signal.SIGTERM]

