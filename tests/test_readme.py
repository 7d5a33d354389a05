"""The README against the files it quotes: schema names, links, commands, the scales table.

A README that drifts from the code is the first thing a new user trips on; each check
here reads the README's own text and the file it refers to (no copy of either).
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from jest.config import PROJECT_ROOT

from jest.experiment import load_config

README = (PROJECT_ROOT / "README.md").read_text()
# The README is the first screen; the depth it links to lives in docs/, which these checks read too.
DOC_FILES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
ALL_DOCS = "\n".join(p.read_text() for p in DOC_FILES)


def _commands(prefix: str) -> list[str]:
    """Lines of the README's code blocks that start with `prefix`, comments and pipes cut."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", README, flags=re.S)
    lines = [line.split("#")[0].split("|")[0].split(">")[0].strip() for b in blocks for line in b.splitlines()]
    return [line for line in lines if line.startswith(prefix)]


def _rules() -> set[str]:
    files = [PROJECT_ROOT / "Snakefile", *(PROJECT_ROOT / "workflow" / "rules").glob("*.smk")]
    return {m for f in files for m in re.findall(r"^rule (\w+):", f.read_text(), flags=re.M)}


def test_the_schema_versions_named_are_the_ones_the_code_writes():
    from analysis.summary import SUMMARY_SCHEMA_VERSION
    named = set(re.findall(r"jest-summary-v\d+", ALL_DOCS))
    assert named == {SUMMARY_SCHEMA_VERSION}, f"README names {named}; analysis/summary.py writes {SUMMARY_SCHEMA_VERSION}"
    for name in set(re.findall(r"jest-agg-v\d+", ALL_DOCS)):
        assert any(name in p.read_text() for p in (PROJECT_ROOT / "jest" / "evaluation").glob("*.py")), name


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_every_relative_link_points_to_a_file_inside_the_repository(doc):
    links = [t for t in re.findall(r"\]\(([^)#\s]+)", doc.read_text()) if "://" not in t]
    for target in links:
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(PROJECT_ROOT.resolve()), f"{doc.name}: {target} is outside the repository"
        assert path.exists(), f"{doc.name} links {target}, which does not exist"


def test_every_snakemake_command_parses_and_names_real_targets_and_files():
    from snakemake.cli import get_argument_parser
    parser, rules = get_argument_parser(), _rules()
    commands = _commands("snakemake")
    assert len(commands) >= 5
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])        # Snakemake's own parser: exits on a bad flag
        for target in args.targets:
            assert target in rules, f"`{command}`: no rule named {target}"
        for configfile in args.configfile or []:
            assert (PROJECT_ROOT / configfile).is_file(), f"`{command}`: {configfile} does not exist"
    if any("| dot" in line for line in README.splitlines()):
        assert "Graphviz" in README, "the README pipes into `dot` without saying it comes with Graphviz"


