"""Errors a newcomer meets (issue #29 item 5): a missing or broken config file in one line, a misspelt
key with its likely fix, the schema's keywords in words, no stack frames under a user error, and a
train rule whose rerun trigger names the config section that changed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jest.config import ConfigError, PROJECT_ROOT, section_hashes
from jest.experiment import validate_config

ENV = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def _jest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jest", *args], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env=ENV)


def _typo_config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((PROJECT_ROOT / "config" / "tiny.yaml").read_text())
    cfg["train"]["stpes"] = 200
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("args", [("check-config", "nope.yaml"), ("verdict", "--config", "nope.yaml"),
                                  ("preflight", "--config", "nope.yaml"),
                                  (".evaluation.preflight", "--config", "nope.yaml")])  # named by preflight's output
def test_a_missing_config_file_is_one_line(args):
    proc = (subprocess.run([sys.executable, "-m", "jest" + args[0], *args[1:]], capture_output=True, text=True,
                           cwd=PROJECT_ROOT, env=ENV) if args[0].startswith(".") else _jest(*args))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "error: config file not found: nope.yaml\n"


def test_a_config_file_that_is_not_yaml_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntrain:\n  steps: [1\n")
    proc = _jest("check-config", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {path} is not valid YAML: ") and "line 3, column 10" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_user_error_shows_no_stack_frames(tmp_path):
    proc = _jest("verdict", "--config", str(_typo_config(tmp_path)))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and 'File "' not in proc.stderr
    assert proc.stderr.startswith("error: invalid config:\n  unknown key(s) ['stpes'] under 'train' "
                                  "(did you mean 'steps'?); allowed keys: [")


@pytest.mark.parametrize("bad, expected", [
    ({"train": {"stpes": 200}}, "unknown key(s) ['stpes'] under 'train' (did you mean 'steps'?); allowed keys"),
    ({"trian": {}}, "at the top level (did you mean 'train'?)"),
    ({"train": {"stpes": 1, "lrr": 1}}, "(did you mean 'lr' for 'lrr', 'steps' for 'stpes'?)"),
    ({"device": "cpus"}, "'device' = 'cpus' is not allowed (did you mean 'cpu'?); allowed values"),
    ({"arms": {"j": {"policy": "jest", "filtr_ratio": 0.5}}}, "remove ['filtr_ratio'] (did you mean 'filter_ratio'?)"),
    ({"train": {"steps": 0}}, "'train.steps' = 0 is out of range: must be at least 1"),
    ({"train": {"lr": 0}}, "'train.lr' = 0 is out of range: must be above 0"),
    ({"arms": {"j": {"policy": "jest", "filter_ratio": 1.0}}}, "'arms.j.filter_ratio' = 1.0 is out of range: must be below 1"),
    ({"train": {"steps": "ten"}}, "'train.steps' = 'ten' has the wrong type; expected a whole number"),
    ({"seeds": []}, "'seeds' = [] must list at least 1 entry"),
])
def test_refusals_are_in_words_with_the_likely_fix(bad, expected):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", **bad})
    assert expected in str(err.value)
    for jargon in ("exclusiveMaximum", "exclusiveMinimum", "minimum", "maximum", "minItems"):
        assert jargon not in str(err.value)


def test_an_unknown_key_far_from_any_gets_no_guess():
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "train": {"zzzzqqq": 1}})
    assert "did you mean" not in str(err.value)


def test_snakemake_names_a_misspelt_key_without_the_config_hint_or_library_frames():
    """`--config` with a misspelt key: the YAML-file hint does not apply (a file would be refused the same way)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "train={stpes: 200}"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=ENV)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "(did you mean 'steps'?)" in said
    assert "--configfile FILE" not in said and "jest/experiment.py" not in said and "Traceback" not in said


def test_the_train_trigger_names_the_section_that_changed():
    cfg = validate_config({"name": "x"})
    parts = lambda c: dict(p.split("=") for p in section_hashes(  # noqa: E731
        model=c["model"], train=c["train"], device=c["device"], arm=c["arms"]["uniform"]).split())
    before = parts(cfg)
    assert list(before) == ["model", "train", "device", "arm"] and all(len(h) == 8 for h in before.values())
    assert parts(validate_config({"name": "x"})) == before          # stable: no re-plan without a change
    after = parts(validate_config({"name": "x", "train": {"steps": 7, "warmup_steps": 1}}))
    assert {k for k in before if before[k] != after[k]} == {"train"}
