"""The policy registry and plugins: one place says what a policy is, and a user's file extends it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jest.config import ConfigError, PROJECT_ROOT
from jest.experiment import load_config, validate_config
from jest.policies.registry import BUILTIN, get_spec, registered_names
from jest.training.runspec import training_hash

PLUGIN = '''
import numpy as np
from jest.policies.base import Selection
from jest.policies.registry import PolicySpec, register_policy


class EveryOther:
    """Train on the even positions of a super-batch twice the batch ({marker})."""
    name = "every_other"
    fixed_flops = 0.0

    def __init__(self, arm, ctx):
        self.arm = arm

    def super_batch_size(self, b):
        return 2 * b

    def select(self, step, candidates, ids, learner, b):
        return Selection(chosen=np.arange(0, 2 * b, 2))


register_policy(PolicySpec(name="every_other", build=EveryOther, summary="even positions of 2b",
                           keys={{"stride": {{"type": "integer", "minimum": 1, "default": 2}}}},
                           candidates_per_sequence=lambda arm: 2.0))
'''


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test registers its plugin anew: the registry is left as it was found, and so is the set of
    imported plugin modules (a plugin registers when imported: a module left imported without its
    policies would never register again, and a later test's config naming it would be refused)."""
    import sys
    from jest.policies import registry
    saved, modules = dict(registry._SPECS), set(sys.modules)
    yield
    registry._SPECS.clear()
    registry._SPECS.update(saved)
    for name in set(sys.modules) - modules:
        if name.startswith(("jest_plugin_", "baselines.")):
            del sys.modules[name]


def _config(tmp_path: Path, plugin: Path, **arms) -> dict:
    raw = {"name": "plug", "results_dir": str(tmp_path / "results"), "plugins": [str(plugin)],
           "arms": {"uniform": {"policy": "uniform"}, "mine": {"policy": "every_other"}, **arms}}
    return raw


def _write_plugin(tmp_path: Path, marker: str = "v1") -> Path:
    path = tmp_path / "outside" / "every_other.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(PLUGIN.format(marker=marker)))
    return path


def test_every_builtin_resolves_and_describes_itself():
    for name in BUILTIN:
        spec = get_spec(name)
        assert spec.name == name and spec.summary
    assert {"uniform", "jest", "oracle_clean", "offline_filter", "curated_only"} <= set(registered_names())


def test_a_misspelt_policy_is_refused_naming_the_registered_ones():
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "t", "arms": {"uniform": {"policy": "uniform"}, "j": {"policy": "jets"}}})
    msg = str(err.value)
    assert "'arms.j.policy'" in msg and "did you mean 'jest'?" in msg
    assert all(f"'{name}'" in msg.split("registered policies:")[1] for name in BUILTIN)


def test_a_key_the_policy_does_not_take_is_refused_naming_the_ones_it_takes():
    with pytest.raises(ConfigError, match=r"policy .oracle_clean., which besides .budget. and .allow_repeats. takes no other keys; remove \['filter_ratio'\]"):
        validate_config({"name": "t", "arms": {"u": {"policy": "uniform"},
                                               "o": {"policy": "oracle_clean", "filter_ratio": 0.5}}})
    with pytest.raises(ConfigError, match=r"'arms.j.tau' = -1 is out of range"):
        validate_config({"name": "t", "arms": {"u": {"policy": "uniform"}, "j": {"policy": "jest", "tau": -1}}})


def test_a_plugin_file_outside_the_repository_registers_its_policy(tmp_path):
    plugin = _write_plugin(tmp_path)
    cfg = validate_config(_config(tmp_path, plugin))
    arm = cfg["arms"]["mine"]
    assert arm["policy"] == "every_other" and arm["stride"] == 2   # the spec's default, filled
    assert len(arm["policy_source"]) == 64                          # the plugin file's sha256
    assert get_spec("every_other").super_batch(arm, 16) == 32
    assert validate_config(cfg) == cfg                              # a job re-validating the snapshot: the same


def test_editing_a_plugin_changes_only_its_arms_training_hash(tmp_path):
    plugin = _write_plugin(tmp_path, "v1")
    before = validate_config(_config(tmp_path, plugin))
    plugin.write_text(plugin.read_text().replace("(v1)", "(v2)"))
    # a new process would import the edited file; here the registry re-reads the file's hash
    from jest.policies import registry
    registry._SPECS.pop("every_other")
    import sys  # noqa: E401
    for name in [m for m in sys.modules if m.startswith("jest_plugin_")]:
        del sys.modules[name]
    after = validate_config(_config(tmp_path, plugin))
    assert training_hash(before, "mine") != training_hash(after, "mine")
    assert training_hash(before, "uniform") == training_hash(after, "uniform")


def test_a_missing_or_broken_plugin_is_refused_naming_the_entry(tmp_path):
    with pytest.raises(ConfigError, match=r"'plugins\[0\] = .*nope.py'+: no such file"):
        validate_config({"plugins": [str(tmp_path / "nope.py")]})
    with pytest.raises(ConfigError, match=r"'plugins\[0\] = 'no_such_module_xyz'': no module"):
        validate_config({"plugins": ["no_such_module_xyz"]})
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('half written')\n")
    with pytest.raises(ConfigError, match=r"importing it failed: RuntimeError: half written"):
        validate_config({"plugins": [str(broken)]})


def test_a_plugin_cannot_take_a_builtin_name(tmp_path):
    plugin = tmp_path / "clash.py"
    plugin.write_text("from jest.policies.registry import PolicySpec, register_policy\n"
                      "register_policy(PolicySpec(name='jest', build=print, summary='x'))\n")
    with pytest.raises(ConfigError, match="policy name 'jest' is built in"):
        validate_config({"plugins": [str(plugin)]})


def test_the_default_config_registers_rho_as_a_plugin_and_keeps_every_other_arm_hash():
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    assert cfg["plugins"] == ["baselines.rho"]
    rho = cfg["arms"]["abl_rho1_k0.6"]
    assert rho["policy"] == "rho1" and rho["token_keep"] == 0.6 and len(rho["policy_source"]) == 64
    # the committed reference's runs were trained before the registry existed: their hashes must hold
    assert training_hash(cfg, "jest_f0.8") == "6f2c556a2e88"
    assert training_hash(cfg, "offline_filter_f0.8") == "4a082c81eefd"
    assert training_hash(cfg, "uniform") == "2aa3ad4f30e8"
