"""Config validation: defaults filled from the schema, bad values named before any work."""
import pytest
import yaml

from jest.config import PROJECT_ROOT, ConfigError, load_schema

from jest.experiment import load_config, validate_config


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
        # a scale-ladder arm's keys (jest/ladder/rungs.py) exist only on the arms the ladder generates: a default
        # would add them to every arm (and change every arm's training hash); a rung's optional keys
        # default to the ladder-wide value of the same name
        ladder_only = path.startswith(("arms.*.rung", "arms.*.model", "arms.*.train", "arms.*.lr_from_sweep",
                                       "arms.*.pool_fraction", "ladder.rungs.*."))
        # data.planted_noise (the positive control's, jest/data/planted.py): a default would change every
        # config's data section, and with it every run's training hash and the data stage's trigger
        # data.registry.pool_heldout_fraction (the large preset's, jest/data/registry_corpus.py) likewise: its
        # default lives in the code and its description
        required_somewhere = required_somewhere or ladder_only or path in ("data.planted_noise",
                                                                           "data.registry.pool_heldout_fraction")
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
    ({"arms": {"x": {"policy": "magic"}}}, "'arms.x.policy': unknown policy 'magic'"),
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


# ---------------------------------------------------------------- issue #18 item 5, issue #17 item 2
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "train": {"lr": value}})
    assert f"'train.lr' = {value!r} is not a finite number" in str(err.value)


def test_yaml_nan_in_a_config_file_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\narms:\n  j: {policy: jest, tau: .nan}\n")
    with pytest.raises(ConfigError, match=r"'arms\.j\.tau' = nan is not a finite number"):
        load_config(path)


def test_duplicate_seeds_are_refused():
    with pytest.raises(ConfigError, match=r"'seeds' = \[0, 1, 0\] lists a value twice"):
        validate_config({"name": "x", "seeds": [0, 1, 0]})


def test_a_seq_len_no_split_can_hold_is_refused_before_any_data(tmp_path):
    from jest.config.checks import split_token_ceilings
    cfg = load_config(PROJECT_ROOT / "config" / "smoke.yaml")
    heldout = split_token_ceilings(cfg)["heldout"]
    assert 128 < heldout < 10**6  # 60 Brown texts: a few dozen held out, ~14.4 kB each at most
    with pytest.raises(ConfigError, match=r"'data.seq_len' = 1000000 is longer than the \w+ split can hold"):
        load_config(PROJECT_ROOT / "config" / "smoke.yaml", overrides={"data": {"seq_len": 10**6}})
    # a bring-your-own file counts with its size: 200 bytes hold far fewer than 8,000 tokens
    small = tmp_path / "s.jsonl"
    small.write_text('{"text": "a few words"}\n' * 8)
    srcs = [{"kind": "jsonl", "name": s, "path": str(small), "split": s} for s in ("curated", "heldout", "pool")]
    with pytest.raises(ConfigError, match="'data.seq_len' = 8000"):
        validate_config({"name": "x", "data": {"embedded": False, "extra_sources": srcs, "seq_len": 8000}})
    # seq_len 64 fits; the plan is then refused (jest/planning.py): 400 tokens at most hold 6 sequences,
    # fewer than one batch of the default reference and arms
    from jest.planning import PlanError
    with pytest.raises(PlanError, match="cannot be served by their data"):
        validate_config({"name": "x", "data": {"embedded": False, "extra_sources": srcs, "seq_len": 64}})


def test_cli_override_strings_are_converted_by_the_schema_types():
    """What Snakemake's --config hands over for train='{steps: 10, lr: 1e-3}' seeds='[0]' (strings below the top)."""
    from jest.config import coerce_overrides
    from jest.experiment import validate_snakemake_config
    given = {"train": {"steps": "10", "lr": "1e-3", "micro_batch_size": "null", "compile": "false"}, "seeds": ["0"],
             "arms": {"j": {"policy": "jest", "filter_ratio": "0.5"}}, "name": "x"}
    # a policy's own keys are its spec's, not the schema's: validate_snakemake_config converts them (below)
    assert coerce_overrides(given) == {"train": {"steps": 10, "lr": 1e-3, "micro_batch_size": None, "compile": False},
                                       "seeds": [0], "arms": {"j": {"policy": "jest", "filter_ratio": "0.5"}},
                                       "name": "x"}
    arms = {"u": {"policy": "uniform"}, "j": {"policy": "jest", "filter_ratio": "0.5", "n_chunks": "4"}}
    cfg = validate_snakemake_config({"name": "x", "arms": arms}, {"arms": arms})
    assert cfg["arms"]["j"]["filter_ratio"] == 0.5 and cfg["arms"]["j"]["n_chunks"] == 4
    cfg = validate_snakemake_config({"name": "x", "train": {"steps": "10", "warmup_steps": 2, "batch_size": 8},
                                     "seeds": ["0"]}, {"train": {"steps": "10"}, "seeds": ["0"]})
    assert cfg["train"]["steps"] == 10 and cfg["train"]["batch_size"] == 8 and cfg["seeds"] == [0]
    with pytest.raises(ConfigError) as err:
        validate_snakemake_config({"name": "x", "train": {"steps": "ten"}}, {"train": {"steps": "ten"}})
    assert "'train.steps' = 'ten' has the wrong type" in str(err.value)
    assert "--configfile" in str(err.value) and "--config gave ['train']" in str(err.value)
