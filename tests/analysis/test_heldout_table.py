"""analysis.heldout_table and its report section: each held-out set's size, the standard error of the
uniform 1x arm's final loss, the seed-to-seed sd and the loss gap of the margin, with and without the
rows that log them (runs from before them show 'not logged', never a number)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis.report import build_report
from tests.analysis.conftest import T, loss, make_synth_results

SE_BY_SEED = {0: 0.020, 1: 0.021, 2: 0.025}


def _log_se(runs, sets=("", "_src_email", "_ext_bible")) -> None:
    """The new rows, on the uniform 1x arm only: an SE per seed, 64 sequences of 127 target tokens."""
    for seed, se in SE_BY_SEED.items():
        path = runs / f"uniform_s{seed}" / "metrics.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for row in rows:
            if "heldout_loss" in row:
                for suffix in sets:
                    row.update({f"heldout_se_loss{suffix}": se, f"heldout_sequences{suffix}": 64,
                                f"heldout_tokens{suffix}": 64 * 127})
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _expected_gap(margin: float = 1.1) -> float:
    """L(200) - L(220) on the family's curve, linear in log steps between its 1x (200) and 2x (400) budgets."""
    frac = math.log(margin) / math.log(2)
    return frac * (loss(T) - loss(2 * T))


def _build(tmp_path, log_se: bool):
    res = make_synth_results(tmp_path)
    if log_se:
        _log_se(res["runs"])
    out = tmp_path / "out"
    summary = build_report(res["results"], "synth", out, n_boot=50, figures=False)
    return summary, (out / "report.md").read_text()


def test_the_table_without_the_rows_says_not_logged_and_invents_nothing(tmp_path):
    summary, md = _build(tmp_path, log_se=False)
    rows = {r["set"]: r for r in summary["heldout_sets"]}
    assert list(rows) == ["default", "ext_bible", "src_email"]   # the curated domain first; no 'general'
    for r in rows.values():
        assert r["sequences"] is None and r["tokens"] is None and r["se"] is None and r["se_seeds"] == 0
        # the per-seed offsets -0.01, 0, +0.01: sd 0.01; the sets share them
        assert r["seed_sd"] == pytest.approx(0.01) and r["seeds"] == 3
    assert rows["default"]["margin_gap"] == pytest.approx(_expected_gap(), rel=1e-9)
    section = md.split("## Held-out sets: size and noise")[1].split("\n## ")[0]
    assert section.count("| not logged ") == 3 * 3                   # sequences, tokens, SE of each set
    claims = md.split("## Claims")[1].split("\n## ")[0]                # the caveat beside the verdicts
    assert "a number of sequences not logged" in claims and "that these runs did not log" in claims


def test_the_table_with_the_rows_reads_them(tmp_path):
    summary, md = _build(tmp_path, log_se=True)
    rows = {r["set"]: r for r in summary["heldout_sets"]}
    for r in rows.values():
        assert (r["sequences"], r["tokens"], r["se_seeds"]) == (64, 8128, 3)
        assert r["se"] == pytest.approx(np.mean(list(SE_BY_SEED.values())))
    assert "| not logged " not in md and "not logged" not in md.split("## Claims")[1].split("\n## ")[0]
    assert "is 64 sequences (8,128 tokens); the uniform 1x arm's final loss on it has a standard error over " \
           "those sequences of 0.022 nats, a seed-to-seed sd of 0.01 nats" in md
    section = md.split("## Held-out sets: size and noise")[1].split("\n## ")[0]
    assert "| default | 64 | 8,128 | 0.022 (3 seeds) | 0.01 (3 seeds) |" in section
    assert f"{_expected_gap():.3g}" in section


def test_sequences_from_the_card_when_the_rows_do_not_log_them(tmp_path):
    """Cards list each set's sequences (and, from the SE rows on, its tokens); older rows do not."""
    res = make_synth_results(tmp_path)
    for seed in SE_BY_SEED:
        card_path = res["runs"] / f"uniform_s{seed}" / "card.json"
        card = json.loads(card_path.read_text())
        card["heldout_sets"] = {"curated": {"split": "heldout", "sequences": 64},
                                "src_email": {"split": "pool_heldout", "sequences": 32, "tokens": 32 * 127}}
        card_path.write_text(json.dumps(card))
    summary = build_report(res["results"], "synth", tmp_path / "out", n_boot=50, figures=False)
    rows = {r["set"]: r for r in summary["heldout_sets"]}
    assert (rows["default"]["sequences"], rows["default"]["tokens"]) == (64, None)
    assert (rows["src_email"]["sequences"], rows["src_email"]["tokens"]) == (32, 4064)
    assert rows["ext_bible"]["sequences"] is None and all(r["se"] is None for r in rows.values())


def test_no_family_no_gap(tmp_path):
    res = make_synth_results(tmp_path, family=False)
    summary = build_report(res["results"], "synth", tmp_path / "out", n_boot=50, figures=False)
    assert summary["heldout_sets"] and all(r["margin_gap"] is None for r in summary["heldout_sets"])
    assert summary["baseline"]["arm"] == "uniform"
