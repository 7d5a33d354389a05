"""Markup to plain text: HTML, reStructuredText sources, Perl POD, troff man pages.

The aim is readable prose, not a faithful render: markup that carries no words
(tags, directives, roles, macros) goes, the words stay, paragraphs stay
separated by blank lines. Each file is one document.
"""

from __future__ import annotations

import gzip
import html
import re
from collections.abc import Iterable, Iterator


from jest.data.extractors import RawDoc

_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_EDGES = re.compile(r" *\n *")
_SPACES = re.compile(r"[ \t\u00a0]+")
# Elements whose text is never prose: scripts, styles, navigation chrome.
_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "head", "form", "button", "svg")
_HTML_DROP = re.compile(r"<!--.*?-->|<(%s)\b[^>]*>.*?</\1\s*>" % "|".join(_DROP_TAGS), re.S | re.I)
_HTML_BLOCK = re.compile(r"</?(p|div|li|tr|h[1-6]|pre|dt|dd|br|table|section|article|blockquote|ul|ol|dl|caption|"
                         r"td|th|hr)\b[^>]*>", re.I)
_HTML_TAG = re.compile(r"<[^>]*>")


def tidy(text: str) -> str:
    """Collapse runs of spaces and of blank lines, strip each line and the ends (whole-string regexes: fast)."""
    text = _SPACES.sub(" ", text.replace("\r", ""))
    text = _LINE_EDGES.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(data: bytes) -> str:
    """Visible text of an HTML page with one line per block element.

    Regular expressions, not a DOM: generated documentation HTML is
    well-formed enough, and this is several times faster than building an
    lxml tree, which matters for the ~1 GB of HTML in the large preset.
    """
    page = data.decode("utf-8", errors="replace")
    page = _HTML_DROP.sub(" ", page)
    page = _HTML_BLOCK.sub("\n", page)
    page = _HTML_TAG.sub("", page)
    return tidy(html.unescape(page))


_RST_DIRECTIVE = re.compile(r"^\s*\.\. [\w:-]+::.*$")
_RST_ADORNMENT = re.compile(r"^\s*([=\-~^\"'`#*+<>_:.])\1{3,}\s*$")
_RST_OPTION = re.compile(r"^\s+:[\w -]+:.*$")
_RST_ROLE = re.compile(r":[\w:+-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_+")
_RST_INLINE = re.compile(r"(\*\*|\*|``)(\S(?:.*?\S)?)\1")


def rst_to_text(source: str) -> str:
    """Prose of a reST file: roles and links keep their words; directives, targets, adornments go."""
    out = []
    for line in source.splitlines():
        if _RST_ADORNMENT.match(line) or _RST_DIRECTIVE.match(line) or _RST_OPTION.match(line):
            continue
        if line.lstrip().startswith(".. ") or line.strip() == "..":
            continue  # comments, targets, substitutions, footnote markers: explicit markup, not prose
        line = _RST_ROLE.sub(r"\1", line)
        line = _RST_LINK.sub(r"\1", line)
        line = _RST_INLINE.sub(r"\2", line).replace("`", "")
        out.append(line)
    return tidy("\n".join(out))


_POD_COMMAND = re.compile(r"^=(\w+)\s*(.*)$")
_POD_CODE = re.compile(r"[BCFILSXZE]<<+\s+(.*?)\s+>>+|[BCFILSXZE]<([^<>]*)>")
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}


def _pod_inline(text: str) -> str:
    # Innermost codes first, repeated until none are left (they nest: B<C<x>>).
    for _ in range(5):
        new = _POD_CODE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
        if new == text:
            break
        text = new
    return text


def pod_to_text(source: str) -> str:
    """Prose of a POD file: headings keep their words, =begin/=end and =for blocks go."""
    out, skipping = [], False
    for line in source.splitlines():
        command = _POD_COMMAND.match(line)
        if command:
            name, rest = command.groups()
            if name == "begin":
                skipping = True
            elif name == "end":
                skipping = False
            elif name in ("head1", "head2", "head3", "head4", "item") and not skipping:
                out.extend(["", _pod_inline(rest), ""])
            continue
        if not skipping:
            out.append(_pod_inline(line))
    text = "\n".join(out)
    for name, char in _POD_ESCAPES.items():
        text = text.replace(f"E<{name}>", char)
    return tidy(text)


_TROFF_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_TROFF_ESCAPES = [(re.compile(r"\\\(em|\\\(en"), "-"), (re.compile(r"\\\((lq|rq|dq)"), '"'),
                  (re.compile(r"\\\((oq|cq|aq)"), "'"), (re.compile(r"\\\[[^\]]*\]"), ""),
                  (re.compile(r"\\\(.."), ""), (re.compile(r"\\[-e]"), lambda m: "-" if m.group(0) == "\\-" else "\\"),
                  (re.compile(r"\\[&|^%:c]"), ""), (re.compile(r"\\\*\(?\w+"), ""), (re.compile(r"\\s[+-]?\d"), "")]
_TROFF_TEXT_MACROS = ("SH", "SS", "B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "TP", "IP", "Nm", "Nd")
_TROFF_ALTERNATING = ("BR", "IR", "RB", "RI", "BI", "IB")


def troff_to_text(source: str) -> str:
    """Words of a man page: requests and comments go, font macros keep their arguments."""
    out = []
    for line in source.splitlines():
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].split(None, 1)
            if not parts:
                continue
            macro, rest = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro not in _TROFF_TEXT_MACROS or not rest:
                if macro in ("SH", "SS", "PP", "P", "LP", "TP", "IP"):
                    out.append("")
                continue
            words = re.findall(r'"[^"]*"|\S+', rest)
            words = [w.strip('"') for w in words]
            line = ("".join(words) if macro in _TROFF_ALTERNATING else " ".join(words))
            if macro in ("SH", "SS"):
                out.extend(["", line.capitalize() if line.isupper() else line])
                continue
        line = _TROFF_FONT.sub("", line)
        for pattern, replacement in _TROFF_ESCAPES:
            line = pattern.sub(replacement, line)
        out.append(line)
    return tidy("\n".join(out))


def _decode(data: bytes, name: str) -> str:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def extract_files(members: Iterable[tuple[str, bytes]], kind: str, strip_prefix: str = "") -> Iterator[RawDoc]:
    """One document per member, converted with the ``kind`` converter (html, rst, pod, troff)."""
    for name, data in members:
        if kind == "html":
            text = html_to_text(data)
        else:
            source = _decode(data, name)
            if kind == "troff" and source.startswith(".so "):
                continue  # a link to another man page, no text of its own
            text = {"rst": rst_to_text, "pod": pod_to_text, "troff": troff_to_text}[kind](source)
        yield RawDoc(name.removeprefix(strip_prefix), text)
