"""Figures of the report: curves with parity points, speedups against the claims, composition.

Every function returns a matplotlib Figure built without pyplot (no global
state, no GUI backend: safe in Snakemake jobs and threads); `save` writes it as
PNG (embedded in report.html) and SVG (for papers). Bands are min..max over
seeds; error bars are the bootstrap CIs of analysis.parity.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; harmless if pyplot was never imported
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from analysis.colors import BASELINE_COLOR, color_of
from analysis.parity import ACCOUNTINGS, Metric, ParityResult, SeedCurves, Speedup

CLAIMED = {"iterations": 13.0, "flops": 10.0}  # the article's "13x fewer iterations, 10x less compute"
DPI = 120


def _colors(names: list[str]) -> dict[str, str]:
    """Distinct colours for labels that are not arms (the composition's sources and qualities):
    Dark2 up to 8 names, tab20 beyond; not the arms' palette (analysis.colors), so that a source is
    never read as an arm."""
    if len(names) <= 8:
        cmap = matplotlib.colormaps["Dark2"]
        return {n: matplotlib.colors.to_hex(cmap(i)) for i, n in enumerate(names)}
    cmap = matplotlib.colormaps["tab20"]
    return {n: matplotlib.colors.to_hex(cmap(i % 20)) for i, n in enumerate(names)}


def save(fig: Figure, out_dir: Path, name: str) -> dict[str, str]:
    """Write `name`.png and `name`.svg under out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"png": str(out_dir / f"{name}.png"), "svg": str(out_dir / f"{name}.svg")}
    fig.savefig(paths["png"], dpi=DPI, metadata={"Software": None})
    fig.set_layout_engine("none")  # keep the layout the PNG computed: the SVG skips a second solve
    fig.savefig(paths["svg"], metadata={"Date": None})  # no timestamp: reruns give identical files
    return paths


def _sci(x: float, _pos=None) -> str:
    """1e+11 -> '1e11', 2e+11 -> '2e11': short FLOP tick labels."""
    if x <= 0:
        return ""
    e = int(np.floor(np.log10(x) + 1e-9))
    m = x / 10.0 ** e
    return f"{m:.0f}e{e}" if abs(m - round(m)) < 1e-6 else f"{m:.1f}e{e}"


def _log_flops_axis(ax) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(_sci))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_speedup_axis(ax) -> None:
    """Log y with plain tick labels at powers of two ('0.5x', '1x', '2x', ..., '32x')."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator([2.0 ** k for k in range(-6, 8)]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _band(ax, x, curves: SeedCurves, color, label, values=None):
    v = curves.values if values is None else values
    mean = v.mean(axis=0)
    ax.plot(x, mean, color=color, lw=1.8, marker="o", ms=3, label=f"{label} ({curves.n_seeds} seed"
            f"{'s' if curves.n_seeds != 1 else ''})")
    if curves.n_seeds > 1:
        ax.fill_between(x, v.min(axis=0), v.max(axis=0), color=color, alpha=0.18, lw=0)


def _fmt_speedup(sp: Speedup) -> str:
    if sp.value is None:
        return "n/a"
    prefix = {"upper": "< ", "lower": ">= "}.get(sp.bound, "")
    return f"{prefix}{sp.value:.2f}x"


def plot_metric_vs_steps(curves: dict[str, SeedCurves], results: list[ParityResult], metric: Metric,
                         baseline_arm: str, references: dict[str, float] | None = None,
                         arm_colors: dict[str, str] | None = None) -> Figure:
    """(a) The metric over training steps: baseline and arms, the target and each parity point.

    references: name -> the reference model's own final value of the metric (dotted lines):
    how close selection lets the learner come to its teacher. arm_colors: analysis.colors.arm_colors."""
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    arms = [a for a in curves if a != baseline_arm]
    colors = {a: color_of(arm_colors, a, arms) for a in arms}
    base = curves[baseline_arm]
    _band(ax, base.steps, base, BASELINE_COLOR, f"{baseline_arm} (baseline)")
    by_arm = {r.arm: r for r in results}
    for arm in arms:
        _band(ax, curves[arm].steps, curves[arm], colors[arm], arm)
        r = by_arm.get(arm)
        if r is not None and r.reached:
            ax.plot([r.T_j], [r.target], marker="*", ms=14, color=colors[arm], mec="black", mew=0.6, zorder=5,
                    ls="none", label=f"{arm} parity: step {r.T_j:.0f}, {_fmt_speedup(r.iterations)}")
            ax.axvline(r.T_j, color=colors[arm], lw=0.8, ls=":")
        elif r is not None:
            ax.plot([], [], ls="none", label=f"{arm}: not reached ({_fmt_speedup(r.iterations)})")
    target, T_u = (results[0].target, results[0].T_u) if results else (float(base.values[:, -1].mean()),
                                                                       float(base.steps[-1]))
    ax.axhline(target, color=BASELINE_COLOR, lw=1, ls="--",
               label=f"target: {baseline_arm} at step {T_u:.0f} = {target:.4g}")
    for name, value in (references or {}).items():
        ax.axhline(value, color="0.5", lw=1, ls=":", label=f"reference '{name}' (its final value) = {value:.4g}")
    ax.set_xlabel("training step (iterations)")
    ax.set_ylabel(textwrap.fill(metric.axis_label, 40))
    ax.set_title(textwrap.fill(f"{metric.axis_label} vs iterations; band: min-max over seeds", 80), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _flops_at(curves: SeedCurves, acc: str) -> np.ndarray:
    """Mean cumulative FLOPs (accounting `acc`) at the curve's eval steps."""
    return np.interp(curves.steps, curves.flop_steps, curves.flops[acc].mean(axis=0))


