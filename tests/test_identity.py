"""A run's identity covers everything it reads, and every input is verified before use (issue #30).

On the real smoke workspace (pinned data, tokenizer, shards) through the one training loop; the
files a test changes are copies in its tmp_path, never the shared workspace.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from jest.config import PROJECT_ROOT, deep_merge

from jest.experiment import validate_config
from jest.io import atomic_write_json, sha256_file
from jest.policies.jest_policy import JestPolicy, MissingReferenceError, PolicyContext
from jest.policies.reference import Reference
from jest.data.shards import ShardError, TokenShard, record_file_hashes
from jest.data.tokenizer import TokenizerError, load_tokenizer
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, train

SHORT = {"steps": 4, "warmup_steps": 1, "eval_every": 4, "eval_log_points": 1, "checkpoint_every": 2}
ARM = "offline_filter_f0.5"


def _cfg(ws, arm: str = "uniform") -> dict:
    arms = {"uniform": {"policy": "uniform"}, ARM: {"policy": "offline_filter", "filter_ratio": 0.5}}
    return validate_config(deep_merge(ws["cfg"], {"arms": {arm: arms[arm]}, "train": SHORT}))


def _spec(ws, run_dir: Path, arm: str = "uniform", shards: Path | None = None, refs: Path | None = None) -> RunSpec:
    return RunSpec(cfg=_cfg(ws, arm), arm=arm, seed=0, run_dir=run_dir, shards_dir=shards or ws["shards"],
                   tokenizer_dir=ws["tokenizer"], references_root=refs)


def _card(run_dir: Path) -> dict:
    return json.loads((run_dir / "card.json").read_text())


def _scored_reference(ws, refs: Path, scores: np.ndarray, steps: int = 40) -> Path:
    """A reference folder as train_reference + score_reference leave it: a finished card, weights, the
    pool scores and their record (reference, pool and scores sha256)."""
    ref = refs / "ref"
    (ref / "model").mkdir(parents=True, exist_ok=True)
    (ref / "model" / "model.safetensors").write_bytes(b"a reference's weights")
    np.save(ref / "pool_scores.npy", scores.astype(np.float32))
    pool_sha = json.loads((ws["shards"] / "manifest.json").read_text())["splits"]["pool"]["sha256"]
    atomic_write_json(ref / "pool_scores.json", {
        "reference_sha256": sha256_file(ref / "model" / "model.safetensors"), "pool_sha256": pool_sha,
        "flops": 123.0, "scores_sha256": sha256_file(ref / "pool_scores.npy")})
    atomic_write_json(ref / "card.json", {"status": "finished", "flops": {"flops_train": 1000.0},
                                          "identity": f"ref-{steps}", "steps": steps})
    return ref


def _pool_size(ws) -> int:
    return json.loads((ws["shards"] / "manifest.json").read_text())["splits"]["pool"]["sequences"]


# ---------------------------------------------------------------- stale checkpoints of another identity
def test_a_changed_reference_sets_aside_the_arms_checkpoints_and_retrains(smoke_workspace, tmp_path, capsys):
    ws, refs, run = smoke_workspace, tmp_path / "references", tmp_path / "run"
    n = _pool_size(ws)
    _scored_reference(ws, refs, np.random.default_rng(1).permutation(n))
    train(_spec(ws, run, ARM, refs=refs), progress=False)
    first = [r["train_loss"] for r in read_metrics(run / "metrics.jsonl")]
    # an unchanged re-run resumes its final checkpoint (the identity is the same at every resume)
    train(_spec(ws, run, ARM, refs=refs), progress=False)
    assert _card(run)["resumed_from_step"] == SHORT["steps"] and not list(tmp_path.glob("run/checkpoints.stale-*"))
    capsys.readouterr()
    # the reference trained longer and re-scored the pool (issue #30: steps 40 -> 60)
    _scored_reference(ws, refs, np.random.default_rng(2).permutation(n), steps=60)
    train(_spec(ws, run, ARM, refs=refs), progress=False)
    said = capsys.readouterr().out
    assert "checkpoints.stale-" in said and "changed: the reference" in said, said
    assert len(list(tmp_path.glob("run/checkpoints.stale-*"))) == 1
    assert _card(run)["resumed_from_step"] is None
    assert [r["train_loss"] for r in read_metrics(run / "metrics.jsonl")] != first  # another kept set


def test_changed_shard_labels_set_aside_the_checkpoints_and_retrain(smoke_workspace, tmp_path, capsys):
    ws, run, shards = smoke_workspace, tmp_path / "run", tmp_path / "shards"
    shutil.copytree(ws["shards"], shards)
    train(_spec(ws, run, shards=shards), progress=False)
    # build_shards re-run on data whose labels changed: a new labels.json, recorded in the manifest
    labels = json.loads((shards / "labels.json").read_text())
    labels[0]["quality"] = labels[0]["quality"] + "_relabelled"
    atomic_write_json(shards / "labels.json", labels)
    manifest = json.loads((shards / "manifest.json").read_text())
    record_file_hashes(shards, manifest)
    atomic_write_json(shards / "manifest.json", manifest)
    capsys.readouterr()
    train(_spec(ws, run, shards=shards), progress=False)
    said = capsys.readouterr().out
    assert "changed: the shards' content" in said, said
    assert _card(run)["resumed_from_step"] is None and len(list(tmp_path.glob("run/checkpoints.stale-*"))) == 1


def test_a_finished_run_whose_outputs_were_deleted_retrains(smoke_workspace, tmp_path, capsys):
    """`snakemake --forcerun train` deletes a job's outputs, then runs it: that must train, not resume
    the final checkpoint. With its card in place a re-run still resumes (the plain CLI)."""
    ws, run = smoke_workspace, tmp_path / "run"
    train(_spec(ws, run), progress=False)
    train(_spec(ws, run), progress=False)
    assert _card(run)["resumed_from_step"] == SHORT["steps"]
    for output in ("card.json", "metrics.jsonl", "model/model.safetensors"):  # what Snakemake deletes
        (run / output).unlink()
    capsys.readouterr()
    train(_spec(ws, run), progress=False)
    said = capsys.readouterr().out
    assert "finished before and its outputs were deleted" in said, said
    assert _card(run)["resumed_from_step"] is None and len(list(tmp_path.glob("run/checkpoints.stale-*"))) == 1
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, SHORT["steps"] + 1))
    # the final checkpoint gone (set aside as unloadable, removed by hand): the mark went with it, so a
    # run with no outputs resumes from the checkpoint it has, as a killed run does
    shutil.rmtree(run / "checkpoints" / f"step_{SHORT['steps']:07d}")
    (run / "card.json").unlink()
    train(_spec(ws, run), progress=False)
    assert _card(run)["resumed_from_step"] == SHORT["checkpoint_every"]


# ---------------------------------------------------------------- every input verified before use
def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_build_shards_records_the_sha256_of_every_file_it_writes(smoke_workspace):
    shards = smoke_workspace["shards"]
    files = json.loads((shards / "manifest.json").read_text())["files"]
    written = {p.name for p in shards.iterdir() if p.name != "manifest.json"}
    assert set(files) == written and {"pool.index.npy", "labels.json", "token_bytes.npy"} <= written
    assert all(files[name] == sha256_file(shards / name) for name in written)


@pytest.mark.parametrize("name", ["pool.index.npy", "labels.json", "token_bytes.npy"])
def test_a_flipped_byte_in_a_shard_file_is_refused_naming_it(smoke_workspace, tmp_path, name):
    shards = tmp_path / "shards"
    shutil.copytree(smoke_workspace["shards"], shards)
    path = shards / name
    # the index: the low byte of the last sequence's label (records are doc, label, n_bytes: int32 each),
    # as in issue #30 (a sequence of one source marked as another); the others: a byte in the middle
    _flip_byte(path, path.stat().st_size - 8 if name == "pool.index.npy" else path.stat().st_size // 2)
    with pytest.raises(ShardError, match=rf"{name} was changed after build_shards.*--forcerun build_shards"):
        TokenShard(shards, "pool")


def test_an_old_manifest_without_file_hashes_is_refused_with_the_rebuild(smoke_workspace, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(smoke_workspace["shards"], shards)
    manifest = json.loads((shards / "manifest.json").read_text())
    del manifest["files"]
    atomic_write_json(shards / "manifest.json", manifest)
    with pytest.raises(ShardError, match=r"records no sha256 for pool\.tokens\.npy.*--forcerun build_shards"):
        TokenShard(shards, "pool")


def _ctx(ws, refs: Path) -> PolicyContext:
    import torch
    manifest = json.loads((ws["shards"] / "manifest.json").read_text())
    return PolicyContext(seed=0, seq_len=manifest["seq_len"], pool_size=_pool_size(ws), device=torch.device("cpu"),
                         pool_sha256=manifest["splits"]["pool"]["sha256"], references_root=refs)


def test_nan_pool_scores_are_refused_naming_the_file_and_the_rescore(smoke_workspace, tmp_path):
    ws = smoke_workspace
    scores = np.random.default_rng(3).random(_pool_size(ws))
    scores[::3] = np.nan  # issue #30: every third score NaN, recorded as if the scorer had written it
    ref = _scored_reference(ws, tmp_path / "references", scores)
    with pytest.raises(MissingReferenceError, match=r"pool_scores\.npy holds \d+ NaN or infinite.*--forcerun "
                                                    r"score_reference"):
        Reference("ref", ref, 0.0).pool_scores(_ctx(ws, tmp_path / "references"))
    # and through the offline-filter arm's training job: it stops before its first step
    with pytest.raises(MissingReferenceError, match=r"pool_scores\.npy"):
        train(_spec(ws, tmp_path / "run", ARM, refs=tmp_path / "references"), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_the_nan_rows_of_a_partial_scoring_are_not_refused(smoke_workspace, tmp_path):
    """`ladder.pool_fraction`: score_pool scores a nested subset and leaves the other rows NaN by design."""
    from jest.training.runspec import training_subset
    ws, refs = smoke_workspace, tmp_path / "references"
    n = _pool_size(ws)
    scores = np.full(n, np.nan)
    scores[training_subset(n, 0.5)] = 1.0
    ref = _scored_reference(ws, refs, scores)
    meta = json.loads((ref / "pool_scores.json").read_text())
    atomic_write_json(ref / "pool_scores.json", meta | {"fraction": 0.5})
    got, _ = Reference("ref", ref, 0.0).pool_scores(_ctx(ws, refs))
    assert np.isnan(got).sum() == n - len(training_subset(n, 0.5))


def test_pool_scores_changed_after_scoring_are_refused_naming_the_file(smoke_workspace, tmp_path):
    ws = smoke_workspace
    ref = _scored_reference(ws, tmp_path / "references", np.random.default_rng(4).random(_pool_size(ws)))
    scores = np.load(ref / "pool_scores.npy")
    scores[::3] = np.nan  # edited after score_reference recorded its sha256
    np.save(ref / "pool_scores.npy", scores)
    with pytest.raises(MissingReferenceError, match=r"pool_scores\.npy is not the file the scorer wrote.*"
                                                    r"--forcerun score_reference"):
        Reference("ref", ref, 0.0).pool_scores(_ctx(ws, tmp_path / "references"))


def test_a_truncated_tokenizer_names_the_file_and_the_rebuild(smoke_workspace, tmp_path):
    tok = tmp_path / "tokenizer"
    shutil.copytree(smoke_workspace["tokenizer"], tok)
    text = (tok / "tokenizer.json").read_text()
    (tok / "tokenizer.json").write_text(text[:len(text) // 2])
    said = re.escape(str(tok / "tokenizer.json")) + r" does not load.*--forcerun train_tokenizer"
    with pytest.raises(TokenizerError, match=said):
        load_tokenizer(tok)


def test_an_edit_whose_mtime_goes_back_is_found_by_content(tmp_path):
    """A bring-your-own file edited, its mtime put back (`cp -p`, `rsync -a`, `tar x`): the content hash
    that prepare_data's trigger holds (workflow/rules/common.smk) changes; the stat cache never hides it."""
    from jest.data.manifest import content_sha256, input_file_contents
    path, stamp = tmp_path / "pool.jsonl", tmp_path / "cache" / "local-files.json"
    path.write_text(json.dumps({"text": "document one"}) + "\n")
    time.sleep(2.1)  # a file changed in the last 2 s is never cached (jest.data.manifest.content_sha256)
    sources = [{"kind": "jsonl", "name": "byo", "path": str(path)}]
    before, st = input_file_contents(sources, stamp), path.stat()
    assert before == [[str(path), sha256_file(path)]]
    assert json.loads(stamp.read_text())[str(path.resolve())]["sha256"] == before[0][1]  # cached by stat
    path.write_text(json.dumps({"text": "document two"}) + "\n")  # the same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    assert input_file_contents(sources, stamp) == [[str(path), sha256_file(path)]] != before
    assert content_sha256(path, stamp) == sha256_file(path)


