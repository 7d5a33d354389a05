"""The positive control (issue #27, item 6): the planted pool, the prediction, the predicted-vs-measured
verdicts on synthetic runs whose answer is known, and the committed reference
(results/reference/positive_control/) recomputed outside analysis/."""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis.positive_control import (ABOVE, BELOW, CONTAINS, assemble, predictions, render, text_candidates,
                                       verdict)
from analysis.stats import Estimate
from baselines.controls import clean_rows
from jest.config import PROJECT_ROOT
from jest.data.planted import NOISE_LABEL, noise_count, plant_noise
from jest.data.shards import INDEX_DTYPE, TokenShard, record_file_hashes
from jest.io import atomic_write_json

REFERENCE = PROJECT_ROOT / "results" / "reference" / "positive_control"


# ---------------------------------------------------------------- the planted pool
def _text_shards(root: Path, n_text: int, seq_len: int = 16, vocab: int = 64) -> Path:
    """A shards folder with only a pool split of `n_text` clean text sequences (what build_shards writes)."""
    root.mkdir()
    rng = np.random.default_rng(0)
    token_bytes = np.ones(vocab, dtype=np.int64)
    token_bytes[0] = 0                                    # the special token (EOS): 0 bytes
    tokens = rng.integers(1, vocab, size=(n_text, seq_len)).astype(np.uint16)
    index = np.zeros(n_text, dtype=INDEX_DTYPE)
    index["doc"], index["label"], index["n_bytes"] = np.arange(n_text) // 3, 0, seq_len
    np.save(root / "pool.tokens.npy", tokens)
    np.save(root / "pool.index.npy", index)
    np.save(root / "token_bytes.npy", token_bytes)
    atomic_write_json(root / "labels.json", [{"source": "brown", "quality": "clean", "corruption": "none"}])
    manifest = {"seq_len": seq_len, "vocab_size": vocab, "dtype": "uint16", "splits": {"pool": {
        "sequences": n_text, "tokens": n_text * seq_len, "dropped_tail_tokens": 0, "bytes": n_text * seq_len,
        "by_source": {"brown": {"sequences": n_text, "tokens": n_text * seq_len}},
        "sha256": __import__("jest.io", fromlist=["sha256_file"]).sha256_file(root / "pool.tokens.npy")}}}
    record_file_hashes(root, manifest)
    atomic_write_json(root / "manifest.json", manifest)
    return root


@pytest.mark.parametrize("share,n_text,n_noise", [(0.75, 400, 1200), (0.8, 250, 1000), (0.5, 7, 7)])
def test_the_declared_share_is_planted_exactly_and_every_noise_sequence_is_tagged(tmp_path, share, n_text, n_noise):
    shards = _text_shards(tmp_path / "shards", n_text)
    text_before = np.load(shards / "pool.tokens.npy").copy()
    record = plant_noise(shards, share, split_seed=1234)
    assert record["noise_sequences"] == n_noise == noise_count(n_text, share)
    assert record["share_realised"] == share                      # s / (1 - s) * n_text is whole here
    pool = TokenShard(shards, "pool")                             # every changed file's sha256 verified
    assert len(pool) == n_text + n_noise
    labels = pool.label_of(np.arange(len(pool)))
    noise = np.array([lab == NOISE_LABEL for lab in labels])
    assert noise.sum() == n_noise and noise.mean() == share
    assert not noise[:n_text].any()                               # the text rows are untouched, in place
    np.testing.assert_array_equal(pool.tokens[:n_text], text_before)
    # the oracle leaves the noise out: it draws exactly the text
    np.testing.assert_array_equal(clean_rows(pool, np.arange(len(pool))), np.arange(n_text))
    assert (pool.tokens[n_text:] != 0).all()                      # never the special token
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["splits"]["pool"]["by_source"]["planted_noise"]["sequences"] == n_noise
    assert manifest["splits"]["pool"]["sequences"] == n_text + n_noise