def test_every_make_command_is_a_target_of_the_makefile(tmp_path):
    commands = _commands("make ")
    assert {"make reproduce", "make test"} <= {" ".join(c.split()[:2]) for c in commands}
    for command in commands:
        argv = shlex.split(command)
        # -n: print what it would run, run nothing; a missing target or bad variable fails
        proc = subprocess.run([*argv[:1], "-n", "-C", str(PROJECT_ROOT), *argv[1:]], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, f"`{command}`: {proc.stderr}"


def test_every_python_m_jest_command_is_a_real_subcommand():
    from jest.__main__ import main
    commands = {c.split()[3] for c in re.findall(r"python -m jest [a-z-]+", ALL_DOCS)}
    assert {"verdict", "sync-mlflow", "doctor"} <= commands
    for sub in sorted(commands):
        with pytest.raises(SystemExit) as info:
            main([sub, "--help"])
        assert info.value.code == 0, sub


@pytest.mark.parametrize("row", [line for line in README.splitlines() if line.startswith("| `config/")])
def test_the_scales_table_matches_the_configs(row):
    """Layers, width, vocabulary, context and seeds of each row, against the config file."""
    cells = [c.strip() for c in row.strip("|").split("|")]
    path = PROJECT_ROOT / re.search(r"`([^`]+)`", cells[0]).group(1)
    cfg = load_config(path)
    learner, arms = cells[2], cells[-1]
    quoted = {"model.n_layer": r"(\d+) layers", "model.n_embd": r"d=(\d+)", "data.vocab_size": r"V=(\d+)",
              "data.seq_len": r"T=(\d+)"}
    for key, pattern in quoted.items():
        section, name = key.split(".")
        assert int(re.search(pattern, learner).group(1)) == cfg[section][name], f"{path.name}: {key}"
    seeds = int(re.search(r"(\d+) seeds?", arms).group(1))
    assert seeds == len(cfg["seeds"]), f"{path.name}: README says {seeds} seeds, the config has {cfg['seeds']}"


def test_items_per_task_quoted_for_the_default_config_match_it():
    tiny = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    for match in re.finditer(r"(\d+) items per\s+task", README):
        context = README[max(0, match.start() - 300):match.end() + 200]
        if "evaluation.limit" not in context:        # another number must say which setting it used
            assert int(match.group(1)) == tiny["evaluation"]["limit"], context


def _answer_rows() -> dict[str, str]:
    """The README's answer table: first cell -> the 'measured' cell."""
    section = README.split("## The answer so far", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| question")]
    return {r[0]: r[1] for r in rows}


def _ci(e: dict) -> str:
    return f"{e['value']:.2f}x [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"


def test_the_answer_table_is_the_committed_results():
    """Every number of the README's first table, read from the committed summaries it stands for."""
    import json
    ref = PROJECT_ROOT / "results" / "reference"
    tiny = json.loads((ref / "tiny" / "summary.json").read_text())
    ablations = json.loads((ref / "tiny" / "ablations" / "summary.json").read_text())
    ladder = json.loads((ref / "ladder" / "summary.json").read_text())
    control = json.loads((ref / "positive_control" / "summary.json").read_text())
    claims = {c["factor"]: c for c in tiny["claims"]}
    ratio = lambda r: {"value": r["ratio"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}  # noqa: E731
    expected = {
        "13x fewer iterations?": _ci(claims[13.0]["measured"]),
        "10x less compute?": _ci(claims[10.0]["measured"]),
        "either claim on the general domain": f"at most {tiny['general_domain']['claims'][0]['measured']['value']:.2f}x",
        "JEST vs re-weighting alone": _ci(ratio(tiny["controls"]["mixture_matched"][0]["jest_over_matched"])),
        "JEST vs the offline filter": _ci(ratio(tiny["controls"]["offline_share"][0]["jest_over_offline"])),
        "the oracle": _ci(tiny["multipliers"]["heldout_loss"]["oracle_clean"]["quantities"]["iterations"]),
        "RHO-1": _ci(ablations["multipliers"]["heldout_loss"]["abl_rho1_k0.6"]["quantities"]["iterations"]),
        "larger learners": _ci(ladder["rungs"][list(ladder["rungs"])[-1]]["arms"]["jest_f0.8"]["multiplier"]["iterations"]),
        "can the instrument see a large gain?": " ".join(_ci(a["measured"]) for a in control["arms"].values()),
    }
    rows = _answer_rows()
    assert len(rows) == len(expected), sorted(rows)
    for prefix, value in expected.items():
        cell = next((measured for first, measured in rows.items() if first.startswith(prefix)), None)
        assert cell is not None, f"no row of the answer table starts with {prefix!r}"
        if prefix.startswith("can the"):
            for a in control["arms"].values():
                assert _ci(a["measured"]) in cell, (prefix, cell)
        else:
            assert value in cell, (prefix, value, cell)
    # the table sits on the first screen
    assert README.index("## The answer so far") < README.index("13x fewer iterations?") < len("\n".join(README.splitlines()[:40]))
