"""Config rules of the control arms and the repetition switch (issue #13)."""
from __future__ import annotations

import pytest

from jest.config import ConfigError, PROJECT_ROOT

from jest.experiment import load_config, validate_config


@pytest.mark.parametrize("bad, expected", [
    ({"o": {"policy": "oracle_clean", "filter_ratio": 0.5}}, "takes no other keys; remove ['filter_ratio']"),
    ({"c": {"policy": "curated_only", "reference": "ref"}}, "takes no other keys; remove ['reference']"),
    ({"f": {"policy": "offline_filter", "criterion": "learnability"}}, "allowed values: ['easy_reference']"),
    ({"f": {"policy": "offline_filter", "selector": "topk"}}, "remove ['selector']"),
    ({"f": {"policy": "offline_filter", "reference": "big"}}, "allowed values: ['ref']"),
])
def test_bad_control_arms_name_the_key(bad, expected):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "arms": {"uniform": {"policy": "uniform"}, **bad}})
    assert expected in str(err.value)


def test_control_arms_are_normalised_and_allow_repeats_kept_only_when_true():
    cfg = validate_config({"name": "x", "arms": {
        "uniform": {"policy": "uniform", "allow_repeats": False},
        "o": {"policy": "oracle_clean", "allow_repeats": True},
        "f": {"policy": "offline_filter", "filter_ratio": 0.9},
        "j": {"policy": "jest"}}})
    # allow_repeats: false is dropped, so the key alone changes no arm's training hash
    assert cfg["arms"]["uniform"] == {"policy": "uniform", "budget": 1.0}
    assert cfg["arms"]["o"] == {"policy": "oracle_clean", "budget": 1.0, "allow_repeats": True}
    assert cfg["arms"]["f"] == {"policy": "offline_filter", "filter_ratio": 0.9, "reference": "ref",
                                "criterion": "easy_reference", "budget": 1.0}
    assert "allow_repeats" not in cfg["arms"]["j"] and cfg["train"]["allow_repeats"] is False


def test_the_tiny_default_flags_every_arm_that_repeats():
    """The headline draws at most the pool it has (measured: 17,808 pool, 3,061 clean sequences);
    the arms that repeat say so in the config."""
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    pool, clean, b, steps = 17808, 3061, cfg["train"]["batch_size"], cfg["train"]["steps"]
    for name, arm in cfg["arms"].items():
        drawn = steps * b / (1 - arm["filter_ratio"]) if arm["policy"] == "jest" else steps * b
        available = {"oracle_clean": clean, "curated_only": 9357}.get(arm["policy"], pool)
        if arm["policy"] == "offline_filter":
            available = round((1 - arm["filter_ratio"]) * pool)
        assert (drawn > available) == bool(arm.get("allow_repeats")), name