def test_noise_is_seeded_uniform_and_refuses_a_second_planting(tmp_path):
    a = _text_shards(tmp_path / "a", 2000)
    b = _text_shards(tmp_path / "b", 2000)
    plant_noise(a, 0.75, split_seed=7)
    plant_noise(b, 0.75, split_seed=7)
    na, nb = np.load(a / "pool.tokens.npy")[2000:], np.load(b / "pool.tokens.npy")[2000:]
    np.testing.assert_array_equal(na, nb)                         # same seed, same noise
    counts = np.bincount(na.ravel().astype(int), minlength=64)[1:]
    assert st.chisquare(counts).pvalue > 1e-3                     # uniform over the 63 non-special ids
    with pytest.raises(ValueError, match="already"):
        plant_noise(a, 0.75, split_seed=7)
    with pytest.raises(ValueError):
        noise_count(10, 1.0)


# ---------------------------------------------------------------- the prediction
def _hypergeom_min_share(n_total, n_text, big_b, b):
    """E[min(X, b)] / b for X ~ Hypergeometric, from binomial coefficients (no scipy)."""
    total = math.comb(n_total, big_b)
    return sum(min(k, b) * math.comb(n_text, k) * math.comb(n_total - n_text, big_b - k)
               for k in range(0, big_b + 1)) / total / b


def test_predictions_follow_the_construction():
    planted = {"text_sequences": 1000, "noise_sequences": 3000}
    arms = {"oracle_clean": {"policy": "oracle_clean"}, "jest_f0.8": {"policy": "jest", "filter_ratio": 0.8},
            "jest_f0.5": {"policy": "jest", "filter_ratio": 0.5}, "uniform": {"policy": "uniform"}}
    p = predictions(planted, arms, batch=16)
    assert p["oracle_clean"]["predicted"] == pytest.approx(4.0)
    share = _hypergeom_min_share(4000, 1000, 80, 16)
    assert p["jest_f0.8"]["text_share"] == pytest.approx(share, rel=1e-9)
    assert 3.8 < p["jest_f0.8"]["predicted"] < 4.0                 # the 80-candidate super-batch nearly recovers 4x
    # f = 0.5: 32 candidates hold 8 text sequences on average for 16 slots: at most about half of the 4x
    assert p["jest_f0.5"]["predicted"] == pytest.approx(_hypergeom_min_share(4000, 1000, 32, 16) * 4, rel=1e-9)
    assert p["jest_f0.5"]["predicted"] < 2.2
    assert p["uniform"] is None
    # a super-batch far larger than b always holds b text sequences: the ceiling is the oracle's
    assert text_candidates(4000, 1000, 400, 16)["max_text_share"] == pytest.approx(1.0)


def test_verdict_against_the_prediction():
    est = lambda lo, v, hi, bound=None: Estimate(v, lo, hi, bound, n=3)   # noqa: E731
    assert verdict(est(3.5, 3.9, 4.4), 4.0)[0] == CONTAINS
    assert verdict(est(1.5, 2.0, 2.6), 4.0)[0] == BELOW
    assert verdict(est(4.5, 5.0, 5.6), 4.0)[0] == ABOVE


