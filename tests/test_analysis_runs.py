"""analysis.runs on run folders written by the real trainer's file formats."""
import json

from analysis.runs import load_cards, load_curves


def _fake_run(runs, name, arm, seed, status, losses):
    d = runs / name
    d.mkdir(parents=True)
    card = {"run": name, "arm": arm, "seed": seed, "status": status,
            "config": {"arms": {arm: {"policy": "uniform"}}}}
    (d / "card.json").write_text(json.dumps(card))
    with open(d / "metrics.jsonl", "w") as f:
        for step, loss in enumerate(losses, 1):
            f.write(json.dumps({"step": step, "train_loss": loss}) + "\n")
        f.write('{"step": 99, "train_lo')  # a torn last line from a killed writer is ignored


def test_curves_keep_finished_runs_and_ignore_torn_lines(tmp_path):
    _fake_run(tmp_path, "uniform_s0", "uniform", 0, "finished", [3.0, 2.0])
    _fake_run(tmp_path, "uniform_s1", "uniform", 1, "running", [3.0])
    assert list(load_cards(tmp_path)["status"]) == ["finished", "running"]
    curves = load_curves(tmp_path)
    assert list(curves["run"]) == ["uniform_s0", "uniform_s0"]
    assert list(curves["train_loss"]) == [3.0, 2.0]
    assert len(load_curves(tmp_path, finished_only=False)) == 3
