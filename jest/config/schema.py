"""The config schema: load it, fill its defaults into a config, and explain what it refuses.

The schema (workflow/schemas/config.schema.yaml) is the one place where every key is described
and given a default (a policy's own arm keys are its spec's, jest.policies.registry). Every
refusal names the key and the allowed values.
"""
from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from jest.config.errors import ConfigError
from jest.config.names import unsafe_message
from jest.config.paths import SCHEMA_PATH


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


def _key_path(error: jsonschema.ValidationError, prefix: str = "") -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return (prefix + path).rstrip(".") or "<top level>"


# The schema's words as a user reads them (JSON-schema keywords are jargon to a newcomer).
_BOUNDS = {"minimum": "must be at least", "maximum": "must be at most",
           "exclusiveMinimum": "must be above", "exclusiveMaximum": "must be below"}
_TYPES = {"integer": "a whole number", "number": "a number", "boolean": "true or false", "string": "text",
          "array": "a list", "object": "a mapping (key: value)", "null": "null"}


def did_you_mean(unknown: list[str], allowed: list[str]) -> str:
    """' (did you mean 'steps'?)' for the unknown keys that are a near miss of an allowed one (difflib), else ''."""
    guesses = [f"'{near[0]}' for '{key}'" if len(unknown) > 1 else f"'{near[0]}'"
               for key in unknown if (near := difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6))]
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


def _explain(error: jsonschema.ValidationError, prefix: str = "") -> str:
    key = _key_path(error, prefix)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"under '{key}'" if error.absolute_path or prefix else "at the top level"
        if allowed:
            return f"unknown key(s) {extra} {where}{did_you_mean(extra, allowed)}; allowed keys: {allowed}"
        return f"{error.message} (at '{key}')"
    if error.validator == "enum":
        return (f"'{key}' = {error.instance!r} is not allowed"
                f"{did_you_mean([error.instance], [str(v) for v in error.validator_value])}; "
                f"allowed values: {error.validator_value}")
    if error.validator in _BOUNDS:
        return f"'{key}' = {error.instance!r} is out of range: {_BOUNDS[error.validator]} {error.validator_value}"
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return (f"'{key}' = {error.instance!r} has the wrong type; expected "
                f"{' or '.join(_TYPES.get(t, t) for t in expected)}")
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"'{key}' lacks the key(s) {missing}, which must be given"
    if error.validator == "minItems":
        return f"'{key}' = {error.instance!r} must list at least {error.validator_value} entr" + \
            ("y" if error.validator_value == 1 else "ies")
    if error.validator == "uniqueItems":
        return f"'{key}' = {error.instance!r} lists a value twice; list each once (every entry runs once)"
    if error.validator == "pattern":
        return unsafe_message(key, error.instance, error.validator_value,
                               is_key="propertyNames" in error.schema_path)
    return f"'{key}': {error.message}"


def schema_errors(instance: Any, schema: dict | None = None, prefix: str = "") -> None:
    """Validate `instance` against `schema` (default: the config schema), filling its defaults in place;
    raise ConfigError listing every error, each key written with `prefix` (e.g. 'arms.jest_f0.8.')."""
    validator = _Validator(load_schema() if schema is None else schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = ConfigError("invalid config:\n  " + "\n  ".join(_explain(e, prefix) for e in errors))
        err.schema_keywords = {e.validator for e in errors}  # which checks refused (jest.experiment reads it)
        raise err


def check_finite(value: Any, key: str) -> None:
    """NaN and infinity are YAML numbers (.nan, .inf) that no key accepts; every range check of
    the schema is silent on NaN (a comparison with NaN is false), so they are refused here."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"invalid config:\n  '{key}' = {value!r} is not a finite number; give a number "
                          "(the schema lists each key's range)")
    if isinstance(value, dict):
        for sub_key, sub in value.items():
            check_finite(sub, f"{key}.{sub_key}" if key else str(sub_key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            check_finite(sub, f"{key}[{i}]")



def coerce_overrides(overrides: dict) -> dict:
    """Snakemake's `--config key=value` parses values below the top level as YAML strings
    (`train='{steps: 10}'` gives {'train': {'steps': '10'}}): convert each string to the type the
    schema gives its key (integer, number, boolean, null); strings the schema expects stay strings."""
    schema = load_schema()
    return _coerce(copy.deepcopy(dict(overrides)), schema, schema)


def coerce_to_schema(value: Any, node: dict) -> Any:
    """`value` with each string converted to the type `node` (a JSON-schema fragment) gives it, as
    coerce_overrides does for the config schema (used for a policy's own keys, jest.experiment)."""
    return _coerce(copy.deepcopy(value), node, {"$defs": {}})


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


def read_config_file(path: str | Path) -> dict:
    """The mapping a YAML config file holds (not yet validated)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {'is a folder' if path.is_dir() else 'not found'}: {path}")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:  # the parser's message names the line and column; its stack is no use
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping, got {type(raw).__name__}")
    return raw
