"""The verdict in the terminal: `python -m jest verdict [SUMMARY.json | --config CONFIG]`.

Reads a report's summary.json (analysis/summary.py) and prints the claim table, the
speedups of each headline arm and where the report is. It prints what the file holds:
claims, arms and speedup fields it does not know (a newer schema) are shown the same way
(any field of an arm that is an object with a "value"), and a missing section is skipped.
`make reproduce` ends with it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path


def _num(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def format_speedup(sp) -> str:
    """'1.46x [1.19, 1.69]'; a bound as the report words it (analysis/render.py); '-' when absent."""
    if not isinstance(sp, dict) or sp.get("value") is None:
        return "-"
    bound = {"upper": f"< {_num(sp['value'])}x (not reached)", "lower": f">= {_num(sp['value'])}x (at first eval)"}
    if sp.get("bound"):
        return bound.get(sp["bound"], f"{_num(sp['value'])}x ({sp['bound']})")
    ci = (f" [{_num(sp.get('ci_low'))}, {_num(sp.get('ci_high'))}]"
          if sp.get("ci_low") is not None or sp.get("ci_high") is not None else "")
    return f"{_num(sp['value'])}x{ci}"


def speedup_fields(row: dict) -> dict[str, dict]:
    """Every speedup-like field of an arm row: objects with a "value", one level deep
    (iterations, flops.train, flops.total, and whatever a newer schema adds)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dict) and "value" in value:
            out[key] = value
        elif isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, dict) and "value" in v})
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def render(summary: dict, summary_path: Path) -> str:
    cfg = summary.get("config") or {}
    lines = [f"JEST verdict: config {cfg.get('name', '?')}, baseline {(summary.get('baseline') or {}).get('arm', '?')}, "
             f"metric {(summary.get('primary_metric') or {}).get('name', '?')} "
             f"(schema {summary.get('schema_version', '?')})", ""]
    claims = summary.get("claims") or []
    if claims:
        rows = [[c.get("claim", c.get("id", "?")), format_speedup(c.get("measured")), c.get("best_arm") or "-",
                 c.get("verdict", "-")] for c in claims]
        lines += _table(["claim", "measured", "best arm", "verdict"], rows) + [""]
    general = (summary.get("general_domain") or {})
    if general.get("claims"):
        lines.append(f"On the general domain ({general.get('metric')}: the mean held-out loss of "
                     f"{', '.join(general.get('sets') or [])}):")
        rows = [[c.get("claim", c.get("id", "?")), format_speedup(c.get("measured")), c.get("best_arm") or "-",
                 c.get("verdict", "-")] for c in general["claims"]]
        lines += _table(["claim", "measured", "best arm", "verdict"], rows) + [""]
    arms = list(summary.get("headline") or []) + list(summary.get("ablations") or [])
    if arms:
        keys = []
        for row in arms:
            keys += [k for k in speedup_fields(row) if k not in keys]
        rows = [[row.get("arm", "?"), {True: "yes", False: "no"}.get(row.get("reached"), "-")]
                + [format_speedup(speedup_fields(row).get(k)) for k in keys] for row in arms]
        lines += _table(["arm", "parity"] + [f"speedup {k}" for k in keys], rows) + [""]
    report = summary_path.parent / "report.html"
    lines.append(f"Report: {report if report.exists() else summary_path.parent}")
    return "\n".join(lines)


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
    print(render(summary, path))
    return 0
