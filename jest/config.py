"""Experiment config: load a YAML file, fill defaults from the JSON schema, fail early.

The schema (workflow/schemas/config.schema.yaml) is the one place where every key
is described and given a default. Snakemake and the library both go through
`validate_config`, so a typo or an out-of-range value is reported, naming the
key and the allowed values, before any job runs.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


def load_schema() -> dict:
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _with_defaults(validator_class):
    """A validator that also fills `default` values into the instance (nested too)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _explain(error: jsonschema.ValidationError) -> str:
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        if allowed:
            return f"unknown key(s) {extra} {where}; allowed keys: {allowed}"
        return f"{error.message} (at '{key}')"
    if error.validator == "enum":
        return f"'{key}' = {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"'{key}' = {error.instance!r} is out of range ({error.validator} {error.validator_value})"
    if error.validator == "type":
        return f"'{key}' = {error.instance!r} has the wrong type; expected {error.validator_value}"
    if error.validator == "pattern":
        return _unsafe_message(key, error.instance, error.validator_value,
                               is_key="propertyNames" in error.schema_path)
    return f"'{key}': {error.message}"


# Names that become folder names and arguments of Snakemake's shell commands: the config
# `name`, arm and reference names. Paths (results_dir, cache_dir) appear in the same shell
# lines, so they may hold no whitespace, quotes or shell characters either.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SAFE_PATH = "^[^\\s;&|$`\"'<>(){}\\[\\]*?!\\\\#~]+$"
_RULES = {SAFE_NAME: "letters, digits, '_', '.', '-', starting with a letter or digit; names become "
                     "folder names and arguments of Snakemake's shell commands, so no spaces, slashes or shell characters",
          SAFE_PATH: "a path with no whitespace, quotes, '~' or shell characters ;&|$`<>(){}[]*?!#\\, "
                     "because it appears in Snakemake's shell commands"}


def _unsafe_message(key: str, value, pattern: str, is_key: bool = False) -> str:
    what = f"name {value!r} under '{key}'" if is_key else f"'{key}' = {value!r}"
    return f"{what} is not allowed; allowed pattern: {pattern} ({_RULES.get(pattern, 'see the schema')})"


def _check_shell_safe(cfg: dict) -> None:
    """Full-string checks of every config string that reaches a shell command or a path.

    The schema's patterns say the same, but a JSON-schema pattern is a search, and `$` also
    matches before a trailing newline; here the whole string must match.
    """
    checks = [("name", cfg["name"], SAFE_NAME, False), ("results_dir", cfg["results_dir"], SAFE_PATH, False)]
    if cfg.get("cache_dir") is not None:
        checks.append(("cache_dir", cfg["cache_dir"], SAFE_PATH, False))
    checks += [(section, name, SAFE_NAME, True) for section in ("arms", "references") for name in cfg[section]]
    for key, value, pattern, is_key in checks:
        if not re.fullmatch(pattern[1:-1], value):
            raise ConfigError("invalid config:\n  " + _unsafe_message(key, value, pattern, is_key))


def validate_config(config: dict) -> dict:
    """Return a deep copy of `config` with defaults filled; raise ConfigError naming the key."""
    config = copy.deepcopy(dict(config))
    explicit_arm_keys = {name: set(arm) for name, arm in (config.get("arms") or {}).items()
                         if isinstance(arm, dict)}
    validator = _Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_explain(e) for e in errors))
    _check_shell_safe(config)
    _check_cross_fields(config)
    _check_arms(config, explicit_arm_keys)
    return config


def super_batch_size(batch_size: int, filter_ratio: float) -> int:
    """B = b / (1 - f), which must be a whole number of sequences."""
    exact = batch_size / (1.0 - filter_ratio)
    if abs(exact - round(exact)) > 1e-6:
        raise ValueError(f"b / (1 - f) = {batch_size} / (1 - {filter_ratio}) = {exact:.4g} is not a whole number")
    return round(exact)


