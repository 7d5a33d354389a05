"""The verdict in the terminal: `python -m jest verdict [--summary SUMMARY.json | --config CONFIG]`.

Reads a report's summary.json (analysis/summary.py, fields in docs/summary.md) and tells the
whole finding in at most 100 columns: the paper's claims and their verdicts, every compared
arm's multiplier with its interval (headline arms and controls), JEST against the offline
filter and the mixture-matched control (paired verdicts), the ablations' paired verdicts, the
summary's own notes, and whether the JEST multiplier agrees with the committed reference of the
same config (results/reference/<name>/). One word throughout, "multiplier", as in the report.
A missing section is skipped; `make reproduce` ends with this.
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

from jest.verdict_reference import reference_lines, reference_path_for

WIDTH = 100  # a terminal of 100 columns shows every line whole (issue #29)

# The quantities of the arm table: the two the claims are about (iterations: "13x fewer
# iterations"; FLOPs with the selection's scoring: "10x less compute") and the total with the
# reference model's own training. The report's other quantities are named under the table.
QUANTITIES = (("iterations", ("iterations",)), ("FLOPs train+score", ("flops", "train+score")),
              ("FLOPs total", ("flops", "total")))


def _num(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def format_multiplier(m) -> str:
    """'1.46x [1.19, 1.69]'; a bound as the report words it (analysis/render.py); '-' when absent."""
    if not isinstance(m, dict) or m.get("value") is None:
        return "-"
    bound = {"upper": f"< {_num(m['value'])}x (not reached)", "lower": f">= {_num(m['value'])}x (at first eval)"}
    if m.get("bound"):
        return bound.get(m["bound"], f"{_num(m['value'])}x ({m['bound']})")
    ci = (f" [{_num(m.get('ci_low'))}, {_num(m.get('ci_high'))}]"
          if m.get("ci_low") is not None or m.get("ci_high") is not None else "")
    return f"{_num(m['value'])}x{ci}"


def _get(row: dict, path: tuple[str, ...]):
    for key in path:
        row = row.get(key) if isinstance(row, dict) else None
    return row


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False)


def fit(lines: list[str]) -> list[str]:
    """Every line at most WIDTH columns: a longer one (a very long arm name widens a table) is wrapped
    with an indent, so nothing is cut off."""
    out = []
    for line in lines:
        out += [line] if len(line) <= WIDTH else _wrap(line, indent="")
    return out


def _claim_lines(claims: list[dict]) -> list[str]:
    rows = [[c.get("claim", c.get("id", "?")), format_multiplier(c.get("measured")), c.get("best_arm") or "-",
             c.get("verdict", "-")] for c in claims]
    return _table(["claim", "measured", "best arm", "verdict"], rows)


def arm_roles(summary: dict) -> dict[str, str]:
    """Each compared arm and its role: a control's kind (the summary's controls.arms), 'headline' or
    'ablation'; the headline arms first, in the summary's order."""
    controls = {arm: kind.replace("_", " ") for kind, arms in ((summary.get("controls") or {}).get("arms") or {}).items()
                for arm in arms}
    roles = {}
    for section, role in (("headline", "headline"), ("ablations", "ablation"), ("control_arms", None)):
        for row in summary.get(section) or []:
            arm = row.get("arm", "?")
            roles.setdefault(arm, controls.get(arm, role or "control"))
    return {arm: role for arm, role in sorted(roles.items(), key=lambda kv: kv[1] not in ("headline",))}


def _arm_rows(summary: dict) -> dict[str, dict]:
    return {row.get("arm", "?"): row for section in ("headline", "ablations", "control_arms")
            for row in summary.get(section) or []}


def _other_quantities(rows: dict[str, dict]) -> list[str]:
    """The multiplier quantities the rows hold besides the table's columns (examples, train-only FLOPs,
    and whatever a newer schema adds), so that none goes unmentioned."""
    shown = {".".join(path) for _, path in QUANTITIES}
    found = []
    for row in rows.values():
        for key, value in row.items():
            if key == "parity" or not isinstance(value, dict):  # parity: the report's second view (see below)
                continue
            names = [key] if "value" in value else [f"{key}.{k}" for k, v in value.items()
                                                    if isinstance(v, dict) and "value" in v]
            found += [n for n in names if n not in shown and n not in found]
    return found


def _multiplier_lines(summary: dict) -> list[str]:
    rows, roles = _arm_rows(summary), arm_roles(summary)
    if not rows:
        return []
    seeds = sorted({n for r in rows.values() if (n := _get(r, ("iterations", "n")))})
    level = (summary.get("statistics") or {}).get("ci_level", 0.95)
    lines = [f"Multipliers against {(summary.get('baseline') or {}).get('arm', 'the baseline')} "
             f"(> 1x: fewer iterations or FLOPs to its loss; {level:.0%} interval, "
             f"{'/'.join(map(str, seeds)) or '?'} seeds)"]
    lines += _table(["arm", "role"] + [name for name, _ in QUANTITIES],
                    [[arm, roles.get(arm, "-")] + [format_multiplier(_get(rows[arm], path)) for _, path in QUANTITIES]
                     for arm in roles])
    others = _other_quantities(rows)
    if others:
        names = ", ".join(others[:-1]) + " and " + others[-1] if len(others) > 1 else others[0]
        lines += _wrap(f"The report also gives the multiplier in {names}.", indent="")
    if any(isinstance(r.get("parity"), dict) for r in rows.values()):
        lines += _wrap("Its second view, the first crossing of the baseline's final loss, is in the report.", "")
    return lines