def test_the_preflight_reports_a_bring_your_own_file_changed_since_prepare_data(tmp_path):
    from jest.sources.artifacts import Artifact
    from jest.sources.preflight import _local_file_since_prepare
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps({"text": "document one"}) + "\n")
    cfg = {"results_dir": str(tmp_path / "results"), "name": "x"}
    atomic_write_json(tmp_path / "results" / "x" / "data" / "manifest.json",
                      {"input_files": [{"path": str(path), "sha256": sha256_file(path)}]})
    a = Artifact("local-file", str(path), None, str(path), path.name, None, None, ("data: byo",), "", "")
    assert _local_file_since_prepare(cfg, a, tmp_path / "cache").status == "ok"
    st = path.stat()
    path.write_text(json.dumps({"text": "document two"}) + "\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    check = _local_file_since_prepare(cfg, a, tmp_path / "cache")
    assert check.status == "warning" and "changed since prepare_data" in check.detail
    assert "--forcerun prepare_data" in check.detail


def test_the_committed_tiny_runs_keep_their_training_identity_under_todays_config():
    """Every committed tiny run (results/reference/tiny/, ablations included) has the training hash today's
    config/tiny.yaml gives its arm: a schema default added to a section every config has (data, model,
    train, device) would change them all, so that nobody's checkpoint resumes and the committed runs no
    longer describe what `make reproduce` trains."""
    import glob
    from jest.experiment import load_config
    from jest.training.runspec import training_hash
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    cards = [json.loads(Path(p).read_text()) for p in glob.glob(str(PROJECT_ROOT / "results" / "reference" / "tiny" /
                                                                     "**" / "runs" / "*" / "card.json"), recursive=True)]
    checked = [c for c in cards if c.get("arm") in cfg["arms"] and (c.get("identity_parts") or {}).get("config")]
    assert len(checked) >= 90, len(checked)
    changed = sorted({c["arm"] for c in checked if c["identity_parts"]["config"] != training_hash(cfg, c["arm"])})
    assert not changed, f"today's config gives these committed arms another training hash: {changed}"
