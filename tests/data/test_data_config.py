"""Config validation: missing keys are named, bad values are explained."""

from __future__ import annotations

from typing import Any

import pytest

from jest.data.config import parse_data_config
from jest.data.errors import ConfigValueError, MissingConfigKeyError


def test_small_config_parses(small_cfg: dict[str, Any]) -> None:
    cfg = parse_data_config(small_cfg)
    assert cfg.brown.max_docs == 60 and cfg.corruption.kinds == ("shuffle_words", "char_noise", "boilerplate")
    assert cfg.noisy_max_chars == {"sotu": 60000, "spam_assassin": 40000, "nlp_corpus": 30000}


@pytest.mark.parametrize(
    "path",
    [
        ("split_seed",),
        ("embedded",),
        ("brown",),
        ("brown", "max_docs"),
        ("brown", "curated_fraction"),
        ("noisy_max_chars", "spam_assassin"),
        ("corruption", "kinds"),
        ("corruption", "char_noise_rate"),
        ("extra_sources",),
    ],
)
def test_missing_key_names_dotted_path(small_cfg: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = small_cfg
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(KeyError) as info:
        parse_data_config(small_cfg)
    assert isinstance(info.value, MissingConfigKeyError)
    assert str(info.value) == f"data config is missing required key '{'.'.join(path)}'"


def test_missing_extra_source_key_names_entry(small_cfg: dict[str, Any]) -> None:
    small_cfg["extra_sources"] = [{"kind": "jsonl", "name": "web", "split": "pool", "path": "x.jsonl"}]
    with pytest.raises(MissingConfigKeyError, match=r"extra_sources\[0\]\.quality"):
        parse_data_config(small_cfg)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("brown", "heldout_fraction", 1.5, r"'brown\.heldout_fraction' must be a number in \[0, 1\]"),
        ("brown", "curated_fraction", 0.95, r"heldout_fraction' \+ 'brown\.curated_fraction' must be <= 1"),
        ("brown", "max_docs", -3, r"'brown\.max_docs' must be a non-negative integer or null"),
        ("noisy_max_chars", "sotu", None, r"'noisy_max_chars\.sotu' must be a non-negative integer"),
        ("corruption", "kinds", ["shuffle_words", "typos"], r"unknown \['typos'\]"),
        ("corruption", "kinds", [], r"'corruption\.kinds' is empty"),
        (None, "embedded", "yes", r"'embedded' must be true or false"),
        (None, "split_seed", "1234", r"'split_seed' must be an integer"),
    ],
)
def test_bad_values_are_explained(small_cfg, section, key, value, message) -> None:
    (small_cfg[section] if section else small_cfg)[key] = value
    with pytest.raises(ConfigValueError, match=message):
        parse_data_config(small_cfg)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "csv"}, r"extra_sources\[0\]\.kind' must be one of"),
        ({"split": "train"}, r"extra_sources\[0\]\.split' must be one of"),
        ({"name": "a/b"}, r"extra_sources\[0\]\.name' must be a non-empty string without '/'"),
        ({"max_docs": 2.5}, r"extra_sources\[0\]\.max_docs' must be a non-negative integer or null"),
    ],
)
def test_bad_extra_sources_are_explained(small_cfg, entry, message) -> None:
    small_cfg["extra_sources"] = [
        {"kind": "jsonl", "name": "web", "split": "pool", "quality": "raw", "path": "x", **entry}
    ]
    with pytest.raises(ConfigValueError, match=message):
        parse_data_config(small_cfg)


def test_extra_source_names_must_be_unique(small_cfg) -> None:
    entry = {"kind": "jsonl", "name": "web", "split": "pool", "quality": "raw", "path": "x"}
    small_cfg["extra_sources"] = [entry, dict(entry)]
    with pytest.raises(ConfigValueError, match=r"names must be unique .* \['web'\]"):
        parse_data_config(small_cfg)
