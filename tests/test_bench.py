"""tools.bench and jest.model.hardware: structure of the measurements, the analytic ratio, the peak table.

Timings are never compared with targets here (the test machine is shared and noisy);
only that every measured number exists, is finite and positive.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from tools import bench
from jest.config import PROJECT_ROOT
from jest.experiment import load_config
from jest.model.cpu_matmul import onednn_linear_available
from jest.model.flops import matmul_params
from jest.model.hardware import cpu_peak, lookup, matmul_precision, peak_flops_per_second
from jest.model.llama import build_hf_config, shape_summary

TINY = {"n_layer": 2, "d_model": 96, "d_ff": 256, "n_head": 4, "n_kv_head": 4, "vocab_size": 2048}


def _finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_analytic_ratio_by_hand():
    # N = 2 * (2*96*96 + 2*96*96 + 3*96*256) + 96*2048 = 417,792 (the README's 0.42M)
    assert matmul_params(TINY) == 417_792
    # training 6N + 12LdT = 2,801,664 per token = 3 x forward (2N + 4LdT = 933,888) at the same T:
    # ratio = 1 + (B/b) / 3 when the whole sequence is scored
    for f, B in ((0.5, 32), (0.8, 80), (0.9, 160)):
        assert bench.analytic_ratio(TINY, 128, 16, B, 128) == pytest.approx(1 + (B / 16) / 3, rel=1e-12)
    # half-length prefix: forward(64) = 835,584 + 4*2*96*64 = 884,736 per token, 32 x 64 tokens
    expected = 1 + 884_736 * 32 * 64 / (2_801_664 * 16 * 128)
    assert bench.analytic_ratio(TINY, 128, 16, 32, 64) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.3157895, rel=1e-6)


def test_125m_shape_is_gpt2_small_sized():
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    spec = bench.shape_spec("125m", cfg, torch.device("cpu"))
    assert (spec.seq_len, spec.vocab, spec.batch, spec.micro) == (1024, 50257, 1, 1)
    assert bench.shape_spec("125m", cfg, torch.device("cuda")).batch == 16
    shape = shape_summary(build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0))
    assert (shape["n_layer"], shape["d_model"], shape["n_head"]) == (12, 768, 12)
    assert 120e6 < matmul_params(shape) < 130e6  # 123.5M with tied embeddings
    with pytest.raises(ValueError, match="unknown shape"):
        bench.shape_spec("7b", cfg, torch.device("cpu"))


def test_measure_shape_structure():
    """A real (small) run of every measurement on the smoke learner: 2 steps per loop."""
    cfg = load_config(PROJECT_ROOT / "config" / "smoke.yaml")
    spec = bench.shape_spec("tiny", cfg, torch.device("cpu"))  # batch 8 in micro-batches of 4
    torch.set_num_threads(1)
    r = bench.measure_shape(spec, torch.device("cpu"), steps=2, warmup=1, score_n=16, log=lambda *a: None)
    t, s = r["train"], r["score"]
    for v in (t["ours_tokens_per_s"], t["plain_tokens_per_s"], t["ours_over_plain"], t["ours_flops_per_s"],
              s["tokens_per_s"], s["flops_per_s"], r["peak_memory_bytes"]):
        assert _finite_positive(v), v
    assert len(t["ours_seconds"]) == len(t["plain_seconds"]) == 2
    # the CPU peak is derived (jest.model.hardware.cpu_peak) for the 1 core torch uses here
    assert _finite_positive(r["peak_flops_per_second"]) and "1 cores x" in r["peak_source"]
    assert t["ours_mfu"] == pytest.approx(t["ours_flops_per_s"] / r["peak_flops_per_second"])
    # the fast path: timed alongside, same init and batches; the loss differs by float rounding only
    for v in (t["fast_tokens_per_s"], t["fast_over_eager"], t["fast_mfu"], s["fast_tokens_per_s"], s["fast_over_eager"]):
        assert _finite_positive(v), v
    assert len(t["fast_seconds"]) == 2 and t["fast_loss_max_abs_diff"] < 1e-4
    assert s["fast_loss_max_abs_diff"] < 1e-4
    # the two loops train the same init on the same batches: the same losses (CPU, fp32)
    assert t["losses_compared"] == 1 + 1 + 2 and t["loss_max_abs_diff"] < 1e-4
    assert [j["filter_ratio"] for j in r["jest"]] == list(bench.FILTER_RATIOS)
    for j, B in zip(r["jest"], (16, 40, 80)):
        assert j["super_batch"] == B
        for key in ("uniform_s", "jest_s", "measured_ratio", "analytic_ratio", "measured_over_analytic"):
            assert _finite_positive(j[key]), (key, j[key])
        assert j["analytic_ratio"] == pytest.approx(
            bench.analytic_ratio(shape_summary(build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0)),
                                 spec.seq_len, spec.batch, B, spec.seq_len))
    json.dumps(r)  # JSON-able as written by --json
    names = [c["name"] for c in bench.checks({"tiny": r})]
    assert names[:2] == ["tiny: ours/plain tokens/s", "tiny: fast path/eager training tokens/s"]
    assert len(names) == 2 + len(bench.FILTER_RATIOS)


def test_main_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--config", str(PROJECT_ROOT / "config" / "smoke.yaml"), "--shapes", "tiny", "--jest-shapes", "",
                     "--steps", "2", "--warmup", "1", "--threads", "1", "--json", str(out)])
    assert rc == 0  # no --check: never fails on timings
    data = json.loads(out.read_text())
    assert data["schema"] == "jest-bench-v2" and data["meta"]["device"] == "cpu"
    assert data["meta"]["fast_path_matmuls"] == ("oneDNN" if onednn_linear_available() else "MKL")
    assert data["meta"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(data["shapes"]) == {"tiny"} and data["shapes"]["tiny"]["jest"] == []
    assert [c["name"] for c in data["checks"]] == ["tiny: ours/plain tokens/s",
                                                   "tiny: fast path/eager training tokens/s"]
    text = capsys.readouterr().out
    assert "ours/plain" in text and "tokens/s" in text and "targets:" in text
    assert "train (fast)" in text and "score (fast)" in text and "FLOP/cycle" in text
    # the measured matmul peak (tools/roofline.py) is what the fractions of peak are taken against
    fp32 = data["meta"]["measured_peak"]["fp32"]
    assert fp32["flops_per_s"] > 0 and "measured fp32 matmul peak" in text
    tiny = data["shapes"]["tiny"]
    assert tiny["peak_flops_per_second"] == fp32["flops_per_s"] and tiny["peak_source"].startswith("measured")
    assert "FLOP/cycle" in tiny["nominal_peak_source"] and data["meta"]["cpu"]["model"]


def test_roofline_measures_each_kernel_and_skips_bf16_without_units(monkeypatch):
    from jest.model import cpu
    from tools import roofline
    torch.set_num_threads(1)
    r = roofline.matmul_peak(torch.device("cpu"), "fp32", n=256, reps=2)
    assert r["flops_per_s"] == max(r["per_kernel"].values()) > 0 and r["kernel"] in r["per_kernel"]
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ({"avx2", "fma"}, 2.4e9, "Old CPU"))
    peaks = roofline.measured_peaks(torch.device("cpu"), n=128, reps=1)
    assert peaks["fp32"]["flops_per_s"] > 0 and peaks["bf16"]["flops_per_s"] is None
    assert "no AMX or AVX512-BF16" in peaks["bf16"]["why"]


def test_bare_json_prints_the_document_alone_on_stdout(capsys):
    rc = bench.main(["--config", str(PROJECT_ROOT / "config" / "smoke.yaml"), "--shapes", "tiny", "--jest-shapes", "",
                     "--steps", "1", "--warmup", "0", "--threads", "1", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    data = json.loads(out)  # stdout is exactly one JSON document
    assert data["shapes"]["tiny"]["train"]["fast_tokens_per_s"] > 0
    assert "train (fast)" in err and "targets:" in err


def test_ladder_top_cpu_rung_is_at_least_4x_tiny():
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    tiny = bench.shape_spec("tiny", cfg, torch.device("cpu"))
    top = bench.shape_spec("ladder_top", cfg, torch.device("cpu"))
    assert (top.vocab, top.seq_len, top.batch) == (tiny.vocab, tiny.seq_len, tiny.batch)
    n = {s.name: matmul_params(shape_summary(build_hf_config(s.model, s.vocab, s.seq_len, 0, 0, 0)))
         for s in (tiny, top)}
    # 4 x (4 x 176^2 + 3 x 176 x 480) + 2048 x 176 = 1,869,824 (d_ff = 32 ceil(8 x 176 / 3 / 32) = 480)
    assert n["ladder_top"] == 1_869_824 and n["ladder_top"] >= 4 * n["tiny"]


def test_cpu_peak_derivation_by_hand():
    # the machine: 2 cores x 2.45 GHz x (2 FMA pipes x 8 AVX2 lanes x 2) = 156.8 GFLOP/s
    peak, how = cpu_peak(2, {"avx", "avx2", "fma", "sse2"}, 2.45e9)
    assert peak == pytest.approx(156.8e9) and "32 fp32 FLOP/cycle" in how and "AVX2" in how
    assert cpu_peak(1, {"avx512f", "avx2", "fma"}, 2.0e9)[0] == pytest.approx(128e9)  # 2 x 16 x 2 per cycle
    assert cpu_peak(4, {"sse2"}, 3.0e9)[0] == pytest.approx(96e9)                     # no FMA: 2 x 4 per cycle
    assert cpu_peak(2, {"avx2", "fma"}, 0.0) == (None, "no CPU clock in /proc/cpuinfo: no peak")
    assert cpu_peak(2, set(), 2e9)[0] is None


def test_checks_pass_fail_and_exit_code(monkeypatch):
    fake = {"s": {"train": {"ours_over_plain": 0.90},
                  "jest": [{"filter_ratio": 0.5, "measured_over_analytic": 1.1},
                           {"filter_ratio": 0.9, "measured_over_analytic": 1.3}]}}
    assert [c["pass"] for c in bench.checks(fake)] == [False, True, False]
    fake["tiny"] = {"train": {"ours_over_plain": 1.0, "fast_over_eager": 1.4}, "jest": []}
    fake["ladder_top"] = {"train": {"ours_over_plain": 1.0, "fast_over_eager": 1.35}, "jest": []}
    by_name = {c["name"]: c["pass"] for c in bench.checks(fake)}
    assert by_name["tiny: fast path/eager training tokens/s"] is False      # target 1.5
    assert by_name["ladder_top: fast path/eager training tokens/s"] is True  # target 1.3
    del fake["tiny"], fake["ladder_top"]
    fake["s"]["train"]["ours_over_plain"] = 0.97
    fake["s"]["jest"][1]["measured_over_analytic"] = 0.7  # cheaper than the FLOPs say: no overhead
    assert all(c["pass"] for c in bench.checks(fake))


def test_peak_flops_table(monkeypatch):
    assert peak_flops_per_second(torch.device("cpu"), "bf16") == (None, "no peak-FLOPs table entry for CPUs")
    assert lookup("NVIDIA H100 80GB HBM3", "bf16")[0] == 989.4e12
    assert lookup("NVIDIA H100 80GB HBM3", "tf32")[0] == 494.7e12
    assert lookup("NVIDIA H100 80GB HBM3", "fp32")[0] == 66.9e12
    assert lookup("NVIDIA H100 PCIe", "bf16")[0] == 756.5e12
    assert lookup("NVIDIA H200", "bf16")[0] == 989.4e12
    assert lookup("NVIDIA A100-SXM4-80GB", "bf16")[0] == 312e12
    assert lookup("NVIDIA A100 80GB PCIe", "fp32")[0] == 19.5e12
    assert lookup("NVIDIA L4", "bf16")[0] == 121e12
    assert lookup("NVIDIA GeForce RTX 4090", "bf16")[0] == 165.2e12
    for unknown in ("NVIDIA A10G", "NVIDIA RTX A1000", "NVIDIA L40S"):  # no entry, no guess
        peak, why = lookup(unknown, "bf16")
        assert peak is None and "no peak-FLOPs table entry" in why
    peak, source = lookup("NVIDIA H100 80GB HBM3", "bf16")
    assert "H100" in source and "dense" in source
    with pytest.raises(ValueError):
        lookup("NVIDIA H100 80GB HBM3", "int8")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-40GB")
    assert peak_flops_per_second(torch.device("cuda"), "bf16")[0] == 312e12
    assert matmul_precision(torch.device("cpu"), "fp32") == "fp32"
    assert matmul_precision(torch.device("cuda"), "bf16") == "bf16"
