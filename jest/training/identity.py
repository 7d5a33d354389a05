"""A run's identity: everything its checkpoints depend on (issue #30).

A checkpoint is resumed only by a run of the same identity; any other is set aside
(jest/training/checkpoint.py). The identity is made of parts, each a hash, kept by name in every
checkpoint's state.json so that a set-aside message says which part changed:

    config      the config sections the run trains with (jest.training.runspec.training_hash)
    shards      the sha256 of every shard file (tokens, index, labels, token bytes: the shards
                manifest's "files"; TokenShard checks the files it opens against them)
    tokenizer   the sha256 of tokenizer.json (it must be the one the shards were built with)
    reference   for an arm whose policy reads a reference (its spec's reads_reference): the reference's own
                identity and final step (its card), and the sha256 of the pool scores it reads
                (cached scoring, offline_filter) or of its weights (online scoring)

Without the inputs, a reference trained longer, a re-tokenized corpus or a changed label left the
old final checkpoint of every arm in place, and each "retrained" by resuming it: byte-identical
metrics under a new label. Every part is read from files that do not change while a run trains, so
the identity is the same at every resume of an unchanged run.
"""
from __future__ import annotations

import json
from pathlib import Path

from jest.config import config_hash
from jest.policies.reference import Reference
from jest.policies.registry import get_spec
from jest.training.runspec import RunSpec, training_hash
from jest.data.shards import ShardError, cached_sha256


def input_identity(spec: RunSpec) -> dict[str, str]:
    """The parts of the identity that come from files (all but `config`), by name."""
    shards_dir, tokenizer_json = Path(spec.shards_dir), Path(spec.tokenizer_dir) / "tokenizer.json"
    manifest_path = shards_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if "files" not in manifest:  # the message names the file and the rebuild (jest.data.shards.verify_shard_file)
        raise ShardError(f"{manifest_path} records no sha256 for the shard files besides the tokens (written by "
                         "an older build_shards); rebuild the shards: `snakemake --cores N --forcerun build_shards "
                         f"[--configfile CONFIG]` (or delete {shards_dir} and re-run your snakemake command)")
    tokenizer = cached_sha256(tokenizer_json)
    if manifest.get("tokenizer_sha256") not in (None, tokenizer):
        raise ShardError(f"the shards in {shards_dir} were built with another tokenizer than {tokenizer_json} "
                         f"(sha256 {manifest['tokenizer_sha256']} in {manifest_path}, {tokenizer} now); rebuild them: "
                         "`snakemake --cores N --forcerun build_shards [--configfile CONFIG]`")
    parts = {"shards": config_hash(manifest["files"]), "tokenizer": tokenizer}
    arm = spec.cfg["arms"][spec.arm]
    policy = get_spec(arm["policy"]) if spec.kind == "learner" else None
    reads = policy.reads_reference(arm) if policy else None
    if reads is not None:  # checked by the policy already (jest.policies.reference.Reference)
        root = Path(spec.references_root or Path(spec.run_dir).parent.parent / "references")
        parts["reference"] = Reference(arm["reference"], root / arm["reference"], 0.0).identity(reads)
    other = policy.reads_arm(arm) if policy else None
    if other is not None:  # another arm's run of this seed (the mixture-matched control reads JEST's selection)
        card = json.loads((Path(spec.run_dir).parent / f"{other}_s{spec.seed}" / "card.json").read_text())
        parts["matched_run"] = config_hash({"identity": card.get("identity"), "metrics": card.get("metrics_sha256")})
    return parts


def run_identity(spec: RunSpec, inputs: dict[str, str], arm: str | None = None) -> dict[str, str]:
    """All parts of the identity of `spec` (or of another arm of its config that reads the same inputs:
    a wsd branch's trunk, jest/training/branching.py)."""
    return {"config": training_hash(spec.cfg, arm or spec.arm)} | inputs


def identity_hash(parts: dict[str, str]) -> str:
    """The one value a checkpoint's state.json records as `config_hash`."""
    return config_hash(parts)


def changed_parts(old: dict | None, new: dict[str, str]) -> str:
    """For a set-aside message: which parts differ, in words."""
    if not old:
        return "config or inputs (the checkpoint predates recorded identities)"
    names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    words = {"config": "the config (data, model, train, device or the arm)", "shards": "the shards' content",
             "tokenizer": "the tokenizer", "reference": "the reference (its training, scores or weights)",
             "matched_run": "the run it follows (its identity or its metrics)"}
    return ", ".join(words.get(k, k) for k in names) or "nothing recorded (an older identity)"
