"""What the report reads (issue #30): only the config's arms x seeds, and only metrics.jsonl files that
are the ones their runs wrote (the sha256 recorded when the run finished; no bad line before the last)."""
import json

import pytest

from analysis.report import build_report, main
from analysis.runs import load_curves
from jest.io import sha256_file
from jest.tracking.metrics import MetricsError, read_metrics
from jest.tracking.records import write_card


def _finish(run_dir):
    """What the trainer's finish step does to the card (jest.training.trainer: write_card(..., status="finished"))."""
    return write_card(run_dir / "card.json", status="finished")


def _edit_last_row(path, key, delta):
    lines = path.read_text().splitlines()
    row = json.loads(lines[-1])
    row[key] += delta
    path.write_text("\n".join(lines[:-1] + [json.dumps(row, sort_keys=True)]) + "\n")


def test_the_card_records_the_metrics_sha256_when_the_run_finishes_and_clears_it_while_it_runs(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "train_loss": 3.0}\n')
    assert write_card(tmp_path / "card.json", status="running")["metrics_sha256"] is None
    card = _finish(tmp_path)
    assert card["metrics_sha256"] == sha256_file(tmp_path / "metrics.jsonl")
    assert write_card(tmp_path / "card.json", mlflow_synced=True)["metrics_sha256"] == card["metrics_sha256"]
    assert write_card(tmp_path / "card.json", status="running")["metrics_sha256"] is None  # a resumed run


def test_a_final_heldout_loss_lowered_after_the_run_finished_is_refused_naming_file_and_fix(synth_results, capsys):
    runs = synth_results["runs"]
    run = runs / "uniform_s0"
    _finish(run)
    load_curves(runs)  # as recorded: read
    _edit_last_row(run / "metrics.jsonl", "heldout_loss", -0.5)
    with pytest.raises(MetricsError) as err:
        load_curves(runs)
    assert str(run / "metrics.jsonl") in str(err.value) and "--forcerun" in str(err.value)
    with pytest.raises(SystemExit) as done:  # the analyze job's command: one line naming the file, no traceback
        main(["--results", str(synth_results["results"]), "--config", "synth", "--no-figures", "--no-mlflow",
              "--n-boot", "50", "--out", str(synth_results["results"] / "out")])
    assert str(done.value.code).startswith("error: ") and str(run / "metrics.jsonl") in str(done.value.code)


def test_a_bad_line_before_the_last_is_refused_and_a_torn_last_line_is_still_ignored(synth_results):
    runs = synth_results["runs"]
    path = runs / "jest_f0.5_s1" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    n = len(lines)
    path.write_text("\n".join(lines + ['{"step": 999, "train_lo']))  # a killed writer: the last line torn
    assert len(read_metrics(path, strict=True)) == n
    assert len(load_curves(runs).query("run == 'jest_f0.5_s1'")) == n
    lines[n // 2] = lines[n // 2][: len(lines[n // 2]) // 2]  # torn in the middle: every later row would be lost
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MetricsError, match=f"line {n // 2 + 1} is not a JSON object") as err:
        load_curves(runs)
    assert str(path) in str(err.value) and "--forcerun" in str(err.value)
    with pytest.warns(UserWarning, match="damaged"):  # the trainer's tolerant reader says so too
        assert len(read_metrics(path)) == n // 2


def test_the_report_reads_only_the_configs_arms_and_seeds_and_names_the_other_folders(synth_results):
    res = synth_results
    # the config now: jest_topk_f0.8 dropped and train.lr changed; its old run (and a seed-3 run) remain
    current = json.loads(json.dumps(res["cfg"]))
    del current["arms"]["jest_topk_f0.8"]
    current["train"]["lr"] = 0.02
    snapshot = res["results"] / "synth" / "config.0123.json"
    snapshot.write_text(json.dumps(current))
    s = build_report(res["results"], "synth", res["results"] / "out", arms="all", n_boot=50, figures=False,
                     resolved_config=snapshot)
    assert {r["arm"] for r in s["runs"]} == set(current["arms"])
    assert all(r["run"] != "jest_f0.8_s3" for r in s["runs"])
    assert "jest_topk_f0.8" not in {h["arm"] for h in s["headline"] + s["ablations"]}
    (note,) = [n for n in s["notes"] if "were not read" in n]
    assert "jest_topk_f0.8_s0" in note and "jest_f0.8_s3" in note
    # without the snapshot, the report falls back to every folder and says so
    s = build_report(res["results"], "synth", res["results"] / "out2", arms="all", n_boot=50, figures=False)
    assert "jest_topk_f0.8" in {r["arm"] for r in s["runs"]}
    assert any("every run folder with a card was read" in n for n in s["notes"])


def test_the_ladder_report_reads_its_rungs_runs_only():
    from analysis.ladder import ladder_runs
    from jest.config import PROJECT_ROOT
    from jest.experiment import load_config
    from jest.ladder.rungs import ladder_seeds, rung_plan, sweep_seed
    cfg = load_config(PROJECT_ROOT / "config" / "ladder.yaml")
    runs = ladder_runs(cfg, {})
    plans = rung_plan(cfg).values()
    # workflow/rules/common.smk: each rung's sweep at the sweep seed, its other arms at every ladder seed
    assert len(runs) == len(set(runs)) == sum(len(p["sweep"]) + len(p["arms"]) * len(ladder_seeds(cfg)) for p in plans)
    assert {f"{arm}_s{sweep_seed(cfg)}" for p in plans for arm in p["sweep"]} <= set(runs)
    assert all(r.rsplit("_s", 1)[0] in cfg["arms"] for r in runs)
    # once the sweep has grown its grid, the runs it trained are the ones lr_choice.json lists
    rung, plan = next(iter(rung_plan(cfg).items()))
    extra = next(iter(plan["sweep_extra"]))
    grown = {"rungs": {rung: {"runs": {"x": f"{extra}_s{sweep_seed(cfg)}"}}}}
    assert f"{extra}_s{sweep_seed(cfg)}" in ladder_runs(cfg, grown)
