"""The positive control's figure. Left: per compared arm, the measured iterations multiplier (geometric mean
over seeds, 95% t-interval, each seed a dot) beside the construction's prediction (a red bar), on the same
log axis; the grey band is what the uniform family can measure for the arm (its smallest to largest
budget over the arm's own steps). Right: the uniform family's final metric against its steps (mean over
seeds, each seed a dot) with each arm's mean final value as a horizontal line at its own steps: where a
line meets the family curve is the measured multiplier.
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter


def plot_positive_control(summary: dict) -> Figure:
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax, fam_ax = fig.subplots(1, 2)
    arms = list(summary["arms"])
    for i, arm in enumerate(arms):
        r = summary["arms"][arm]
        if r.get("range"):
            ax.fill_between([i - 0.3, i + 0.3], *r["range"], color="0.9", zorder=0,
                            label="measurable by the family" if i == 0 else None)
        m = r["measured"]
        if m and m["value"]:
            lo = m["ci_low"] if m["ci_low"] is not None else m["value"]
            hi = m["ci_high"] if m["ci_high"] is not None else m["value"]
            ax.errorbar([i], [m["value"]], yerr=[[m["value"] - lo], [hi - m["value"]]], fmt="o", color="C0",
                        capsize=6, label="measured, 95% CI" if i == 0 else None)
            seeds = [p["value"] for p in m["per_seed"] if p["value"]]
            ax.scatter([i + 0.12] * len(seeds), seeds, s=12, color="C0", alpha=0.5)
        if r["prediction"]:
            ax.hlines(r["prediction"]["predicted"], i - 0.25, i + 0.25, color="C3", lw=2.5,
                      label="predicted by the construction" if i == 0 else None)
        if r.get("predicted_from_selected_share") and r["prediction"] and r["prediction"]["text_share"] < 1:
            ax.hlines(r["predicted_from_selected_share"], i - 0.25, i + 0.25, color="C3", lw=1.2, ls="--",
                      label="predicted from the text share it trained on")
    ax.set_xticks(range(len(arms)), arms)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks([0.5, 1, 2, 3, 4, 6, 8])
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_ylabel(f"multiplier ({summary['quantity']})")
    ax.set_title(f"noise share s = {summary['construction']['share']:.2f}: measured vs predicted")
    ax.legend(fontsize=8, loc="lower right")

    fam = summary["family"]
    steps = [f["iterations"] for f in fam]
    fam_ax.plot(steps, [f["final_mean"] for f in fam], "o-", color="0.3", label="uniform family (mean)")
    for f in fam:
        vals = list(f["final_per_seed"].values())
        fam_ax.scatter([f["iterations"]] * len(vals), vals, s=10, color="0.6")
    for i, arm in enumerate(arms):
        m = summary["arms"][arm]["measured"]
        per_seed = [p for p in (m or {}).get("per_seed", []) if p["value"]]
        if not per_seed:
            continue
        own = summary["construction"]["steps_1x"]
        final = sum(summary["arms"][arm]["final"].values()) / len(summary["arms"][arm]["final"]) \
            if summary["arms"][arm].get("final") else None
        if final is not None:
            fam_ax.axhline(final, color=f"C{i + 1}", lw=1, ls=":", label=f"{arm} at {own} steps (mean final)")
    fam_ax.set_xscale("log")
    fam_ax.xaxis.set_major_formatter(ScalarFormatter())
    fam_ax.xaxis.set_minor_formatter(NullFormatter())
    fam_ax.set_xticks(steps)
    fam_ax.set_xlabel("uniform steps")
    fam_ax.set_ylabel(summary["metric"])
    fam_ax.set_title("the uniform compute family")
    fam_ax.legend(fontsize=8)
    return fig