def plot_metric_vs_flops(curves: dict[str, SeedCurves], results: list[ParityResult], metric: Metric,
                         baseline_arm: str, accountings: tuple[str, ...] = tuple(ACCOUNTINGS),
                         arm_colors: dict[str, str] | None = None) -> Figure:
    """(b) The metric against cumulative FLOPs, one panel per accounting (log x)."""
    accs = [a for a in accountings if all(a in c.flops for c in curves.values())]
    fig = Figure(figsize=(5.0 * max(1, len(accs)), 4.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(accs)), sharey=True, squeeze=False)[0]
    arms = [a for a in curves if a != baseline_arm]
    colors = {a: color_of(arm_colors, a, arms) for a in arms}
    by_arm = {r.arm: r for r in results}
    for ax, acc in zip(axes, accs):
        for arm in [baseline_arm, *arms]:
            c = curves[arm]
            color = BASELINE_COLOR if arm == baseline_arm else colors[arm]
            _band(ax, _flops_at(c, acc), c, color, arm if arm != baseline_arm else f"{arm} (baseline)")
            r = by_arm.get(arm)
            if r is not None and r.reached and acc in r.flops_at_parity:
                ax.plot([r.flops_at_parity[acc]["arm"]], [r.target], marker="*", ms=13, color=color, mec="black",
                        mew=0.6, ls="none", zorder=5, label=f"{arm} parity: {_fmt_speedup(r.flops[acc])} FLOPs")
        if results:
            ax.axhline(results[0].target, color=BASELINE_COLOR, lw=1, ls="--", label="target")
        _log_flops_axis(ax)
        if acc == "total":
            # one-time reference costs put the JEST arms' whole runs in a narrow band far right: start
            # the axis a decade below the cheapest run's end instead of at step 1 of uniform
            ends = [_flops_at(curves[a], acc)[-1] for a in curves]
            ax.set_xlim(min(ends) / 10, max(ends) * 1.5)
        ax.set_xlabel(f"cumulative FLOPs, accounting '{acc}'")
        ax.set_title(f"accounting: {acc}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel(textwrap.fill(metric.axis_label, 40))
    if not accs:
        axes[0].text(0.5, 0.5, "no FLOP columns logged", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(textwrap.fill(f"{metric.axis_label} vs compute ('total' includes the one-time reference cost)",
                               110), fontsize=10)
    return fig


def _errorbar(ax, x, sp: Speedup, color, label=None, marker="o"):
    """A speedup point with its CI; bounds drawn as triangles pointing where the truth lies."""
    if sp.value is None:
        return
    m = {"upper": "v", "lower": "^"}.get(sp.bound, marker)
    lo, hi = (sp.ci_low if sp.ci_low is not None else sp.value), (sp.ci_high if sp.ci_high is not None else sp.value)
    yerr = np.array([[max(sp.value - lo, 0.0)], [max(hi - sp.value, 0.0)]])
    ax.errorbar([x], [sp.value], yerr=yerr, fmt=m, color=color, ms=8, capsize=4, lw=1.4,
                mfc=color if sp.bound is None else "white", label=label)


def _log_ylim(ax, values):
    vals = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    if vals:
        ax.set_ylim(min(min(vals), 0.5) / 1.5, max(max(vals), 20.0) * 1.5)


def filter_ratios_to_show(rows: list[dict]) -> bool:
    """Whether a multiplier-vs-filter-ratio figure has something to show: a series of JEST arms
    at two or more filter ratios (one ratio is one point on an axis of its own: the per-arm
    figure shows it already)."""
    by_series: dict[str, set] = {}
    for r in rows:
        by_series.setdefault(r["series"], set()).add(r["filter_ratio"])
    return any(len(ratios) >= 2 for ratios in by_series.values())


def plot_speedup_vs_filter_ratio(rows: list[dict], flop_accounting: str = "train+score",
                                 what: str = "iso-loss multiplier", ceiling: dict | None = None,
                                 arm_colors: dict[str, str] | None = None) -> Figure:
    """(c) Multiplier vs filter ratio with CIs against the claimed 13x (iterations) and 10x (FLOPs).

    rows: {"arm", "filter_ratio", "series" (arms that differ in more than the ratio),
    "iterations": Speedup, "flops": {accounting: Speedup}}. Each point in its arm's colour; a thin
    grey line joins the ratios of one series. ceiling: the oracle arm's estimates ("arm" names it),
    drawn as a line in that arm's colour.
    """
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    ax_i, ax_f = fig.subplots(1, 2)
    arms = [r["arm"] for r in rows]
    colors = {a: color_of(arm_colors, a, arms) for a in arms}
    ys_i, ys_f = [], []
    for s in sorted({r["series"] for r in rows}):
        pts = sorted([r for r in rows if r["series"] == s], key=lambda r: r["filter_ratio"])
        xs = [r["filter_ratio"] for r in pts]
        ax_i.plot(xs, [r["iterations"].value for r in pts], color="0.6", lw=0.8, zorder=1)
        ax_f.plot(xs, [r["flops"].get(flop_accounting, Speedup(None, None, None)).value for r in pts], color="0.6",
                  lw=0.8, zorder=1)
        for r in pts:
            _errorbar(ax_i, r["filter_ratio"], r["iterations"], colors[r["arm"]], r["arm"])
            fl = r["flops"].get(flop_accounting)
            if fl is not None:
                _errorbar(ax_f, r["filter_ratio"], fl, colors[r["arm"]], r["arm"])
                ys_f += [fl.value, fl.ci_low, fl.ci_high]
            ys_i += [r["iterations"].value, r["iterations"].ci_low, r["iterations"].ci_high]
    oracle = (ceiling or {}).get("arm", "oracle_clean")
    for ax, claim, name, ys in ((ax_i, CLAIMED["iterations"], "iterations", ys_i),
                                (ax_f, CLAIMED["flops"], f"FLOPs ({flop_accounting})", ys_f)):
        ax.axhline(claim, color="crimson", ls="--", lw=1.2, label=f"claimed {claim:g}x (paper: image-text)")
        ax.axhline(1.0, color="0.4", ls="-", lw=0.8, label="1x = uniform baseline")
        c = (ceiling or {}).get("iterations") if ax is ax_i else ((ceiling or {}).get("flops") or {}).get(flop_accounting)
        if c is not None and c.value is not None:
            ax.axhline(c.value, color=color_of(arm_colors, oracle, [*arms, oracle]), lw=2,
                       label=f"{oracle} {c.value:.2f}x")
            ys.append(c.value)
        _log_speedup_axis(ax)
        _log_ylim(ax, ys)
        ratios = sorted({r["filter_ratio"] for r in rows})
        if ratios:
            ax.set_xticks(ratios, [f"{f:g}" for f in ratios])
            pad = max(0.05, 0.1 * (ratios[-1] - ratios[0]))
            ax.set_xlim(ratios[0] - pad, ratios[-1] + pad)
        ax.set_xlabel("filter ratio f (fraction of each super-batch discarded)")
        ax.set_ylabel(f"{what} in {name} (x)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    if not rows:
        ax_i.text(0.5, 0.5, "no JEST arm", ha="center", va="center", transform=ax_i.transAxes)
    fig.suptitle(f"{what} vs filter ratio; bars: 95% interval over seeds; open triangles: bounds "
                 "(v: at most, ^: at least)", fontsize=9)
    return fig


def plot_parity(rows: list[dict], flop_accounting: str = "train+score",
                arm_colors: dict[str, str] | None = None) -> Figure:
    """(d) First-crossing multiplier to parity per arm with its bootstrap CI: iterations and FLOPs
    (train+score) side by side, one row per arm in its colour (log x, as the multiplier figures)."""
    fig = Figure(figsize=(11, 1.6 + 0.5 * max(3, len(rows))), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    arms = [r["arm"] for r in rows]
    ys = np.arange(len(rows))[::-1]
    values = []
    for ax, key, name in ((axes[0], "iterations", "iterations"),
                          (axes[1], "flops", f"FLOPs ({flop_accounting})")):
        for y, r in zip(ys, rows):
            sp = r["iterations"] if key == "iterations" else r["flops"].get(flop_accounting)
            if sp is None or sp.value is None:
                continue
            m = {"upper": "<", "lower": ">"}.get(sp.bound, "o")
            lo = sp.ci_low if sp.ci_low is not None else sp.value
            hi = sp.ci_high if sp.ci_high is not None else sp.value
            color = color_of(arm_colors, r["arm"], arms)
            ax.errorbar([sp.value], [y], xerr=[[max(sp.value - lo, 0)], [max(hi - sp.value, 0)]], fmt=m, color=color,
                        ms=8, capsize=4, lw=1.5, mfc="white" if sp.bound else color)
            values += [sp.value, lo, hi]
        ax.axvline(1.0, color="0.4", lw=0.8)
        multiplier_x_axis(ax)
        ax.set_xlabel(f"first-crossing multiplier, {name} (log)")
        ax.grid(alpha=0.3, which="both", axis="x")
    good = [v for v in values if v and np.isfinite(v) and v > 0]
    if good:
        for ax in axes:
            ax.set_xlim(min(min(good), 0.8) / 1.3, max(max(good), 1.25) * 1.3)
    axes[0].set_yticks(ys, arms)
    fig.suptitle(_wrap_title("First-crossing multiplier to parity per arm, 95% percentile bootstrap over seeds; "
                             "open triangles: bounds (<: parity not reached, at most; >: reached at the first "
                             "evaluation, at least)"), fontsize=9)
    return fig


def multiplier_x_axis(ax) -> None:
    """Log x labelled '0.5x', '1x', '1.5x', ...: multipliers often span 0.3x..3x, where labels at the
    decades alone show only '1x' (and a minor-tick rule keyed on the first digit skips '0.5x')."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([m * 10.0 ** k for k in (-2, -1, 0, 1) for m in (1, 1.5, 2, 3, 5, 7)]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _wrap_title(text: str, width: int = 110) -> str:
    return textwrap.fill(text, width)


def plot_composition(over_training: pd.DataFrame, pool: pd.Series, kind: str = "source",
                     arm_order: list[str] | None = None) -> Figure:
    """(e) Selected share per label over training (solid) against its pool share (dashed), per arm."""
    present = list(dict.fromkeys(over_training["arm"])) if not over_training.empty else []
    arms = [a for a in (arm_order or []) if a in present] + [a for a in present if a not in (arm_order or [])]
    n = max(1, len(arms))
    cols = min(n, 3)
    nrows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4.4 * cols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True).ravel()
    labels = sorted(set(over_training["label"]) | set(pool.index)) if not over_training.empty else list(pool.index)
    # a label neither in the pool nor ever selected (a held-out-only domain) is a flat line at 0%
    selected = set(over_training.loc[over_training["share"] > 0, "label"]) if not over_training.empty else set()
    labels = [lb for lb in labels if lb in selected or pool.get(lb, 0.0) > 0]
    colors = _colors(labels)
    for ax, arm in zip(axes, arms):
        d = over_training[over_training["arm"] == arm]
        for label in labels:
            dl = d[d["label"] == label]
            if not dl.empty:
                ax.plot(dl["step_mid"], 100 * dl["share"], color=colors[label], lw=1.8, marker="o", ms=3,
                        label=label)
            if label in pool.index:
                ax.axhline(100 * pool[label], color=colors[label], ls="--", lw=1)
        ax.set_title(arm)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    for ax in axes[len(arms):]:
        ax.set_axis_off()
    axes[0].set_ylabel(f"share of trained sequences by {kind} (%)")
    if arms:
        axes[0].legend(fontsize=7, title="solid: selected, dashed: pool", title_fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no selection shares logged", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(f"What the arms trained on, by {kind} (binned over steps, mean over seeds)")
    return fig
