"""The ladder's figure: multiplier vs learner compute, log-log, one panel per claim quantity
(iterations, train+score FLOPs). Every rung is drawn with each arm's geometric mean and its 95%
t-interval; the 13x / 10x lines; the shaded band is what the rungs' uniform families can measure
for an arm of a 1x uniform run's cost (the budgets' span), and the x axis ends at the measured
rungs: no line is drawn beyond the covered compute (nothing is extrapolated). Bounds are open
triangles (> at least, < at most).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.ladder_stats import CLAIM_QUANTITY, PLOT_QUANTITIES

LABEL = {"iterations": "multiplier in training steps", "train+score": "multiplier in FLOPs (train+score)"}


def plot_ladder(summary: dict) -> Figure:
    rungs = {r: res for r, res in summary["rungs"].items() if res["learner_flops_1x"]}
    arms = sorted({a for res in rungs.values() for a in res["arms"]})
    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, len(PLOT_QUANTITIES), squeeze=False)[0]
    colors = {a: c for a, c in zip(arms, [f"C{i}" for i in range(10)] * 3)}
    for ax, q in zip(axes, PLOT_QUANTITIES):
        xs = [res["learner_flops_1x"] for res in rungs.values()]
        # what a rung's family measures for an arm of one 1x uniform run's cost (controls; JEST in
        # iterations): the family's smallest to largest budget. An arm's own range is in the summary.
        budgets = [b for res in rungs.values() for b in res["family"].values()]
        if xs and budgets:
            ax.fill_between(xs, [min(budgets)] * len(xs), [max(budgets)] * len(xs), color="0.88", zorder=0,
                            label=f"measurable at 1x cost: the families' {min(budgets):g}x-{max(budgets):g}x")
        for i, arm in enumerate(arms):
            pts = []
            for res in rungs.values():
                e = res["arms"].get(arm, {}).get("multiplier", {}).get(q)
                if e and e["value"]:
                    pts.append((res["learner_flops_1x"], e))
            if not pts:
                continue
            x = np.array([p[0] for p in pts]) * (1 + 0.04 * (i - len(arms) / 2))  # dodge overlapping bars
            y = np.array([p[1]["value"] for p in pts])
            lo = np.array([p[1]["ci_low"] if p[1]["ci_low"] is not None else p[1]["value"] for p in pts])
            hi = np.array([p[1]["ci_high"] if p[1]["ci_high"] is not None else p[1]["value"] for p in pts])
            ax.errorbar(x, y, yerr=[y - lo, hi - y], color=colors[arm], marker="o", ms=5, capsize=3, lw=1.3,
                        label=arm)
            for xi, (_, e) in zip(x, pts):
                if e["bound"] in ("lower", "upper"):
                    ax.plot([xi], [e["value"]], marker="^" if e["bound"] == "lower" else "v", mfc="none",
                            color=colors[arm], ms=10)
        # only the claim made in this panel's quantity (13x in steps, 10x in FLOPs), named on the line
        for factor, quantity in CLAIM_QUANTITY.items():
            if quantity == q:
                ax.axhline(factor, color="crimson", ls="--", lw=1, label=f"claimed {factor:g}x ({quantity})")
                ax.text(0.01, factor * 1.06, f"claimed {factor:g}x", color="crimson", fontsize=8,
                        transform=ax.get_yaxis_transform())
        ax.axhline(1.0, color="0.4", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        if xs:
            ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
        for r, res in rungs.items():        # which rung each x is, with its learner size
            ax.annotate(f"{r}\n{res['matmul_params'] / 1e6:.2g}M", (res["learner_flops_1x"], 0), xytext=(0, 3),
                        textcoords="offset points", xycoords=("data", "axes fraction"), ha="center",
                        va="bottom", fontsize=7, color="0.3")
        ax.set_xlabel("learner compute (FLOPs of the rung's 1x uniform run)")
        ax.set_ylabel(LABEL[q])
        ax.set_title(f"{q}: rungs {', '.join(rungs)} (no extrapolation beyond them)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    if any(e["bound"] for res in rungs.values() for a in res["arms"].values() for e in a["multiplier"].values()):
        axes[-1].plot([], [], marker="v", mfc="none", ls="none", color="0.3", ms=8,
                      label="open triangle: a bound (beyond\nthe rung's family; ^ at least, v at most)")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