# ---------------------------------------------------------------- measured vs predicted, synthetic runs
def _synthetic_curves(oracle_factor: float, seeds=(0, 1, 2), s=0.75, steps=100, spread=0.01) -> pd.DataFrame:
    """Final held-out losses that follow L = 6 - 0.4 log(text sequences seen): uniform sees (1 - s) b text per
    step, the oracle `oracle_factor` (1 - s) b per step (4x when every one of its sequences is text), and a
    JEST arm 3 (1 - s) b. Each run logs its final row (plus an early row that the analysis must not read).
    The arms' own noise is -spread, 0, +spread over the seeds: the log multipliers average to the planted one
    exactly (the curve is linear in log steps, where the interpolation is exact), with a spread to interval."""
    rng = np.random.default_rng(1)
    budgets = {"uniform_x0.5": 0.5, "uniform": 1, "uniform_x2": 2, "uniform_x4": 4, "uniform_x8": 8}
    loss = lambda text_seen: 6.0 - 0.4 * math.log(text_seen)    # noqa: E731
    rows = []
    for k, seed in enumerate(seeds):
        shift = rng.normal(0, 0.02)                               # a seed's luck, shared by its arms
        for arm, budget in budgets.items():
            n = int(steps * budget)
            rows += [{"arm": arm, "seed": seed, "step": n // 2, "heldout_loss": 9.0},
                     {"arm": arm, "seed": seed, "step": n, "heldout_loss": loss(n * 16 * (1 - s)) + shift}]
        # the assumption arm: the text alone, 4 sequences per step for 400 steps = uniform_x4's 1,600 text sequences
        rows.append({"arm": "text_b4_x4", "seed": seed, "step": 4 * steps,
                     "heldout_loss": loss(4 * steps * 16 * (1 - s)) + shift + spread * (k - 1)})
        for arm, factor in (("oracle_clean", oracle_factor), ("jest_f0.8", 3.0)):
            rows.append({"arm": arm, "seed": seed, "step": steps,
                         "heldout_loss": loss(steps * 16 * (1 - s) * factor) + shift + spread * (k - 1) * (1 if arm == "oracle_clean" else -1),
                         "sel_share_quality_clean": 0.75 if arm == "jest_f0.8" else None})
    d = pd.DataFrame(rows)
    d["run"] = d["arm"] + "_s" + d["seed"].astype(str)
    d["policy"] = d["arm"].map(lambda a: a.split("_")[0])
    return d


def _cfg() -> dict:
    arms = {a: {"policy": "uniform", "budget": b} for a, b in
            {"uniform_x0.5": 0.5, "uniform": 1, "uniform_x2": 2, "uniform_x4": 4, "uniform_x8": 8}.items()}
    arms |= {"oracle_clean": {"policy": "oracle_clean"}, "jest_f0.8": {"policy": "jest", "filter_ratio": 0.8},
             "text_b4_x4": {"policy": "oracle_clean", "budget": 4}}
    return {"name": "synthetic", "seeds": [0, 1, 2], "arms": arms, "train": {"batch_size": 16, "steps": 100},
            "positive_control": {"arms": ["jest_f0.8", "oracle_clean"], "metric": "heldout_loss",
                                 "assumption_arm": "text_b4_x4"}}


PLANTED = {"kind": "random_tokens", "share_declared": 0.75, "share_realised": 0.75, "text_sequences": 4000,
           "noise_sequences": 12000}


def test_a_planted_4x_is_measured_as_4x_and_judged_to_contain_the_prediction():
    summary = assemble(_cfg(), _synthetic_curves(oracle_factor=4.0), PLANTED)
    oracle = summary["arms"]["oracle_clean"]
    assert oracle["prediction"]["predicted"] == pytest.approx(4.0)
    assert oracle["measured"]["value"] == pytest.approx(4.0, rel=1e-6)
    assert oracle["measured"]["ci_low"] < 4.0 < oracle["measured"]["ci_high"] < 4.5
    assert oracle["verdict"] == CONTAINS
    jest = summary["arms"]["jest_f0.8"]
    # JEST's synthetic runs earn 3x, below its 3.9x ceiling: the interval must say so
    assert jest["measured"]["value"] == pytest.approx(3.0, rel=1e-6)
    assert jest["verdict"] == BELOW
    assert jest["predicted_from_selected_share"] == pytest.approx(3.0)
    # paired by seed, JEST / oracle = 3 / 4, below the ~0.985 its super-batch allows
    (rel,) = summary["jest_over_oracle"]
    assert rel["ratio"] == pytest.approx(0.75, rel=1e-6) and rel["verdict"] == BELOW
    assert rel["predicted"] == pytest.approx(summary["arms"]["jest_f0.8"]["prediction"]["text_share"])
    # the synthetic learner obeys both assumptions: the noise costs nothing and only text seen counts
    chk = summary["assumptions_check"]
    assert chk["noise"]["value"] == pytest.approx(1.0, rel=1e-6) and chk["batch"]["value"] == pytest.approx(1.0, rel=1e-6)
    assert summary["instrument"]["large_effect_seen"]
    assert "contains the prediction" in render(summary)


def test_an_instrument_that_sees_half_the_effect_is_judged_below_the_prediction():
    summary = assemble(_cfg(), _synthetic_curves(oracle_factor=2.0), PLANTED)
    oracle = summary["arms"]["oracle_clean"]
    assert oracle["measured"]["value"] == pytest.approx(2.0, rel=1e-6)
    assert oracle["verdict"] == BELOW
    # the text alone at small batches still matches uniform: the shortfall is the oracle's batch, not the noise
    chk = summary["assumptions_check"]
    assert chk["noise"]["value"] == pytest.approx(1.0, rel=1e-6)
    assert chk["batch"]["value"] == pytest.approx(0.5, rel=1e-6)
    assert chk["batch"]["ci_high"] < 1.0
    assert 4.0 * chk["noise"]["value"] * chk["batch"]["value"] == pytest.approx(oracle["measured"]["value"])


# ---------------------------------------------------------------- the committed reference, recomputed
def _final(run_dir: Path, metric: str) -> dict:
    last = None
    for line in gzip.decompress((run_dir / "metrics.jsonl.gz").read_bytes()).decode().splitlines():
        row = json.loads(line)
        if row.get(metric) is not None:
            last = row
    return last


def _needed_steps(points: list[tuple[float, float]], target: float) -> float:
    """Steps at which the family's non-increasing fit (pool adjacent violators) reaches `target`,
    interpolated linearly in log steps (the summary must hold no bound here)."""
    points = sorted(points)
    blocks = []
    for _, v in points:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    fit = [m for m, n in blocks for _ in range(n)]
    assert fit[-1] <= target <= fit[0], "outside the family: the committed summary should be a bound"
    i = next(i for i, v in enumerate(fit) if v <= target)
    if i == 0:
        return points[0][0]
    frac = 1.0 if fit[i - 1] == fit[i] else (fit[i - 1] - target) / (fit[i - 1] - fit[i])
    return math.exp(math.log(points[i - 1][0]) + frac * (math.log(points[i][0]) - math.log(points[i - 1][0])))


def test_committed_summary_recomputes_from_the_committed_runs():
    path = REFERENCE / "summary.json"
    assert path.exists(), f"{path} is missing: the committed positive control (its README says how to make it)"
    summary = json.loads(path.read_text())
    metric = summary["metric"]
    cards = [json.loads(p.read_text()) for p in sorted((REFERENCE / "runs").glob("*/card.json"))]
    family = {}
    for card in cards:
        if card["config"]["arms"][card["arm"]]["policy"] == "uniform":
            row = _final(REFERENCE / "runs" / card["run"], metric)
            family.setdefault(card["seed"], []).append((row["step"], row[metric]))
    c = summary["construction"]
    share = c["noise_sequences"] / (c["text_sequences"] + c["noise_sequences"])
    assert share == pytest.approx(c["share_declared"], abs=1e-4)
    for arm, res in summary["arms"].items():
        logs = []
        for card in (c for c in cards if c["arm"] == arm):
            row = _final(REFERENCE / "runs" / card["run"], metric)
            logs.append(math.log(_needed_steps(family[card["seed"]], row[metric]) / row["step"]))
        assert len(logs) == len(summary["seeds"]) >= 3
        m = res["measured"]
        assert m["value"] == pytest.approx(math.exp(np.mean(logs)), rel=1e-6), arm
        half = st.t.ppf(0.975, len(logs) - 1) * np.std(logs, ddof=1) / math.sqrt(len(logs))
        assert m["ci_low"] == pytest.approx(math.exp(np.mean(logs) - half), rel=1e-6), arm
        assert m["ci_high"] == pytest.approx(math.exp(np.mean(logs) + half), rel=1e-6), arm
        predicted = res["prediction"]["predicted"]
        if res["prediction"]["text_share"] == 1.0:               # the oracle: 1 / (1 - s)
            assert predicted == pytest.approx(1.0 / (1.0 - share), rel=1e-9)
        word = CONTAINS if m["ci_low"] <= predicted <= m["ci_high"] else BELOW if m["ci_high"] < predicted else ABOVE
        assert res["verdict"] == word, arm
    # the assumption arm's noise factor is its own multiplier on the family (steps_A / needed_A), per seed
    chk = summary["assumptions_check"]
    noise = {}
    for card in (c for c in cards if c["arm"] == chk["arm"]):
        row = _final(REFERENCE / "runs" / card["run"], metric)
        noise[card["seed"]] = _needed_steps(family[card["seed"]], row[metric]) / row["step"]
    assert chk["noise"]["value"] == pytest.approx(math.exp(np.mean(np.log(list(noise.values())))), rel=1e-6)
