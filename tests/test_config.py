"""Config validation: defaults filled from the schema, bad values named before any work."""
import pytest
import yaml

from jest.config import PROJECT_ROOT, ConfigError, load_config, load_schema, validate_config


def _walk(schema, path=""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, f"{path}{key}.")
        if isinstance(sub.get("items"), dict):
            yield from _walk(sub["items"], f"{path}{key}[].")
        if isinstance(sub.get("additionalProperties"), dict):
            yield from _walk(sub["additionalProperties"], f"{path}{key}.*.")


def test_every_schema_key_has_a_description_and_a_default():
    missing = []
    schema = load_schema()
    walked = list(_walk(schema)) + [(f"$defs.{name}.{path}", sub) for name, d in schema["$defs"].items()
                                    for path, sub in _walk(d)]
    for path, sub in walked:
        if "description" not in sub:
            missing.append(f"{path}: description")
        required_somewhere = path in ("name",) or path.endswith(("[].kind", "[].name", "[].path", ".*.policy"))
        if "default" not in sub and not required_somewhere:
            missing.append(f"{path}: default")
    assert not missing, missing


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "config").glob("*.yaml")))
def test_shipped_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg["name"] == path.stem


def test_defaults_are_filled_at_every_level():
    cfg = validate_config({"name": "x"})
    assert cfg["train"]["lr"] == 0.003
    assert cfg["data"]["brown"]["heldout_fraction"] == 0.1
    assert cfg["arms"] == {"uniform": {"policy": "uniform", "budget": 1.0}}
    assert cfg["references"]["ref"]["train"]["lr"] == 0.003  # defaults through $ref too


@pytest.mark.parametrize("bad, expected", [
    ({"trian": {}}, "unknown key(s) ['trian']"),
    ({"train": {"stpes": 3}}, "allowed keys"),
    ({"train": {"steps": "ten"}}, "'train.steps' = 'ten' has the wrong type"),
    ({"train": {"steps": 0}}, "'train.steps' = 0 is out of range"),
    ({"device": "tpu"}, "allowed values: ['cpu', 'cuda', 'auto']"),
    ({"arms": {"x": {"policy": "magic"}}}, "'arms.x.policy' = 'magic' is not allowed"),
    ({"train": {"batch_size": 16, "micro_batch_size": 5}}, "must divide 'train.batch_size'"),
    ({"model": {"n_embd": 96, "n_head": 5}}, "'model.n_head' = 5 must divide"),
    ({"data": {"brown": {"heldout_fraction": 0.5, "curated_fraction": 0.5}}}, "must be < 1"),
    ({"arms": {"j": {"policy": "jest", "filter_ratio": 1.0}}}, "'arms.j.filter_ratio' = 1.0 is out of range"),
    ({"arms": {"j": {"policy": "jest", "filter_ratio": -0.1}}}, "'arms.j.filter_ratio' = -0.1 is out of range"),
    ({"arms": {"j": {"policy": "jest", "filter_ratio": 0.7}}}, "does not fit 'train.batch_size' = 16"),
    ({"arms": {"j": {"policy": "jest", "reference": "big"}}}, "allowed values: ['ref']"),
    ({"arms": {"u": {"policy": "uniform", "tau": 1.0}}}, "takes no other keys; remove ['tau']"),
    ({"arms": {"j": {"policy": "jest", "selector": "greedy"}}}, "allowed values: ['joint', 'independent', 'topk']"),
    ({"references": {"ref": {"train": {"batch_size": 8, "micro_batch_size": 3}}}},
     "'references.ref.train.micro_batch_size' = 3 must divide"),
])
def test_bad_values_name_the_key(bad, expected):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", **bad})
    assert expected in str(err.value)


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_merge_deeply(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "c", "train": {"steps": 70}}))
    cfg = load_config(path, overrides={"train": {"lr": 0.01}})
    assert (cfg["train"]["steps"], cfg["train"]["lr"]) == (70, 0.01)
