"""The plugin point end to end: the example of docs/extending.md, saved outside the repository and named
in a config's `plugins`, runs through the real Snakemake DAG with its multiplier in the summary, and
editing it re-plans its own arm's training and no other."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jest.config import PROJECT_ROOT, deep_merge

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def example_plugin() -> str:
    """The complete example of docs/extending.md, as a user would copy it."""
    doc = (PROJECT_ROOT / "docs" / "extending.md").read_text()
    return re.search(r"```python\n(.*?)```", doc, re.S).group(1)


def test_the_documented_example_registers_and_validates(tmp_path):
    from jest.config import ConfigError
    from jest.experiment import validate_config
    plugin = tmp_path / "lab" / "hardest_half.py"
    plugin.parent.mkdir()
    plugin.write_text(example_plugin())
    cfg = validate_config({"name": "x", "plugins": [str(plugin)],
                           "arms": {"u": {"policy": "uniform"}, "hard_x2": {"policy": "hardest_half"}}})
    assert cfg["arms"]["hard_x2"]["oversample"] == 2
    with pytest.raises(ConfigError, match=r"'arms.hard_x2.oversample' = 1 is out of range: must be at least 2"):
        validate_config({**cfg, "arms": {**cfg["arms"], "hard_x2": {"policy": "hardest_half", "oversample": 1}}})


@pytest.mark.slow
@pytest.mark.dag
def test_a_plugin_arm_runs_through_the_dag_and_an_edit_reruns_only_it(tmp_path):
    plugin = tmp_path / "outside_the_repo" / "hardest_half.py"
    plugin.parent.mkdir()
    plugin.write_text(example_plugin())
    results = tmp_path / "results"
    smoke = yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text())
    cfg = deep_merge(smoke, {"results_dir": str(results), "cache_dir": str(PROJECT_ROOT / "results" / "cache"),
                             "plugins": [str(plugin)]})
    cfg["arms"] = {"uniform": smoke["arms"]["uniform"], "uniform_x2": smoke["arms"]["uniform_x2"],
                   "jest_f0.5": smoke["arms"]["jest_f0.5"], "hard_x2": {"policy": "hardest_half", "oversample": 2}}
    cfg["ablation_arms"] = []
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = subprocess.run([*SNAKEMAKE, "--cores", "2", "--configfile", str(path)], cwd=PROJECT_ROOT, env=ENV,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((results / "smoke" / "report" / "summary.json").read_text())
    rows = {r["arm"]: r for r in summary["headline"]}
    assert rows["hard_x2"]["iterations"] is not None  # a multiplier (or a bound) against the uniform family
    card = json.loads((results / "smoke" / "runs" / "hard_x2_s0" / "card.json").read_text())
    assert card["status"] == "finished" and card["config"]["arms"]["hard_x2"]["policy_source"]

    plugin.write_text(plugin.read_text().replace('"""Train on the b hardest', '"""Train (edited) on the b hardest'))
    dry = subprocess.run([*SNAKEMAKE, "-n", "--cores", "2", "--configfile", str(path)], cwd=PROJECT_ROOT, env=ENV,
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    trained = sorted(set(re.findall(r"--arm (\S+) --seed", dry.stdout)))
    assert trained == ["hard_x2"], dry.stdout[-3000:]
