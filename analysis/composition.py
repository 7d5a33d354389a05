"""What the arms trained on: selected share per provenance label over training, against the pool.

The trainer logs, every step, the share of the trained sub-batch per label as
`sel_share_source_<src>` and `sel_share_quality_<q>`, and writes the pool's
shares into the card as `pool_share["pool_share_source_<src>"]` (jest.training.trainer.label_shares).
A uniform arm's selected shares estimate the pool's; a JEST arm's show what
selection preferred. Labels are never seen by selection; only this report uses them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from jest.policies.registry import UnknownPolicyError, get_spec

KINDS = ("source", "quality")


def share_columns(columns, kind: str, prefix: str = "sel_share_") -> dict[str, str]:
    """label -> column for one label kind, e.g. {'brown': 'sel_share_source_brown'}."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    head = f"{prefix}{kind}_"
    return {c[len(head):]: c for c in sorted(columns) if c.startswith(head)}


def whole_pool_cards(cards: list[dict]) -> list[dict]:
    """Cards of runs that draw from the whole pool (uniform, JEST). A control arm's `pool_share`
    describes its own draw set (the clean sequences, the filtered fifth, the curated split), which
    differs from the pool by design (baselines/controls.py)."""
    def policy(card: dict) -> str | None:
        return ((card.get("config") or {}).get("arms") or {}).get(card.get("arm"), {}).get("policy")
    def whole_pool(name: str | None) -> bool:
        try:
            spec = get_spec(name)
        except UnknownPolicyError:  # a plugin that is not loaded here: its cards' shares are its own
            return False
        return spec.draws_from == "split" and spec.train_split == "pool"
    return [c for c in cards if policy(c) is None or whole_pool(policy(c))]


def pool_shares(cards: list[dict], kind: str) -> pd.Series:
    """The pool's share per label from the runs' cards (the first card that has them).

    All runs of a config train on the same pool; if cards disagree (a config changed
    between runs) the first card wins and the caller should flag it (`pool_shares_agree`).
    """
    for card in whole_pool_cards(cards):
        shares = card.get("pool_share") or {}
        cols = share_columns(shares, kind, prefix="pool_share_")
        if cols:
            return pd.Series({label: float(shares[c]) for label, c in cols.items()}, name="pool_share")
    return pd.Series(dtype=float, name="pool_share")


def pool_shares_agree(cards: list[dict], tol: float = 1e-9) -> bool:
    shares = [c.get("pool_share") for c in whole_pool_cards(cards) if c.get("pool_share")]
    return all(set(s) == set(shares[0]) and all(abs(s[k] - shares[0][k]) <= tol for k in s) for s in shares)


def selection_over_training(curves: pd.DataFrame, kind: str = "source", n_bins: int = 10) -> pd.DataFrame:
    """Selected share per arm, label and step bin (equal-width bins over 0..last step).

    Columns: arm, bin, step_lo, step_hi, step_mid, label, share (mean over the bin's steps,
    then over seeds), share_sd (standard deviation over seeds; 0 with one seed), n_seeds.
    """
    cols = share_columns(curves.columns, kind)
    out_cols = ["arm", "bin", "step_lo", "step_hi", "step_mid", "label", "share", "share_sd", "n_seeds"]
    if not cols or curves.empty:
        return pd.DataFrame(columns=out_cols)
    d = curves[["arm", "seed", "step", *cols.values()]].dropna(subset=list(cols.values()), how="all")
    if d.empty:
        return pd.DataFrame(columns=out_cols)
    last = float(d["step"].max())
    edges = np.linspace(0.0, last, n_bins + 1)
    d = d.assign(bin=np.clip(np.searchsorted(edges, d["step"].to_numpy(float), side="left") - 1, 0, n_bins - 1))
    long = d.melt(id_vars=["arm", "seed", "bin"], value_vars=list(cols.values()), var_name="column", value_name="v")
    long["label"] = long["column"].map({c: label for label, c in cols.items()})
    per_seed = long.groupby(["arm", "label", "bin", "seed"], as_index=False)["v"].mean()
    agg = per_seed.groupby(["arm", "label", "bin"]).agg(share=("v", "mean"), share_sd=("v", "std"),
                                                        n_seeds=("v", "size")).reset_index()
    agg["share_sd"] = agg["share_sd"].fillna(0.0)
    agg["step_lo"] = edges[agg["bin"]]
    agg["step_hi"] = edges[agg["bin"] + 1]
    agg["step_mid"] = (agg["step_lo"] + agg["step_hi"]) / 2
    return agg[out_cols].sort_values(["arm", "label", "bin"], ignore_index=True)


def composition_summary(curves: pd.DataFrame, pool: pd.Series, kind: str = "source") -> pd.DataFrame:
    """Whole-run selected share per arm and label against the pool share.

    Columns: arm, label, pool_share, selected_share (mean over steps and seeds),
    enrichment (selected / pool; > 1: selection preferred the label).
    """
    cols = share_columns(curves.columns, kind)
    out_cols = ["arm", "label", "pool_share", "selected_share", "enrichment"]
    if not cols or curves.empty:
        return pd.DataFrame(columns=out_cols)
    per_seed = curves.groupby(["arm", "seed"])[list(cols.values())].mean()
    sel = per_seed.groupby("arm").mean().rename(columns={c: label for label, c in cols.items()})
    long = sel.reset_index().melt(id_vars="arm", var_name="label", value_name="selected_share")
    long["pool_share"] = long["label"].map(pool).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        long["enrichment"] = long["selected_share"] / long["pool_share"]
    return long[out_cols].sort_values(["arm", "label"], ignore_index=True)
