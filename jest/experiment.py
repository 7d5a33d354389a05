"""The experiment a config describes: every pass of validation, in order, and nothing else.

    1. plugins      the modules or files under `plugins` register their policies (jest.policies.registry)
    2. ladder       the `ladder` section's rungs become ordinary arms (jest.ladder.rungs)
    3. schema       defaults filled, types and ranges checked (jest.config.schema)
    4. names        names and paths safe for shell commands (jest.config.names)
    5. cross-field  shapes, schedules, seq_len against the data (jest.config.checks)
    6. arms         each arm completed and checked by its policy's spec (jest.policies.arms)
    7. ladder       rung sizes, the reference, the pool share (jest.ladder.rungs)
    8. plan         names the file system can hold, draws the data can serve (jest.planning)

Snakemake (workflow/rules/common.smk) and every command of the library go through
`validate_config`, so a typo or an out-of-range value is reported, naming the key and the allowed
values, before any job runs.
"""
from __future__ import annotations

import copy
from pathlib import Path

from jest.config import ConfigError, check_finite, coerce_overrides, deep_merge, read_config_file, schema_errors
from jest.config.schema import coerce_to_schema
from jest.config.checks import check_arm_shapes, check_cross_fields, check_seq_len_fits
from jest.config.names import check_shell_safe
from jest.ladder.rungs import check_ladder, expand_ladder
from jest.planning import check_plan
from jest.policies.arms import check_arms, check_branches
from jest.policies.registry import get_spec, load_plugins, registered_names


def validate_config(config: dict) -> dict:
    """Return a deep copy of `config` with defaults filled; raise ConfigError naming the key."""
    config = copy.deepcopy(dict(config))
    check_finite(config, "")
    if isinstance(config.get("plugins"), list):  # before the arms are read: they may name a plugin's policy
        config["plugins"] = load_plugins(config["plugins"])
    if isinstance(config.get("ladder"), dict):   # the scale ladder's rungs become arms
        filled = copy.deepcopy(config)
        schema_errors(filled)
        config = expand_ladder(config, filled)
    explicit_arm_keys = {name: set(arm) for name, arm in (config.get("arms") or {}).items() if isinstance(arm, dict)}
    schema_errors(config)
    check_shell_safe(config)
    check_cross_fields(config)
    check_arms(config, explicit_arm_keys)
    check_arm_shapes(config)
    check_branches(config)
    check_seq_len_fits(config)
    if config.get("ladder"):
        check_ladder(config)
    check_plan(config)  # last: it reads the completed arms
    return config


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config file, apply optional overrides (deep-merged), validate."""
    raw = read_config_file(path)
    return validate_config(deep_merge(raw, overrides) if overrides else raw)


def validate_snakemake_config(config: dict, cli_overrides: dict) -> dict:
    """validate_config for the Snakefile: `--config` values coerced by the schema first, and a refusal
    that involves them says how to give such a value instead (a config file)."""
    cli_overrides = dict(cli_overrides or {})
    try:
        if not cli_overrides:
            return validate_config(config)
        overrides = coerce_overrides(cli_overrides)
        return validate_config(deep_merge(dict(config), _coerce_policy_keys(deep_merge(dict(config), overrides),
                                                                              overrides)))
    except ConfigError as err:
        # the hint is about text that did not convert; a misspelt key or a value out of range is the
        # same mistake in a config file, and the message above already names the fix
        if not cli_overrides or "type" not in getattr(err, "schema_keywords", ()):
            raise
        raise ConfigError(
            f"{err}\n  (--config gave {sorted(cli_overrides)}; its values arrive as text and are converted by the "
            "schema's types: a value that does not convert is refused. Put such values in a YAML config file and "
            "pass it with --configfile FILE.)") from None


def _coerce_policy_keys(merged: dict, overrides: dict) -> dict:
    """The arm keys of `--config` overrides converted by their policy's spec (the schema does not know a
    policy's own keys): `arms='{j: {policy: jest, filter_ratio: 0.5}}'` arrives as the text '0.5'."""
    arms = overrides.get("arms")
    if not isinstance(arms, dict) or not isinstance(merged.get("arms"), dict):
        return overrides
    if isinstance(merged.get("plugins"), list):
        load_plugins(merged["plugins"])
    out = dict(overrides, arms=dict(arms))
    for name, arm in arms.items():
        base = merged["arms"].get(name)
        policy = base.get("policy") if isinstance(base, dict) else None
        if isinstance(arm, dict) and policy in registered_names():
            keys = get_spec(policy).keys
            out["arms"][name] = {k: coerce_to_schema(v, keys[k]) if k in keys else v for k, v in arm.items()}
    return out


__all__ = ["load_config", "validate_config", "validate_snakemake_config"]
