"""The ladder's figures. `plot_ladder`: multiplier vs the ladder's axis (learner compute, or tokens per
parameter on the length axis), log-log, one panel per claim quantity (iterations, train+score FLOPs).
Every rung is drawn with each arm's geometric mean and its 95% t-interval; the 13x / 10x lines; the shaded band is what the rungs' uniform families can measure
for an arm of a 1x uniform run's cost (the budgets' span), and the x axis ends at the measured
rungs: no line is drawn beyond the covered compute (nothing is extrapolated). Bounds are open
triangles (> at least, < at most).

`plot_regime_map`: where the measurements lie over (learner parameters, tokens per parameter), each
rung's JEST multiplier written beside it, and the claim's regime (a 7B learner trained on 20 or more
tokens per parameter) marked, so the distance between what was measured and what was claimed is
visible at a glance. `python -m analysis.plots_ladder OUT.png SUMMARY.json...` draws it from several
committed summaries (the ladder's and the length axis').
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.ladder_stats import CLAIM_QUANTITY, PLOT_QUANTITIES

LABEL = {"iterations": "multiplier in training steps", "train+score": "multiplier in FLOPs (train+score)"}


CLAIM_PARAMS, CLAIM_TOKENS_PER_PARAM = 7e9, 20.0  # the claim's regime: a 7B learner, compute-optimal or longer


def figure_name(summary: dict) -> str:
    return "multiplier_vs_length.png" if summary.get("axis") == "tokens_per_param" else "multiplier_vs_compute.png"


def _x(res: dict, axis: str) -> float | None:
    return res.get("tokens_per_param") if axis == "tokens_per_param" else res["learner_flops_1x"]


def plot_ladder(summary: dict) -> Figure:
    axis = summary.get("axis", "compute")
    rungs = {r: res for r, res in summary["rungs"].items() if _x(res, axis)}
    arms = sorted({a for res in rungs.values() for a in res["arms"]})
    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, len(PLOT_QUANTITIES), squeeze=False)[0]
    colors = {a: c for a, c in zip(arms, [f"C{i}" for i in range(10)] * 3)}
    for ax, q in zip(axes, PLOT_QUANTITIES):
        xs = [_x(res, axis) for res in rungs.values()]
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
                    pts.append((_x(res, axis), e))
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
        for r, res in rungs.items():        # which rung each x is, with its learner size (or length)
            what = f"{res['tokens_per_param']:.3g} tok/p" if axis == "tokens_per_param" else f"{res['matmul_params'] / 1e6:.2g}M"
            ax.annotate(f"{r}\n{what}", (_x(res, axis), 0), xytext=(0, 3),
                        textcoords="offset points", xycoords=("data", "axes fraction"), ha="center",
                        va="bottom", fontsize=7, color="0.3")
        ax.set_xlabel(summary.get("axis_label") or "learner compute (FLOPs of the rung's 1x uniform run)")
        ax.set_ylabel(LABEL[q])
        ax.set_title(f"{q}: rungs {', '.join(rungs)} (no extrapolation beyond them)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    if any(e["bound"] for res in rungs.values() for a in res["arms"].values() for e in a["multiplier"].values()):
        axes[-1].plot([], [], marker="v", mfc="none", ls="none", color="0.3", ms=8,
                      label="open triangle: a bound (beyond\nthe rung's family; ^ at least, v at most)")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _jest_arm(res: dict) -> str | None:
    arms = sorted(a for a in res["arms"] if a.startswith("jest"))
    return "jest_f0.8" if "jest_f0.8" in arms else (arms[-1] if arms else None)


def _estimate_text(e: dict) -> str:
    sign = {"lower": ">", "upper": "<"}.get(e["bound"], "")
    end = lambda v: "open" if v is None else f"{v:.2f}"  # noqa: E731
    return f"{sign}{e['value']:.2f}x" + ("" if e["n"] < 2 else f" [{end(e['ci_low'])}, {end(e['ci_high'])}]")


def plot_regime_map(summaries: list[dict]) -> Figure:
    """Every rung of every summary at (matmul params, tokens per parameter), labelled with its JEST
    multiplier in iterations (95% interval), and the claim's regime, on log-log axes."""
    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.subplots()
    xs, ys = [CLAIM_PARAMS], [CLAIM_TOKENS_PER_PARAM]
    for i, summary in enumerate(summaries):
        pts = [(res["matmul_params"], res.get("tokens_per_param") or res["tokens"] / res["matmul_params"], r, res)
               for r, res in summary["rungs"].items()]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=40, color=f"C{i}", zorder=3,
                   label=f"{summary['config']} ({summary.get('axis', 'compute')} axis, {len(summary['seeds'])} seeds)")
        for n, t, r, res in pts:
            xs.append(n)
            ys.append(t)
            arm = _jest_arm(res)
            e = res["arms"].get(arm, {}).get("multiplier", {}).get("iterations") if arm else None
            text = f"{r}: {arm} {_estimate_text(e)}" if e and e["value"] else f"{r}: not measured"
            ax.annotate(text, (n, t), xytext=(6, 4), textcoords="offset points", fontsize=7, color=f"C{i}")
    ax.fill_between([CLAIM_PARAMS, CLAIM_PARAMS * 30], CLAIM_TOKENS_PER_PARAM, CLAIM_TOKENS_PER_PARAM * 100,
                    color="crimson", alpha=0.15, zorder=1,
                    label="the claim's regime: 7B learner, 20+ tokens per parameter (13x iterations, 10x FLOPs)")
    ax.axhline(CLAIM_TOKENS_PER_PARAM, color="0.5", ls=":", lw=1, label="20 tokens per parameter (compute-optimal)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(min(xs) / 3, CLAIM_PARAMS * 30)
    ax.set_ylim(min(ys) / 3, max(max(ys), CLAIM_TOKENS_PER_PARAM) * 100)
    ax.set_xlabel("learner matmul parameters")
    ax.set_ylabel("training tokens per parameter (1x run)")
    ax.set_title("Where JEST's multiplier was measured, and where the claim lies (no extrapolation between them)",
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json
    from pathlib import Path
    p = argparse.ArgumentParser(description="Draw the regime map from ladder / length summaries.")
    p.add_argument("out")
    p.add_argument("summaries", nargs="+")
    args = p.parse_args(argv)
    plot_regime_map([json.loads(Path(f).read_text()) for f in args.summaries]).savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
