"""The held-out sets as measuring instruments: how large each is, how much its own sampling moves the
loss, and how that compares with the seed-to-seed spread and with the difference the multiplier is
asked to resolve (issue #27, item 2).

Per held-out set, for the baseline (the uniform arm at budget 1):

- sequences, tokens: the set's size, from the runs' metrics rows (heldout_sequences[_<set>],
  heldout_tokens[_<set>]); for runs older than those rows the card's `heldout_sets` gives the sequences
  (it always listed them) and the tokens where it lists them; otherwise None ("not logged").
- se: the standard error of the final loss over the set's sequences (jest.evaluation.heldout), mean over
  the baseline's seeds; None where no run logged it. Every arm is scored on the same sequences, so this
  error is shared by the arms: it bounds what the set can say about one arm's loss, and cancels in large
  part from a paired comparison of two arms (only the arms' disagreement sequence by sequence is left).
- seed_sd: the sd (ddof 1) of the baseline's final loss over seeds, the noise every interval carries.
- margin_gap: the loss difference that the equivalence margin's multiplier (1.1x by default) stands for
  at the baseline's compute, read from the uniform family's pooled curve (the same monotone fit, linear
  in log compute, that places every arm): L(C_1x) - L(margin x C_1x). None when margin x C_1x lies
  beyond the family's largest budget.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.multiplier import POOLED, family_curves, family_value, run_finals
from analysis.verdicts import GENERAL, heldout_metrics, heldout_set

SIZE_KEYS = ("heldout_sequences", "heldout_tokens")
SE_KEY = "heldout_se_loss"


def _suffix(set_name: str) -> str:
    return "" if set_name == "default" else f"_{set_name}"


def _last(curves: pd.DataFrame, runs: list[str], column: str) -> list[float]:
    """Each run's last logged value of `column` (runs that never logged it are left out)."""
    if column not in curves:
        return []
    d = curves[curves["run"].isin(runs) & curves[column].notna()].sort_values("step", kind="stable")
    return [float(v) for v in d.groupby("run", sort=True)[column].last()]


def _from_cards(cards: list[dict], runs: list[str], set_name: str, key: str) -> float | None:
    """The set's `key` (sequences, tokens) from the first of `runs` whose card lists it."""
    name = "curated" if set_name == "default" else set_name
    for card in cards:
        if card.get("run") in runs:
            value = ((card.get("heldout_sets") or {}).get(name) or {}).get(key)
            if value is not None:
                return float(value)
    return None


def _margin_gap(curves: pd.DataFrame, metric: str, family: dict[str, float], baseline: str,
                margin: float) -> float | None:
    finals = run_finals(curves, metric)
    pooled = family_curves(finals, family).get(POOLED)
    base = finals[finals["arm"] == baseline]
    if pooled is None or base.empty:
        return None
    at = float(base["iterations"].mean())
    here = family_value(pooled.compute["iterations"], pooled.values, at)
    there = family_value(pooled.compute["iterations"], pooled.values, at * margin)
    return None if here is None or there is None else here - there


def heldout_set_table(curves: pd.DataFrame, cards: list[dict], baseline: str | None, family: dict[str, float],
                      margin: float) -> list[dict]:
    """One row per held-out set with a loss column (the curated domain first; the general-domain
    metric, an average of sets, has no sequences of its own and is left out): {set, metric, sequences,
    tokens, se, se_seeds, seed_sd, seeds, margin, margin_gap}; None where a number was not logged."""
    if baseline is None or curves.empty:
        return []
    runs = sorted(set(curves.loc[curves["arm"] == baseline, "run"]))
    rows = []
    for metric in heldout_metrics(curves):
        set_name = heldout_set(metric)
        if not metric.startswith("heldout_loss") or set_name == GENERAL:
            continue
        sizes = {}
        for key, card_key in zip(SIZE_KEYS, ("sequences", "tokens")):
            logged = _last(curves, runs, key + _suffix(set_name))
            sizes[card_key] = logged[0] if logged else _from_cards(cards, runs, set_name, card_key)
        se = _last(curves, runs, SE_KEY + _suffix(set_name))
        finals = _last(curves, runs, metric)
        rows.append({"set": set_name, "metric": metric, **{k: None if v is None else int(v) for k, v in sizes.items()},
                     "se": float(np.mean(se)) if se else None, "se_seeds": len(se),
                     "seed_sd": float(np.std(finals, ddof=1)) if len(finals) >= 2 else None, "seeds": len(finals),
                     "margin": margin, "margin_gap": _margin_gap(curves, metric, family, baseline, margin)})
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]


__all__ = ["heldout_set_table"]
