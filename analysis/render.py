"""report.md and a self-contained report.html from the summary (analysis.summary, as JSON).

Both come from one list of sections (`sections`): a title, a paragraph, a table (header + rows of
plain strings), the figures that go with it, so the two formats cannot drift apart. Both open with
a table of contents of the level-2 sections (GitHub's heading anchors, which the HTML repeats as ids). The HTML embeds every figure as a base64
PNG (it opens anywhere, from e-mail or CI artifacts); the Markdown links the PNGs next to it.
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from analysis.report_sections import sections


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _contents(secs: list[dict]) -> list[tuple[str, str]]:
    """(title, anchor) of each level-2 section, anchors made unique as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    out = []
    for sec in secs:
        if not sec.get("title"):
            continue
        base = slug(sec["title"])
        n = seen.get(base, 0)
        seen[base] = n + 1
        sec["anchor"] = base if n == 0 else f"{base}-{n}"
        if sec.get("level", 2) == 2:
            out.append((sec["title"], sec["anchor"]))
    return out


def render_markdown(summary: dict) -> str:
    out = []
    secs = sections(summary)
    toc = _contents(secs)
    for i, sec in enumerate(secs):
        if sec.get("title"):
            out.append(f"{'#' * sec.get('level', 2)} {sec['title']}\n")
        if i == 0 and toc:  # the page is long: the contents under the title
            out.append("\n".join(f"- [{t.replace('`', '')}](#{a})" for t, a in toc) + "\n")
        for p in sec.get("paragraphs", []):
            out.append(p + "\n")
        if sec.get("bullets"):
            out.append("\n".join(f"- {b}" for b in sec["bullets"]) + "\n")
        if sec.get("header"):
            out.append("| " + " | ".join(sec["header"]) + " |")
            out.append("|" + "---|" * len(sec["header"]))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in sec["rows"]]
            out.append("")
        for name, f in sec.get("figures", {}).items():
            out.append(f"![{f['caption']}]({f['png']})\n\n*{f['caption']}* ([SVG]({f['svg']}))\n")
    out.append(f"Summary schema {summary['schema_version']} (summary.json; fields: docs/summary.md).\n")
    return "\n".join(out)


CSS = """body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.v-reproduced { background: #d9f2d9; } .v-not-reproduced-at-this-scale { background: #f9d6d5; }
.v-undecided, .v-single-seed-no-verdict { background: #fff2cc; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; } .toc { columns: 2; } pre { background: #f7f7f7; padding: 1em; overflow: auto; }"""

VERDICTS = ("reproduced", "not reproduced at this scale", "undecided", "single seed: no verdict")


def _td(cell: str) -> str:
    text = str(cell)
    plain = text.strip("*")
    cls = f' class="v-{plain.replace(" ", "-").replace(":", "")}"' if plain in VERDICTS else ""
    body = f"<b>{html.escape(plain)}</b>" if text.startswith("**") else html.escape(text)
    return f"<td{cls}>{body}</td>"


def render_html(summary: dict, report_dir: Path) -> str:
    """HTML with each figure's PNG (relative to `report_dir`) inlined as base64."""
    title = html.escape(f"JEST report: {summary['config']['name']}")
    out = [f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
           f"<style>\n{CSS}\n</style></head><body>"]
    secs = sections(summary)
    toc = _contents(secs)
    for i, sec in enumerate(secs):
        if sec.get("title"):
            lvl = sec.get("level", 2)
            out.append(f'<h{lvl} id="{html.escape(sec["anchor"])}">{html.escape(sec["title"])}</h{lvl}>')
        if i == 0 and toc:
            out.append('<nav><ul class="toc">' + "".join(f'<li><a href="#{html.escape(a)}">{html.escape(t)}</a></li>'
                                                          for t, a in toc) + "</ul></nav>")
        out += [f"<p>{html.escape(p)}</p>" for p in sec.get("paragraphs", [])]
        if sec.get("bullets"):
            out.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in sec["bullets"]) + "</ul>")
        if sec.get("header"):
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in sec["header"]) + "</tr>")
            out += ["<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in sec["rows"]]
            out.append("</table>")
        for name, f in sec.get("figures", {}).items():
            data = base64.b64encode((Path(report_dir) / f["png"]).read_bytes()).decode("ascii")
            out.append(f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(f["caption"])}" '
                       f'src="data:image/png;base64,{data}"><figcaption>{html.escape(f["caption"])}</figcaption>'
                       "</figure>")
    out.append("<details><summary>resolved config</summary><pre>"
               + html.escape(json.dumps(summary["config"]["resolved"], indent=2, sort_keys=True)) + "</pre></details>")
    out.append(f"<p><small>Summary schema {html.escape(summary['schema_version'])} (summary.json; fields: "
               "docs/summary.md).</small></p></body></html>\n")
    return "\n".join(out)


__all__ = ["render_html", "render_markdown"]
