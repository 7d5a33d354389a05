"""Figures of the multiplier view: the uniform family with the arms placed on it, the multiplier
per arm against 13x / 10x with the oracle_clean line, the multiplier per held-out set, and the
lm-eval snapshots with their standard errors (no parity interpolated between snapshots).

Same conventions as analysis.plots: Figures without pyplot, saved by analysis.plots.save.
Intervals are the t-intervals of analysis.stats; a bound is drawn as an open triangle pointing
where the truth lies (> : at least, < : at most).
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.colors import BASELINE_COLOR, color_of
from analysis.plots import CLAIMED, _log_flops_axis, multiplier_x_axis
from analysis.stats import Estimate

QUANTITY_LABEL = {"iterations": "training steps", "examples": "sequences trained on",
                  "train": "FLOPs (train)", "train+score": "FLOPs (train+score)", "total": "FLOPs (total)"}


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width))


def plot_family(family: list[dict], arms: dict, metric_label: str, quantities=("iterations", "train+score"),
                arm_colors: dict[str, str] | None = None) -> Figure:
    """The family's final metric vs compute (log x; per seed dots, mean line), each arm's mean final
    at its own compute (marker) with an arrow to where the family reaches the same value."""
    fig = Figure(figsize=(5.4 * len(quantities), 4.6), layout="constrained")
    axes = fig.subplots(1, len(quantities), sharey=True, squeeze=False)[0]
    colors = {a: color_of(arm_colors, a, list(arms)) for a in arms}
    for ax, q in zip(axes, quantities):
        xs = [f[q] for f in family]
        ax.plot(xs, [f["final_mean"] for f in family], color=BASELINE_COLOR, lw=1.8, marker="s", ms=6,
                label="uniform family (mean over seeds)")
        for f in family:
            vals = list(f["final_per_seed"].values())
            ax.plot([f[q]] * len(vals), vals, ls="none", marker=".", color=BASELINE_COLOR, alpha=0.5)
            ax.annotate(f"{f['budget']:g}x", (f[q], f["final_mean"]), textcoords="offset points", xytext=(4, 6),
                        fontsize=7, color=BASELINE_COLOR)
        for arm, a in arms.items():
            est, own = a["quantities"].get(q), a.get("own", {}).get(q)
            if est is None or est.value is None or not own:
                continue
            final = float(np.mean(list(a["final"].values())))
            needed = own * est.value
            ax.plot([own], [final], marker="o", ms=7, color=colors[arm], ls="none",
                    label=f"{arm}: {fmt_estimate(est)}")
            ax.annotate("", xy=(needed, final), xytext=(own, final),
                        arrowprops={"arrowstyle": "->", "color": colors[arm], "lw": 1.2})
        _log_flops_axis(ax)
        if q in ("iterations", "examples"):
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(f"compute: {QUANTITY_LABEL[q]} (log)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"multiplier in {QUANTITY_LABEL[q]}", fontsize=10)
    axes[0].set_ylabel(_wrap(f"final {metric_label}", 40))
    fig.suptitle(_wrap("Each arm's final value (dot, at its own compute) placed on the uniform family's "
                       "final values (squares): the arrow ends where uniform needs the same value", 110), fontsize=9)
    return fig


def fmt_estimate(e: Estimate | None) -> str:
    if e is None or e.value is None:
        return "n/a"
    head = {"lower": f"> {e.value:.2f}x", "upper": f"< {e.value:.2f}x", "mixed": f"~{e.value:.2f}x (bounds)"}.get(
        e.bound, f"{e.value:.2f}x")
    if e.n >= 2 and e.ci_low is not None and e.ci_high is not None and e.bound is None:
        return f"{head} [{e.ci_low:.2f}, {e.ci_high:.2f}]"
    return head


def _draw(ax, y, e: Estimate, color, label=None):
    if e is None or e.value is None:
        return
    lo = e.ci_low if e.ci_low is not None else (e.value if e.bound != "upper" else e.value / 4)
    hi = e.ci_high if e.ci_high is not None else (e.value if e.bound != "lower" else e.value * 4)
    marker = {"lower": ">", "upper": "<"}.get(e.bound, "o")
    ax.errorbar([e.value], [y], xerr=[[max(e.value - lo, 0)], [max(hi - e.value, 0)]], fmt=marker, color=color,
                ms=8, capsize=4, lw=1.5, mfc="white" if e.bound else color, label=label)


def plot_multipliers(rows: list[dict], ceiling: dict | None = None, arm_colors: dict[str, str] | None = None) -> Figure:
    """The multiplier per arm (iterations; FLOPs train+score) with its interval, against the claimed
    13x / 10x, 1x, and the oracle arm's multiplier as a reference line in that arm's colour (shaded:
    its interval). One legend for both panels, below them, where the layout keeps it clear of the
    axis labels (a legend anchored under each axis was drawn over its x label)."""
    panels = (("iterations", "iterations", CLAIMED["iterations"]), ("train+score", "FLOPs (train+score)",
                                                                     CLAIMED["flops"]))
    fig = Figure(figsize=(11, 1.8 + 0.55 * max(3, len(rows))), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    arms = [r["arm"] for r in rows]
    oracle = (ceiling or {}).get("arm", "oracle_clean")
    colors = {a: color_of(arm_colors, a, [*arms, oracle]) for a in [*arms, oracle]}
    ys = np.arange(len(rows))[::-1]
    for ax, (q, name, claim) in zip(axes, panels):
        for y, r in zip(ys, rows):
            e = r["iterations"] if q == "iterations" else r["flops"].get(q)
            _draw(ax, y, e, colors[r["arm"]])
        ax.axvline(claim, color="crimson", ls="--", lw=1.2, label=f"claimed {claim:g}x / {CLAIMED['flops']:g}x "
                   "(iterations / FLOPs; paper: image-text)" if q == "iterations" else None)
        ax.axvline(1.0, color="0.4", lw=0.8, label="1x = uniform" if q == "iterations" else None)
        c = (ceiling or {}).get("iterations") if q == "iterations" else ((ceiling or {}).get("flops") or {}).get(q)
        if c is not None and c.value is not None:
            ax.axvline(c.value, color=colors[oracle], lw=2, alpha=0.7,
                       label=f"{oracle} (reference line): {fmt_estimate(c)}" if q == "iterations" else None)
            if c.ci_low is not None and c.ci_high is not None:
                ax.axvspan(c.ci_low, c.ci_high, color=colors[oracle], alpha=0.10)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if f"{v:g}"[0] in "25" else ""))
        ax.set_xlabel(f"iso-loss compute multiplier in {name} (log)")
        ax.grid(alpha=0.3, which="both", axis="x")
        ax.set_xlim(0.1, 40)
    axes[0].set_yticks(ys, arms)
    if rows:
        fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(_wrap("Uniform compute needed for the arm's final value / the arm's compute; bars: 95% "
                       "t-interval over seeds; open triangles: bounds outside the family's range", 120), fontsize=9)
    return fig


def plot_per_set(per_set: list[dict], arms: list[str], arm_colors: dict[str, str] | None = None) -> Figure:
    """Iterations multiplier per held-out set and arm: what an arm gains on the curated domain and
    gives up elsewhere (left of 1x: uniform gets there with less)."""
    sets = list(dict.fromkeys(r["set"] for r in per_set))
    fig = Figure(figsize=(8, 1.4 + 0.5 * max(3, len(sets)) * max(1, len(arms)) ** 0.5), layout="constrained")
    ax = fig.add_subplot()
    colors = {a: color_of(arm_colors, a, arms) for a in arms}
    ys = np.arange(len(sets))[::-1]
    width = 0.7 / max(1, len(arms))
    for k, arm in enumerate(arms):
        for y, name in zip(ys, sets):
            row = next((r for r in per_set if r["set"] == name and r["arm"] == arm), None)
            if row is not None:
                _draw(ax, y + 0.35 - (k + 0.5) * width, row["iterations"], colors[arm],
                      arm if name == sets[0] else None)
    ax.axvline(1.0, color="0.4", lw=0.8)
    multiplier_x_axis(ax)
    ax.set_yticks(ys, sets)
    ax.set_xlabel("iso-loss multiplier in iterations, per held-out set (log; < 1: worse than uniform)")
    ax.grid(alpha=0.3, which="both", axis="x")
    ax.legend(fontsize=7, loc="best")
    ax.set_title("Where each arm gains and where it gives up", fontsize=10)
    return fig


def plot_lmeval(rows: list[dict], value: str = "margin", arms: list[str] | None = None,
                arm_colors: dict[str, str] | None = None) -> Figure:
    """Per task, the metric at each evaluated snapshot per arm with +-1 SE (item sampling); the
    snapshots are joined by thin lines only to guide the eye: nothing is read between them.

    The reference line: for accuracy, the task's chance (its metadata.chance, carried in the rows'
    "chance"); for the margin, 0, where the correct choice ties the best wrong one (margin > 0 is
    acc_norm = 1: jest.evaluation.margins), since a margin has no chance level of its own."""
    tasks = list(dict.fromkeys(r["task"] for r in rows if r.get(value) is not None))
    arms = arms or list(dict.fromkeys(r["arm"] for r in rows))
    n = max(1, len(tasks))
    cols = min(3, n)
    fig = Figure(figsize=(4.6 * cols, 3.4 * int(np.ceil(n / cols)) + 0.9), layout="constrained")
    axes = fig.subplots(int(np.ceil(n / cols)), cols, squeeze=False).ravel()
    colors = {a: color_of(arm_colors, a, arms) for a in arms}
    for ax, task in zip(axes, tasks):
        for arm in arms:
            pts = sorted((r for r in rows if r["task"] == task and r["arm"] == arm and r.get(value) is not None),
                         key=lambda r: r["step"])
            if not pts:
                continue
            se = [r.get(f"{value}_se") or 0.0 for r in pts]
            ax.errorbar([r["step"] for r in pts], [r[value] for r in pts], yerr=se, color=colors[arm], marker="o",
                        ms=4, lw=0.8, capsize=3, label=arm)
        chance = [r["chance"] for r in rows if r["task"] == task and r.get("chance") is not None]
        line = 0.0 if value == "margin" else (float(np.mean(chance)) if chance else None)
        if line is not None:
            ax.axhline(line, color="crimson", ls=":", lw=1.2,
                       label="0: correct ties the best wrong choice" if value == "margin" else "chance")
        ax.set_title(_wrap(task + (f" (chance {line:g})" if line is not None and value != "margin" else ""), 50),
                     fontsize=9)
        ax.set_xlabel("training step (snapshot)")
        ax.grid(alpha=0.3)
    for ax in axes[len(tasks):]:
        ax.set_axis_off()
    axes[0].set_ylabel("log-likelihood margin (nats/char)" if value == "margin" else "accuracy")
    if tasks:
        axes[0].legend(fontsize=7)
    fig.suptitle(_wrap(f"lm-eval {value} per task at each evaluated snapshot, +-1 standard error; dotted red: "
                       + ("0 (the correct choice ties the best wrong one)" if value == "margin"
                          else "the task's chance accuracy"), 110), fontsize=9)
    return fig


__all__ = ["fmt_estimate", "plot_family", "plot_lmeval", "plot_multipliers", "plot_per_set"]
