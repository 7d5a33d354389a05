"""scripts/device_train_check.py: the comparison that decides PASS/FAIL of a GPU training run
against its CPU twin, and the packing of what those runs read."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("device_train_check", ROOT / "scripts" / "device_train_check.py")
dtc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dtc)


def _rows(heldout: dict[int, float], last_step: int = 100, train_loss: float = 5.0) -> list[dict]:
    rows = []
    for step in range(1, last_step + 1):
        row = {"step": step, "train_loss": train_loss + 1.0 / step}
        if step in heldout:
            row["heldout_loss"] = heldout[step]
        rows.append(row)
    return rows


def test_same_curves_pass():
    cpu = _rows({1: 7.0, 50: 6.0, 100: 5.7})
    result = dtc.compare(cpu, cpu)
    assert result["ok"] and result["heldout_max_abs_diff"] == 0.0 and result["evaluations"] == 3


def test_small_drift_passes_and_large_drift_fails_at_the_step_it_happens():
    cpu = _rows({1: 7.0, 50: 6.0, 100: 5.7})
    near = _rows({1: 7.0, 50: 6.03, 100: 5.71})
    far = _rows({1: 7.0, 50: 6.3, 100: 5.71})
    assert dtc.compare(near, cpu)["ok"]
    bad = dtc.compare(far, cpu)
    assert not bad["ok"] and bad["heldout_max_diff_step"] == 50
    assert bad["heldout_max_abs_diff"] == pytest.approx(0.3)


def test_final_train_loss_is_checked_too():
    cpu = _rows({100: 5.7})
    assert not dtc.compare(_rows({100: 5.7}, train_loss=5.5), cpu)["ok"]


def test_a_shorter_run_fails_with_a_reason():
    result = dtc.compare(_rows({1: 7.0, 50: 6.0}, last_step=50), _rows({1: 7.0, 50: 6.0, 100: 5.7}))
    assert not result["ok"] and "steps differ" in result["why"]


def test_pack_copies_what_training_reads(tmp_path, monkeypatch):
    src = tmp_path / "results" / "tiny"
    cfg = {"arms": {"uniform": {"policy": "uniform"}, "jest_f0.8": {"policy": "jest", "reference": "ref"}}}
    (src / "shards").mkdir(parents=True)
    (src / "shards" / "manifest.json").write_text("{}")
    (src / "tokenizer").mkdir()
    (src / "tokenizer" / "tokenizer.json").write_text("{}")
    ref = src / "references" / "ref"
    (ref / "model").mkdir(parents=True)
    (ref / "model" / "model.safetensors").write_bytes(b"w")
    (ref / "checkpoints").mkdir()  # not needed on the device: must stay behind
    for name in ("card.json", "pool_scores.npy", "pool_scores.json"):
        (ref / name).write_text("x")
    for arm in dtc.ARMS:
        (src / "runs" / f"{arm}_s0").mkdir(parents=True)
        (src / "runs" / f"{arm}_s0" / "metrics.jsonl").write_text(json.dumps({"step": 1}) + "\n")
    (src / "config.resolved.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(dtc, "ROOT", tmp_path)
    monkeypatch.setattr(dtc, "DEVDATA", tmp_path / ".devdata")
    dtc.pack("tiny")
    dev = tmp_path / ".devdata"
    assert (dev / "references" / "ref" / "model" / "model.safetensors").read_bytes() == b"w"
    assert (dev / "references" / "ref" / "card.json").is_file()
    assert not (dev / "references" / "ref" / "checkpoints").exists()
    assert (dev / "cpu" / "jest_f0.8_s0.metrics.jsonl").is_file() and (dev / "shards" / "manifest.json").is_file()


def test_pack_without_a_finished_dag_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(dtc, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="make reproduce"):
        dtc.pack("tiny")
