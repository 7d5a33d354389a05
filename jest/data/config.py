"""Typed, validated view of the ``data`` section of the experiment config.

The project's JSON schema fills defaults upstream, but this stage can also be
called directly, so a missing key fails here with its dotted name instead of a
bare ``KeyError`` deep inside the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jest.data.corruptions import CORRUPTION_KINDS
from jest.data.errors import ConfigValueError, MissingConfigKeyError

SPLITS = ("curated", "heldout", "pool")
# Evaluation-only splits (never trained on, never in the tokenizer's text): a held-out slice of
# every pool source, and external domains that are in neither the curated split nor the pool.
EVAL_SPLITS = ("pool_heldout", "external")
EXTERNAL_SOURCES = ("shakespeare",)
# Defaults when the stage is called directly with an older data config (the schema fills them upstream).
DEFAULT_POOL_HELDOUT_FRACTION = 0.05
DEFAULT_EXTERNAL_MAX_CHARS = {"shakespeare": 400000}
NOISY_SOURCES = ("sotu", "spam_assassin", "nlp_corpus")
EXTRA_KINDS = ("jsonl", "hf")
_MISSING = object()


@dataclass(frozen=True)
class BrownConfig:
    max_docs: int | None
    heldout_fraction: float
    curated_fraction: float


@dataclass(frozen=True)
class CorruptionConfig:
    fraction: float
    kinds: tuple[str, ...]
    char_noise_rate: float


@dataclass(frozen=True)
class ExtraSourceConfig:
    kind: str
    name: str
    split: str
    quality: str
    path: str
    max_docs: int | None = None
    text_field: str = "text"
    data_files: str | tuple[str, ...] | None = None
    hf_name: str | None = None
    hf_split: str = "train"


@dataclass(frozen=True)
class DataConfig:
    split_seed: int
    embedded: bool
    brown: BrownConfig
    noisy_max_chars: dict[str, int]
    corruption: CorruptionConfig
    extra_sources: tuple[ExtraSourceConfig, ...]
    pool_heldout_fraction: float = DEFAULT_POOL_HELDOUT_FRACTION
    external_max_chars: dict[str, int] | None = None


def _get(cfg: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> Any:
    if not isinstance(cfg, Mapping):
        raise ConfigValueError(f"data config: '{where or 'data'}' must be a mapping, got {type(cfg).__name__}")
    if key in cfg:
        return cfg[key]
    if default is not _MISSING:
        return default
    dotted = f"{where}.{key}" if where else key
    raise MissingConfigKeyError(f"data config is missing required key '{dotted}'")


def _fraction(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigValueError(f"data config: '{key}' must be a number in [0, 1], got {value!r}")
    return float(value)


def _count(value: Any, key: str, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "a non-negative integer or null" if allow_none else "a non-negative integer"
        raise ConfigValueError(f"data config: '{key}' must be {kind}, got {value!r}")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigValueError(f"data config: '{key}' must be a non-empty string, got {value!r}")
    return value


def _parse_extra(entry: Mapping[str, Any], index: int) -> ExtraSourceConfig:
    where = f"extra_sources[{index}]"
    kind = _get(entry, "kind", where)
    if kind not in EXTRA_KINDS:
        raise ConfigValueError(f"data config: '{where}.kind' must be one of {EXTRA_KINDS}, got {kind!r}")
    name = _get(entry, "name", where)
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise ConfigValueError(f"data config: '{where}.name' must be a non-empty string without '/', got {name!r}")
    split = _get(entry, "split", where)
    if split not in SPLITS:
        raise ConfigValueError(f"data config: '{where}.split' must be one of {SPLITS}, got {split!r}")
    data_files = _get(entry, "data_files", where, None)
    return ExtraSourceConfig(
        kind=kind,
        name=name,
        split=split,
        quality=_text(_get(entry, "quality", where), f"{where}.quality"),
        path=_text(_get(entry, "path", where), f"{where}.path"),
        max_docs=_count(_get(entry, "max_docs", where, None), f"{where}.max_docs", allow_none=True),
        text_field=str(_get(entry, "text_field", where, "text")),
        data_files=tuple(data_files) if isinstance(data_files, (list, tuple)) else data_files,
        hf_name=_get(entry, "hf_name", where, None),
        hf_split=str(_get(entry, "hf_split", where, "train")),
    )


def parse_data_config(cfg: Mapping[str, Any]) -> DataConfig:
    """Validate ``cfg`` and return it as frozen dataclasses."""
    split_seed = _get(cfg, "split_seed", "")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise ConfigValueError(f"data config: 'split_seed' must be an integer, got {split_seed!r}")

    embedded = _get(cfg, "embedded", "")
    if not isinstance(embedded, bool):
        raise ConfigValueError(f"data config: 'embedded' must be true or false, got {embedded!r}")

    brown_cfg = _get(cfg, "brown", "")
    brown = BrownConfig(
        max_docs=_count(_get(brown_cfg, "max_docs", "brown"), "brown.max_docs", allow_none=True),
        heldout_fraction=_fraction(_get(brown_cfg, "heldout_fraction", "brown"), "brown.heldout_fraction"),
        curated_fraction=_fraction(_get(brown_cfg, "curated_fraction", "brown"), "brown.curated_fraction"),
    )
    if brown.heldout_fraction + brown.curated_fraction > 1.0:
        raise ConfigValueError(
            "data config: 'brown.heldout_fraction' + 'brown.curated_fraction' must be <= 1, got "
            f"{brown.heldout_fraction} + {brown.curated_fraction}"
        )

    budgets_cfg = _get(cfg, "noisy_max_chars", "")
    budgets = {
        name: _count(_get(budgets_cfg, name, "noisy_max_chars"), f"noisy_max_chars.{name}", allow_none=False)
        for name in NOISY_SOURCES
    }

    corruption_cfg = _get(cfg, "corruption", "")
    kinds = tuple(_get(corruption_cfg, "kinds", "corruption"))
    unknown = [kind for kind in kinds if kind not in CORRUPTION_KINDS]
    if unknown:
        raise ConfigValueError(f"data config: 'corruption.kinds' has unknown {unknown}; known: {CORRUPTION_KINDS}")
    corruption = CorruptionConfig(
        fraction=_fraction(_get(corruption_cfg, "fraction", "corruption"), "corruption.fraction"),
        kinds=kinds,
        char_noise_rate=_fraction(_get(corruption_cfg, "char_noise_rate", "corruption"), "corruption.char_noise_rate"),
    )
    if corruption.fraction > 0 and not kinds:
        raise ConfigValueError("data config: 'corruption.kinds' is empty but 'corruption.fraction' > 0")

    extra_list = _get(cfg, "extra_sources", "")
    if not isinstance(extra_list, (list, tuple)):
        raise ConfigValueError(f"data config: 'extra_sources' must be a list, got {type(extra_list).__name__}")
    extras = tuple(_parse_extra(entry, i) for i, entry in enumerate(extra_list))
    names = [extra.name for extra in extras]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigValueError(
            f"data config: 'extra_sources' names must be unique (they prefix ids); repeated: {duplicates}"
        )

    pool_heldout_fraction = _fraction(_get(cfg, "pool_heldout_fraction", "", DEFAULT_POOL_HELDOUT_FRACTION),
                                      "pool_heldout_fraction")
    if pool_heldout_fraction >= 0.5:
        raise ConfigValueError(f"data config: 'pool_heldout_fraction' must be < 0.5 (it is taken out of the pool), "
                               f"got {pool_heldout_fraction}")
    external_cfg = _get(cfg, "external_max_chars", "", DEFAULT_EXTERNAL_MAX_CHARS)
    external = {
        name: _count(_get(external_cfg, name, "external_max_chars", DEFAULT_EXTERNAL_MAX_CHARS[name]),
                     f"external_max_chars.{name}", allow_none=False)
        for name in EXTERNAL_SOURCES
    }

    return DataConfig(
        split_seed=split_seed,
        embedded=embedded,
        brown=brown,
        noisy_max_chars=budgets,
        corruption=corruption,
        extra_sources=extras,
        pool_heldout_fraction=pool_heldout_fraction,
        external_max_chars=external,
    )