def _check_arms(cfg: dict, explicit: dict[str, set]) -> None:
    """Per-policy rules: uniform arms take no JEST keys; JEST arms need a reference and a whole super-batch;
    `ablation_arms` names JEST arms (the uniform baseline is what every report compares against)."""
    b = cfg["train"]["batch_size"]
    unknown = [a for a in cfg["ablation_arms"] if a not in cfg["arms"]]
    if unknown:
        raise ConfigError(f"'ablation_arms' names {unknown}, which are not arms; allowed values: {sorted(cfg['arms'])}")
    uniform = [a for a in cfg["ablation_arms"] if cfg["arms"][a]["policy"] == "uniform"]
    if uniform:
        raise ConfigError(f"'ablation_arms' = {uniform}: a uniform-policy arm is the baseline every report "
                          "compares against; keep it a headline arm (remove it from 'ablation_arms')")
    for name, arm in cfg["arms"].items():
        # allow_repeats is kept only when true, so that adding the key changed no arm's training hash
        repeats = {"allow_repeats": True} if arm.pop("allow_repeats", False) else {}
        if arm["policy"] in ("uniform", "oracle_clean", "curated_only"):
            stray = sorted(explicit.get(name, set()) - {"policy", "allow_repeats"})
            if stray:
                raise ConfigError(f"'arms.{name}' has policy '{arm['policy']}', which takes no other keys; "
                                  f"remove {stray} (allow_repeats is the one key it accepts)")
            cfg["arms"][name] = {"policy": arm["policy"], **repeats}
            continue
        if arm["policy"] == "offline_filter":  # baselines/controls.py: a reference's cached pool scores
            _check_offline_filter(name, arm, explicit.get(name, set()))
            cfg["arms"][name] = {"policy": "offline_filter", "filter_ratio": arm["filter_ratio"],
                                 "reference": arm["reference"], "criterion": "easy_reference", **repeats}
            if arm["reference"] not in cfg["references"]:
                raise ConfigError(f"'arms.{name}.reference' = {arm['reference']!r} is not a configured reference; "
                                  f"allowed values: {sorted(cfg['references'])} (add it under 'references')")
            continue
        arm.update(repeats)
        if arm["reference"] not in cfg["references"]:
            raise ConfigError(f"'arms.{name}.reference' = {arm['reference']!r} is not a configured reference; "
                              f"allowed values: {sorted(cfg['references'])} (add it under 'references')")
        try:
            super_batch_size(b, arm["filter_ratio"])
        except ValueError as err:
            fits = [f for f in (0.5, 0.75, 0.8, 0.875, 0.9, 0.9375, 0.95) if abs(b / (1 - f) - round(b / (1 - f))) < 1e-6]
            raise ConfigError(f"'arms.{name}.filter_ratio' = {arm['filter_ratio']} does not fit "
                              f"'train.batch_size' = {b}: {err}; allowed values for this batch size include {fits}") from None


def _check_offline_filter(name: str, arm: dict, explicit: set) -> None:
    """offline_filter keeps the lowest reference loss: no learner exists before training."""
    if "criterion" in explicit and arm["criterion"] != "easy_reference":
        raise ConfigError(f"'arms.{name}.criterion' = {arm['criterion']!r}: offline_filter scores the pool once, "
                          "before training, with the reference alone; allowed values: ['easy_reference']")
    stray = sorted(explicit - {"policy", "filter_ratio", "reference", "criterion", "allow_repeats"})
    if stray:
        raise ConfigError(f"'arms.{name}' has policy 'offline_filter', which takes filter_ratio, reference, "
                          f"criterion and allow_repeats only; remove {stray}")


def _check_cross_fields(cfg: dict) -> None:
    """Constraints a JSON schema cannot express."""
    brown = cfg["data"]["brown"]
    if brown["heldout_fraction"] + brown["curated_fraction"] >= 1:
        raise ConfigError(
            "'data.brown.heldout_fraction' + 'data.brown.curated_fraction' must be < 1 "
            "so that some Brown texts remain for the pool")
    _check_model_and_train(cfg["model"], cfg["train"], prefix="")
    for name, ref in cfg["references"].items():
        _check_model_and_train(ref["model"], ref["train"], prefix=f"references.{name}.")


def _check_model_and_train(model: dict, train: dict, prefix: str) -> None:
    if model["n_embd"] % model["n_head"]:
        raise ConfigError(
            f"'{prefix}model.n_head' = {model['n_head']} must divide '{prefix}model.n_embd' = {model['n_embd']}")
    procs = train["nproc_per_node"]
    if train["batch_size"] % procs:
        raise ConfigError(
            f"'{prefix}train.batch_size' = {train['batch_size']} must divide by '{prefix}train.nproc_per_node' = "
            f"{procs} (each process trains on an equal slice of the chosen batch); allowed batch sizes: "
            f"multiples of {procs}")
    micro = train["micro_batch_size"] or train["batch_size"] // procs
    if (train["batch_size"] // procs) % micro:
        per_proc = train["batch_size"] // procs
        batch = (f"'{prefix}train.batch_size' = {per_proc}" if procs == 1 else
                 f"the per-process batch '{prefix}train.batch_size' / '{prefix}train.nproc_per_node' = {per_proc}")
        raise ConfigError(f"'{prefix}train.micro_batch_size' = {micro} must divide {batch}; allowed values: "
                          f"{[m for m in range(1, per_proc + 1) if per_proc % m == 0]}")
    if train["warmup_steps"] >= train["steps"]:
        raise ConfigError(
            f"'{prefix}train.warmup_steps' = {train['warmup_steps']} must be smaller than "
            f"'{prefix}train.steps' = {train['steps']}")


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config file, apply optional overrides (deep-merged), validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping, got {type(raw).__name__}")
    if overrides:
        raw = deep_merge(raw, overrides)
    return validate_config(raw)


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-able object (used to key caches on what produced them)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def results_root(cfg: dict) -> Path:
    root = Path(cfg["results_dir"])
    return root if root.is_absolute() else PROJECT_ROOT / root


def cache_root(cfg: dict) -> Path:
    if cfg["cache_dir"]:
        root = Path(cfg["cache_dir"])
        return root if root.is_absolute() else PROJECT_ROOT / root
    return results_root(cfg) / "cache"
