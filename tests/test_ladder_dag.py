"""The scale ladder end to end at a minuscule scale (config/ladder_smoke.yaml: the smoke data, two rungs
5x apart, one seed, a few steps), marker dag (make test-all): `snakemake ladder` runs the lr sweep, writes
lr_choice.json, trains every rung arm with the chosen lr and its own shape, and writes the ladder report.
Checks the wiring, not a result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis.ladder import SCHEMA
from jest.config import PROJECT_ROOT, deep_merge
from jest.experiment import load_config
from jest.model.flops import matmul_params
from jest.ladder.rungs import rung_plan, rung_shape
from jest.tracking.records import read_metrics

CACHE = PROJECT_ROOT / "results" / "cache"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def run_config(tmp_path: Path, name: str, target: str) -> Path:
    """`snakemake TARGET` on config/NAME.yaml with its results under tmp_path; returns the config file it ran."""
    results = tmp_path / "results"
    cfg_raw = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / f"{name}.yaml").read_text()),
                         {"results_dir": str(results), "cache_dir": str(CACHE)})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg_raw))
    proc = subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile", str(path)],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return path


@pytest.mark.dag
def test_mini_ladder_end_to_end(tmp_path):
    path = run_config(tmp_path, "ladder_smoke", "ladder")
    check_ladder_outputs(tmp_path / "results" / "ladder_smoke", load_config(path))


def check_ladder_outputs(root: Path, cfg: dict) -> None:
    """What a finished ladder leaves under results/<name>/ (also run by hand on a kept results folder)."""
    choice = json.loads((root / "ladder" / "lr_choice.json").read_text())
    for rung, plan in rung_plan(cfg).items():
        c = choice["rungs"][rung]
        losses = {float(k): v for k, v in c["losses"].items()}
        # the first grid, and any lr the sweep's rounds added past an edge
        assert set(plan["sweep"].values()) <= set(losses) <= set(plan["sweep"].values()) | set(plan["sweep_extra"].values())
        assert c["lr"] == min(losses, key=losses.get) and c["rounds"] == len(losses) - len(plan["sweep"]) + 1
        for arm in plan["arms"]:
            card = json.loads((root / "runs" / f"{arm}_s0" / "card.json").read_text())
            assert card["status"] == "finished"
            # the run trained with the rung's shape, steps and the swept lr, recorded in its card
            assert card["config"]["model"]["n_embd"] == plan["model"]["n_embd"]
            assert card["schedule"]["lr"] == c["lr"] == card["config"]["arms"][arm]["lr_choice"]["lr"]
            assert card["steps"] == max(1, round(cfg["arms"][arm]["budget"] * plan["steps"]))
            if cfg["arms"][arm].get("branch_from"):   # a cooldown branch trained only its decay
                assert card["branched_from"]["run"] == f"{cfg['arms'][arm]['branch_from']}_s0", arm
            assert card["pool_passes"] <= 1.0                  # no arm repeats data
            rows = read_metrics(root / "runs" / f"{arm}_s0" / "metrics.jsonl")
            # FLOPs counted on the arm's own shape: 6N + 12LdT per token (jest.model.flops)
            shape = rung_shape(plan["model"], card["config"]["data"]["vocab_size"])
            assert matmul_params(shape) == plan["matmul_params"]
            assert card["flops_per_token"]["train"] == 6 * plan["matmul_params"] + 12 * shape["n_layer"] * \
                shape["d_model"] * cfg["data"]["seq_len"]
            assert rows[-1]["step"] == card["steps"]
    out = root / "report" / "ladder"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == SCHEMA and list(summary["rungs"]) == list(rung_plan(cfg))
    assert (out / "regime_map.png").stat().st_size > 10_000
    if cfg["ladder"]["axis"] == "tokens_per_param":
        assert summary["axis"] == "tokens_per_param" and len(summary["metrics"]) == 3  # curated, pool mix, external
        assert (out / "multiplier_vs_length.png").stat().st_size > 10_000
        assert "# Length axis" in (out / "report.md").read_text()
        return
    for rung in ("m1", "m2"):
        arms = summary["rungs"][rung]["arms"]
        assert {"jest_f0.5", "jest_f0.8", "oracle_clean", "offline_filter_f0.8"} <= set(arms)
        assert summary["rungs"][rung]["lr"]["lr"] == choice["rungs"][rung]["lr"]
    assert set(summary["slopes"]["jest_f0.8"]) == {"iterations", "train+score", "total"}
    assert "m1|m2" in summary["decision_agreement"]["pairs"]
    assert summary["top_rung"]["rung"] == "m2"
    assert (out / "multiplier_vs_compute.png").stat().st_size > 10_000
    assert "Covered range" in (out / "report.md").read_text()


@pytest.mark.dag
def test_mini_length_axis_end_to_end(tmp_path):
    """config/length_smoke.yaml: three lengths of one learner, the family as a trunk and its cooldown
    branches, a sweep that may add an lr per edge, three held-out metrics, the length report."""
    path = run_config(tmp_path, "length_smoke", "length")
    check_ladder_outputs(tmp_path / "results" / "length_smoke", load_config(path))