def _paired_lines(summary: dict) -> list[str]:
    """JEST against the offline filter and against the mixture-matched control, paired by seed."""
    controls = summary.get("controls") or {}
    pairs = [(p, p.get("offline_filter"), "offline filter", p.get("jest_over_offline"))
             for p in controls.get("offline_share") or []]
    pairs += [(p, p.get("matched"), "mixture matched", p.get("jest_over_matched"))
              for p in controls.get("mixture_matched") or []]
    pairs = [(p, other, kind, test) for p, other, kind, test in pairs if isinstance(test, dict)]
    if not pairs:
        return []
    margin = next((t.get("margin") for *_, t in pairs if t.get("margin")), None)
    lines = ["JEST vs its controls (paired by seed, ratio of iterations multipliers"
             + (f", equivalence margin {margin}x)" if margin else ")")]
    lines += _table(["JEST arm", "control", "kind", "ratio", "verdict"],
                    [[p.get("arm", "?"), other or "?", kind,
                      f"{_num(t.get('ratio'))}x [{_num(t.get('ci_low'))}, {_num(t.get('ci_high'))}]",
                      t.get("verdict", "-")] for p, other, kind, t in pairs])
    for p, other, kind, t in pairs:
        share = p.get("share_of_log_gain")
        text = f"{p.get('arm', '?')} vs {other}: {t.get('reason', '')}"
        if isinstance(share, (int, float)) and math.isfinite(share):
            text += f"; the {kind} control gives {share:.0%} of JEST's log multiplier"
        lines += _wrap(text)
    return lines


def _equivalence_lines(summary: dict) -> list[str]:
    rows = summary.get("equivalence") or []
    if not rows:
        return []
    against = sorted({r.get("against", "?") for r in rows})
    correction = next((r["correction"] for r in rows if r.get("correction")), "no correction")
    lines = [f"Ablations against {', '.join(against)} (paired by seed, iterations; verdicts after {correction})"]
    lines += _table(["ablation", "ratio", "verdict", "uncorrected", "seeds to settle"],
                    [[r.get("arm", "?"), f"{_num(r.get('ratio'))}x [{_num(r.get('ci_low'))}, {_num(r.get('ci_high'))}]",
                      r.get("verdict", "-"), r.get("verdict_uncorrected", "-"), str(r.get("seeds_to_settle", "-"))]
                     for r in rows])
    return lines


POSITIVE_CONTROL = Path("results") / "reference" / "positive_control" / "summary.json"


def positive_control_lines(path: Path) -> list[str]:
    """What the committed positive control (a pool with a planted share of noise) says the instrument can
    see, so that every verdict is read beside it. Nothing when it is absent."""
    if not path.is_file():
        return []
    pc = json.loads(path.read_text())
    share = (pc.get("construction") or {}).get("share")
    arms = [f"{arm} {format_multiplier(a['measured'])} (predicted {a['predicted_from_selected_share']:.2f}x)"
            for arm, a in (pc.get("arms") or {}).items() if a.get("measured")]
    seen = (pc.get("instrument") or {}).get("large_effect_seen")
    return ["Can this instrument see a large gain? (the positive control)"] + _wrap(
        f"On a pool with {share:.0%} planted noise ({len(pc.get('seeds') or [])} seeds): {'; '.join(arms)}. "
        + ("A large gain is measured, below the naive prediction (the summary says why): "
           "a 'not reproduced' above is not an instrument blind to 2.5-3x." if seen else
           "The instrument did not measure the planted gain: read every verdict above as weak."), indent="")


def render(summary: dict, summary_path: Path, reference: Path | None = None) -> str:
    """The whole verdict; `reference`: the committed summary of the same config to compare with (or None)."""
    cfg, metric = summary.get("config") or {}, summary.get("primary_metric") or {}
    lines = [f"JEST verdict: config {cfg.get('name', '?')}, baseline {(summary.get('baseline') or {}).get('arm', '?')}, "
             f"metric {metric.get('name', '?')}, schema {summary.get('schema_version', '?')}"]
    method = (summary.get("statistics") or {}).get("multiplier")
    if method:
        lines += _wrap(f"multiplier: the {method}", indent="")
    sections = []
    if summary.get("claims"):
        sections.append(["The paper's claims"] + _claim_lines(summary["claims"]))
    general = summary.get("general_domain") or {}
    if general.get("claims"):
        sections.append(_wrap(f"On the general domain ({general.get('metric')}: the mean held-out loss of "
                              f"{', '.join(general.get('sets') or [])})", indent="") + _claim_lines(general["claims"]))
    for part in (_multiplier_lines(summary), _paired_lines(summary), _equivalence_lines(summary)):
        if part:
            sections.append(part)
    if reference is not None:
        sections.append(reference_lines(summary, summary_path, reference))
    from jest.config import PROJECT_ROOT
    control = positive_control_lines(PROJECT_ROOT / POSITIVE_CONTROL)
    if control and (summary.get("config") or {}).get("name") != "positive_control":
        sections.append(control)
    if summary.get("notes"):
        sections.append(["Notes"] + [w for note in summary["notes"] for w in _wrap(f"- {note}", indent="")])
    report = summary_path.parent / "report.html"
    sections.append([f"Report: {report if report.exists() else summary_path.parent}"])
    for part in sections:
        lines += [""] + part
    return "\n".join(fit(lines))


def summary_path_for(cfg: dict) -> Path:
    from jest.config import results_root
    return results_root(cfg) / cfg["name"] / "report" / "summary.json"


def main(path: str | None, config: str | None) -> int:
    if path is None:
        from jest.experiment import load_config
        path = summary_path_for(load_config(Path(config)))
    path = Path(path)
    if not path.is_file():
        print(f"no report yet: {path} does not exist (the analyze step writes it)")
        return 1
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        print(f"{path} is not a readable summary ({err}); rebuild it with `python -m analysis.report ...`")
        return 1
    print(render(summary, path, reference_path_for(summary, path)))
    return 0
