"""One colour per arm for every figure of a report (issue #29: the lm-eval figures coloured the arms
differently from the others, because each plot numbered its own subset of arms).

`arm_colors(arms, family)` is the only place that maps an arm to its colour: the report builds the
map once from its full arm list (baseline first, then every compared arm) and hands it to each
plot, so an arm keeps its colour in a figure that shows only some of the arms.

- the uniform family (the baseline among them) is grey: it is the yardstick, drawn in
  BASELINE_COLOR wherever a single uniform line appears;
- every other arm gets the next colour of a palette without grey (the family's) and red (the
  claimed-factor lines are crimson), in the order of the report's arm list.
"""
from __future__ import annotations

from collections.abc import Iterable

import matplotlib

BASELINE_COLOR = "0.15"
# tab10 without C3 (red: the claimed 13x / 10x lines) and C7 (grey: the uniform family)
PALETTE = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9")
# beyond 8 arms (the all-arms report: about 15): the same 8 first (an arm keeps its colour between the
# headline report and the all-arms one), then tab20's light shades of them
_LIGHT = (1, 3, 5, 9, 11, 13, 17, 19)


def arm_colors(arms: Iterable[str], family: Iterable[str] = ()) -> dict[str, str]:
    """arm -> matplotlib colour: family arms grey, the others the palette in order."""
    family = set(family)
    others = [a for a in dict.fromkeys(arms) if a not in family]
    colours = [matplotlib.colors.to_hex(c) for c in PALETTE]
    if len(others) > len(PALETTE):
        cmap = matplotlib.colormaps["tab20"]
        colours += [matplotlib.colors.to_hex(cmap(i)) for i in _LIGHT]
    out = {a: BASELINE_COLOR for a in dict.fromkeys(arms) if a in family}
    out.update({a: colours[i % len(colours)] for i, a in enumerate(others)})
    return out


def color_of(colors: dict[str, str] | None, arm: str, fallback: list[str]) -> str:
    """The arm's colour from the report's map; a plot called without one (a test, a notebook)
    numbers its own arms, `fallback`, the same way."""
    if colors and arm in colors:
        return colors[arm]
    return arm_colors(fallback)[arm]


__all__ = ["BASELINE_COLOR", "PALETTE", "arm_colors", "color_of"]
