"""The report's figures without the defects of issue #29 item 3: one colour per arm in every figure,
legends and titles inside the canvas and clear of the axis labels, every arm of a table in its figure,
chance lines on the lm-eval figures, a figure drawn only when it has something to show."""
from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis import plots
from analysis import plots_multiplier as pm
from analysis.colors import BASELINE_COLOR, arm_colors
from analysis.parity import Speedup
from analysis.report_sections import est
from analysis.stats import Estimate, verdict

ARMS = ["uniform", "jest_f0.8", "mixture_matched_f0.8", "offline_filter_f0.8", "oracle_clean"]


def _e(value, lo=None, hi=None, bound=None, n=5):
    return Estimate(value, lo, hi, bound, n, None, None, "t", 0.95, [])


def _rows():
    return [{"arm": a, "iterations": _e(1.0 + i / 10, 0.9 + i / 10, 1.2 + i / 10),
             "flops": {"train+score": _e(0.5 + i / 10, 0.4 + i / 10, 0.6 + i / 10)}} for i, a in enumerate(ARMS[1:])]


def _lm_rows():
    return [{"arm": a, "task": t, "step": s, "acc": 0.3 + s / 1000, "acc_se": 0.02, "margin": -0.1 + s / 1000,
             "margin_se": 0.01, "chance": c} for a in ARMS for t, c in (("agree", 0.5), ("order", 0.25))
            for s in (10, 100)]


def _hex(c) -> str:
    return mcolors.to_hex(c)


def _drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def test_an_arm_has_one_colour_in_every_figure():
    colors = arm_colors(ARMS, ["uniform"])
    assert colors["uniform"] == BASELINE_COLOR and len(set(colors.values())) == len(ARMS)
    # the multiplier figure shows the compared arms only, the lm-eval figure the baseline too:
    # each used to number its own arms, so jest_f0.8 was C0 in one and C1 in the other
    mult = pm.plot_multipliers(_rows(), arm_colors=colors)
    in_mult = {ARMS[1:][i]: _hex(c.lines[0].get_color()) for i, c in enumerate(mult.axes[0].containers)}
    lm = pm.plot_lmeval(_lm_rows(), "acc", ARMS, arm_colors=colors)
    handles, labels = lm.axes[0].get_legend_handles_labels()
    in_lm = {lb: _hex(h.lines[0].get_color()) for h, lb in zip(handles, labels) if lb in ARMS}
    for arm in ARMS[1:]:
        assert in_mult[arm] == in_lm[arm] == _hex(colors[arm]), arm
    assert in_lm["uniform"] == _hex(BASELINE_COLOR)


@pytest.mark.parametrize("n_arms", [1, 4])
def test_the_multiplier_legend_is_clear_of_the_axis_labels(n_arms):
    rows = _rows()[:n_arms]
    fig = pm.plot_multipliers(rows, {"arm": "oracle_clean", "iterations": _e(1.26, 0.95, 1.67),
                                     "flops": {"train+score": _e(1.26, 0.95, 1.67)}})
    r = _drawn(fig)
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    canvas = fig.bbox
    for legend in legends:
        box = legend.get_window_extent(r)
        assert box.x0 >= canvas.x0 - 1 and box.y0 >= canvas.y0 - 1 and box.x1 <= canvas.x1 + 1
        for ax in fig.axes:
            assert not box.overlaps(ax.xaxis.label.get_window_extent(r)), "legend over the x label"
            assert not box.overlaps(ax.bbox), "legend over the plotting area"


def test_the_parity_figure_shows_every_arm_and_its_whole_title():
    rows = [{"arm": a, "iterations": Speedup(1.2, 1.1, 1.3), "flops": {"train+score": Speedup(0.45, 0.4, 0.5)}}
            for a in ARMS[1:]]
    rows[-1]["iterations"] = Speedup(0.9, None, 0.95, bound="upper")
    fig = plots.plot_parity(rows, arm_colors=arm_colors(ARMS, ["uniform"]))
    r = _drawn(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ARMS[1:]     # the table's arms, all of them
    title = fig._suptitle.get_window_extent(r)
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1, "title cut at the canvas edge"
    for ax in fig.axes:
        label = ax.xaxis.label.get_window_extent(r)
        assert fig.bbox.x0 <= label.x0 and label.x1 <= fig.bbox.x1 + 1


def test_lmeval_figures_draw_each_tasks_chance():
    acc = pm.plot_lmeval(_lm_rows(), "acc", ARMS)
    lines = {ax.get_title(): {ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"}
             for ax in acc.axes if ax.get_title()}
    assert lines == {"agree (chance 0.5)": {0.5}, "order (chance 0.25)": {0.25}}
    margin = pm.plot_lmeval(_lm_rows(), "margin", ARMS)
    assert all(0.0 in {ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"}
               for ax in margin.axes if ax.get_title())


def test_filter_ratio_figure_only_with_two_ratios_in_a_series():
    one = [{"arm": "jest_f0.8", "series": "jest", "filter_ratio": 0.8}]
    assert not plots.filter_ratios_to_show(one)
    assert not plots.filter_ratios_to_show(one + [{"arm": "abl", "series": "topk", "filter_ratio": 0.5}])
    assert plots.filter_ratios_to_show(one + [{"arm": "jest_f0.5", "series": "jest", "filter_ratio": 0.5}])


def test_a_bounds_interval_reads_one_sided_not_from_zero():
    upper = {"value": 0.51, "ci_low": None, "ci_high": 0.54, "bound": "upper", "n": 5}
    lower = {"value": 4.1, "ci_low": 3.9, "ci_high": None, "bound": "lower", "n": 5}
    assert est(upper) == "< 0.51x (one-sided 95%: at most 0.54x)"
    assert est(lower) == "> 4.10x (one-sided 95%: at least 3.90x)"
    assert est({"value": 1.21, "ci_low": 1.05, "ci_high": 1.39, "n": 5}) == "1.21x [1.05, 1.39]"
    _, why = verdict(_e(0.51, None, 0.54, "upper"), 13.0)
    assert "[0.00" not in why and "at most 0.54x" in why
