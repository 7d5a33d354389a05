"""Fault injection (issue #7): what breaks, how it is injected, and what the harness does about it.

Faults tested elsewhere (SIGKILL of training, parallel MLflow writers, config errors, NaN
loss, truncated / tampered shards, npm failures and checksum mismatches) are listed with
their tests in docs/faults.md; this file holds the rest.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from jest.config import PROJECT_ROOT, SAFE_NAME, SAFE_PATH, ConfigError, deep_merge, load_schema

from jest.experiment import validate_config
from jest.io import atomic_write_json
from jest.tracking.records import read_metrics


def _free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- 1. pool scoring: kill + resume
def _random_reference(ws, ref_dir: Path) -> None:
    """A reference model at initialisation: scoring it costs the same as a trained one, and no training."""
    from jest.model.llama import build_hf_config, build_model
    from jest.data.tokenizer import load_tokenizer
    tok = load_tokenizer(ws["tokenizer"])
    hf = build_hf_config(ws["cfg"]["references"]["ref"]["model"], len(tok), ws["cfg"]["data"]["seq_len"],
                         tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    build_model(hf, seed=0).save_pretrained(ref_dir / "model", safe_serialization=True)


def _score_cmd(cfg_path: Path, ref_dir: Path, shards: Path) -> list[str]:
    # --batch-size 4: chunks of 64 sequences, one progress write per chunk on the smoke pool
    return [sys.executable, "-m", "jest", "score-reference", "--config", str(cfg_path), "--ref-dir", str(ref_dir),
            "--shards", str(shards), "--threads", "1", "--batch-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def scored(smoke_workspace, tmp_path_factory):
    """An uninterrupted `score-reference` run: the scores every resumed run must reproduce bit for bit."""
    root = tmp_path_factory.mktemp("scored")
    cfg_path = root / "cfg.json"
    atomic_write_json(cfg_path, deep_merge(smoke_workspace["cfg"], {"results_dir": str(root)}))
    ref = root / "ref"
    _random_reference(smoke_workspace, ref)
    subprocess.run(_score_cmd(cfg_path, ref, smoke_workspace["shards"]), check=True, cwd=PROJECT_ROOT,
                   capture_output=True)
    return {"cfg_path": cfg_path, "ref": ref, "scores": (ref / "pool_scores.npy").read_bytes(),
            "meta": json.loads((ref / "pool_scores.json").read_text())}


@pytest.mark.slow
def test_score_reference_sigkilled_after_a_progress_write_resumes_to_identical_scores(
        smoke_workspace, scored, tmp_path):
    ws = smoke_workspace
    ref = tmp_path / "ref"
    shutil.copytree(scored["ref"] / "model", ref / "model")  # the same weights, bit for bit
    partial = ref / "pool_scores.partial.json"
    n = scored["meta"]["sequences"]
    for _ in range(3):  # the kill must land between the first progress write and the end
        proc = subprocess.Popen(_score_cmd(scored["cfg_path"], ref, ws["shards"]), cwd=PROJECT_ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 180
        while not partial.exists():
            assert time.time() < deadline and proc.poll() is None, "no progress write appeared"
            time.sleep(0.005)
        time.sleep(random.uniform(0.0, 0.15))  # somewhere after the first progress write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL and not (ref / "pool_scores.npy").exists():
            break
        for leftover in ref.glob("pool_scores*"):  # it finished first: the kill proved nothing, again
            leftover.unlink()
    else:
        pytest.fail("scoring finished before every kill")
    # killed mid-way: only the partial exists, never a final output
    assert not (ref / "pool_scores.npy").exists() and not (ref / "pool_scores.json").exists()
    progress = json.loads(partial.read_text())
    assert 0 < progress["next"] < n
    assert progress["reference_sha256"] == scored["meta"]["reference_sha256"]
    assert (ref / "pool_scores.partial.npy").exists()

    out = subprocess.run(_score_cmd(scored["cfg_path"], ref, ws["shards"]), check=True, cwd=PROJECT_ROOT,
                         capture_output=True, text=True)
    resumed_at = int(re.search(r"resuming pool scoring at sequence (\d+)", out.stdout).group(1))
    assert resumed_at >= progress["next"] > 0
    assert (ref / "pool_scores.npy").read_bytes() == scored["scores"]  # bit for bit
    meta = json.loads((ref / "pool_scores.json").read_text())
    assert meta["resumed_from"] == resumed_at and meta["reference_sha256"] == scored["meta"]["reference_sha256"]
    assert not list(ref.glob("pool_scores.partial*"))  # the partial files are gone,
    assert not list(ref.glob(".pool_scores*"))  # and so are temp files of writes the kill cut short


def _plant_partial(ws, ref: Path, meta: dict, fake: float) -> int:
    """A progress record saying the first chunk (64 sequences at batch size 4) is done, with fake scores."""
    from jest.policies.scoring import PARTIAL_META, PARTIAL_SCORES
    scores = np.zeros(meta["sequences"], dtype=np.float32)
    scores[:64] = fake
    np.save(ref / PARTIAL_SCORES, scores)
    manifest = json.loads((ws["shards"] / "manifest.json").read_text())
    atomic_write_json(ref / PARTIAL_META, {
        "reference_sha256": meta["reference_sha256"], "pool_sha256": manifest["splits"]["pool"]["sha256"],
        "sequences": meta["sequences"], "seq_len": meta["seq_len"], "batch_size": 4, "chunk": 64,
        "device": "cpu", "precision": "fp32", "next": 64, "seconds": 1.0,
        **({"fast_path": True} if meta["fast_path"] else {})})
    return 64


@pytest.fixture
def one_thread():
    """Score in-process on one thread, like the `scored` subprocess (the same floats), then restore."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_partial_from_another_reference_is_discarded_and_a_matching_one_is_used(smoke_workspace, scored,
                                                                                    tmp_path, capsys, one_thread):
    from transformers import LlamaForCausalLM

    from jest.policies.scoring import score_pool

    ws = smoke_workspace
    ref = tmp_path / "ref"
    shutil.copytree(scored["ref"] / "model", ref / "model")
    model = LlamaForCausalLM.from_pretrained(ref / "model")
    truth = np.load(scored["ref"] / "pool_scores.npy")
    fast = scored["meta"]["fast_path"]  # the forward the `scored` subprocess used (the smoke reference's)
    assert fast == ws["cfg"]["references"]["ref"]["train"]["fast_path"]

    # a record from another reference (its sha256 differs): discarded, never used
    done = _plant_partial(ws, ref, {**scored["meta"], "reference_sha256": "0" * 64}, fake=123.0)
    score_pool(model, ws["shards"], ref, 4, ref, progress=False, fast=fast)
    assert "discarding partial pool scores" in capsys.readouterr().out
    got = np.load(ref / "pool_scores.npy")
    assert not (got[:done] == 123.0).any()
    assert np.array_equal(got, truth)
    assert json.loads((ref / "pool_scores.json").read_text())["resumed_from"] is None

    # a matching record is trusted (the planted values prove it was read), then removed
    done = _plant_partial(ws, ref, scored["meta"], fake=123.0)
    score_pool(model, ws["shards"], ref, 4, ref, progress=False, fast=fast)
    got = np.load(ref / "pool_scores.npy")
    assert (got[:done] == 123.0).all() and np.array_equal(got[done:], truth[done:])
    assert json.loads((ref / "pool_scores.json").read_text())["resumed_from"] == done
    assert not list(ref.glob("pool_scores.partial*"))

    # another batch size computes chunks differently: its partial is discarded too
    _plant_partial(ws, ref, scored["meta"], fake=123.0)
    score_pool(model, ws["shards"], ref, 8, ref, progress=False, fast=fast)
    assert "discarding partial pool scores" in capsys.readouterr().out
    assert not (np.load(ref / "pool_scores.npy") == 123.0).any()


# ---------------------------------------------------------------- 2. MLflow unreachable during training
def test_unreachable_tracking_server_training_completes_then_sync_mlflow_reconciles(smoke_workspace, tmp_path,
                                                                                    monkeypatch):
    from mlflow.tracking import MlflowClient

    from jest.tracking.records import MlflowMirror
    from jest.training.trainer import RunSpec, train

    ws = smoke_workspace
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    # The server is named by MLFLOW_TRACKING_URI (config 'mlflow.tracking_uri' null), so that the
    # reconcile below can point at another store; a config URI takes the same code path.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    # One HTTP attempt per try of ours keeps the test fast; the harness default retries twice.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    syncs, tries = [], []  # calls of MlflowMirror.sync, and its tries of the store
    real_sync, real_sync_once = MlflowMirror.sync, MlflowMirror._sync_once
    monkeypatch.setattr(MlflowMirror, "sync", lambda self, *a, **k: (syncs.append(1), real_sync(self, *a, **k))[1])
    monkeypatch.setattr(MlflowMirror, "_sync_once",
                        lambda self, *a: (tries.append(1), real_sync_once(self, *a))[1])
    cfg = deep_merge(ws["cfg"], {"results_dir": str(tmp_path), "mlflow": {"tracking_uri": None, "sync_every": 4},
                                 "train": {"steps": 8, "warmup_steps": 2, "eval_every": 4, "checkpoint_every": 4}})
    run_dir = tmp_path / "run"
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(RunSpec(cfg=cfg, arm="uniform", seed=0, run_dir=run_dir, shards_dir=ws["shards"],
                      tokenizer_dir=ws["tokenizer"]), progress=False)
    elapsed = time.time() - t0
    # syncs at steps 4 and 8 and the final one: the first makes 3 tries (a server's default), the
    # later ones 1 each while the server stays down
    assert len(syncs) >= 2 and len(tries) == 3 + (len(syncs) - 1), (syncs, tries)
    assert any("sync-mlflow" in str(w.message) and dead in str(w.message) for w in caught)
    assert elapsed < 120
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 9))  # every row written
    card = json.loads((run_dir / "card.json").read_text())
    assert card["status"] == "finished" and card["mlflow_synced"] is False  # the failure is on the card
    assert not (run_dir / "mlflow_run.json").exists()

    # later, against a reachable store: every point of metrics.jsonl lands in MLflow
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    receipt = tmp_path / "synced.json"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    proc = subprocess.run([sys.executable, "-m", "jest", "sync-mlflow", str(run_dir), "--receipt", str(receipt)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "points missing in MLflow: 0" in proc.stdout
    got = json.loads(receipt.read_text())
    assert got["missing"] == 0 and got["tracking_uri"] == store
    client = MlflowClient(store)
    run = client.get_run(got["run_id"])
    assert run.info.status == "FINISHED"
    expected = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("step", "time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                expected.setdefault(key, {})[row["step"]] = value
    assert got["points"] == sum(len(v) for v in expected.values())
    for key, history in expected.items():
        stored = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
        assert stored == pytest.approx(history), key


# ---------------------------------------------------------------- 3. no shell command built from config strings
HOSTILE = ["a; rm -rf ~", "../x", "..", "-rf", "x y", "$(reboot)", "a`id`", "x\n", "a/b", "a|b", "é"]


def test_schema_and_validator_share_the_safe_patterns():
    schema = load_schema()["properties"]
    assert schema["name"]["pattern"] == SAFE_NAME
    assert schema["arms"]["propertyNames"]["pattern"] == SAFE_NAME
    assert schema["references"]["propertyNames"]["pattern"] == SAFE_NAME
    assert schema["results_dir"]["pattern"] == SAFE_PATH == schema["cache_dir"]["pattern"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_config_name_is_rejected_naming_the_key_and_the_pattern(bad):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": bad})
    assert f"'name' = {bad!r} is not allowed" in str(err.value) and SAFE_NAME in str(err.value)


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_arm_name_is_rejected(bad):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "arms": {bad: {"policy": "uniform"}}})
    assert f"name {bad!r} under 'arms' is not allowed" in str(err.value) and SAFE_NAME in str(err.value)


@pytest.mark.parametrize("bad", ["a; rm -rf ~", "../x", "x\n"])
def test_hostile_reference_name_is_rejected(bad):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "references": {bad: {}},
                         "arms": {"j": {"policy": "jest", "reference": bad}}})
    assert f"name {bad!r} under 'references' is not allowed" in str(err.value)


@pytest.mark.parametrize("key", ["results_dir", "cache_dir"])
@pytest.mark.parametrize("bad", ["my results", "r; rm -rf ~", "$(reboot)", "~/results", "r\n", "a'b", "r*"])
def test_paths_reaching_shell_commands_are_restricted(key, bad):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", key: bad})
    assert f"'{key}' = {bad!r} is not allowed" in str(err.value) and "shell" in str(err.value)


@pytest.mark.parametrize("good", ["smoke", "tiny", "jest_f0.5", "a-b.c_d", "0x"])
def test_ordinary_names_and_paths_pass(good):
    cfg = validate_config({"name": good, "results_dir": f"/tmp/{good}/r-1.x", "cache_dir": "results/cache",
                           "arms": {good: {"policy": "uniform"}}})
    assert cfg["name"] == good


def test_every_shell_line_uses_only_validated_config_strings():
    """The audit, as a test: a rule's shell command may hold only params/inputs/outputs/logs/threads and
    the `arm` / `ref` / `seed` wildcards; the values behind them come from the validated names and paths."""
    allowed = re.compile(r"^(params\.\w+|input\.\w+|input|output\.\w+|output|log|threads|"
                         r"wildcards\.(arm|ref|seed))(:q)?$")
    rules = sorted((PROJECT_ROOT / "workflow" / "rules").glob("*.smk"))
    assert rules
    seen = 0
    for path in rules:
        text = path.read_text()
        # shell: logged("...") (jest/joblog.py wraps every command), possibly continued on more lines
        for block in re.findall(r"shell:\n((?:[ \t]+(?:logged\()?\"[^\n]*\n?)+)", text):
            for field in re.findall(r"\{([^{}]+)\}", block):
                seen += 1
                assert allowed.match(field), f"{path.name}: shell field {{{field}}}"
                # Paths are absolute under the checkout, which may hold a space ("~/my projects/jest"):
                # every path field is quoted; only integers, validated names and the launcher are not,
                # and params.runs (evaluation.group_by: seed), options whose every word is already quoted
                # by shlex.quote (common.smk, evaluate_group_args): `:q` would make them one word.
                bare_ok = field in ("threads", "params.launcher", "params.runs") or field.startswith("wildcards.")
                assert bare_ok or field.endswith(":q"), f"{path.name}: path field {{{field}}} is not quoted ({{...:q}})"
    assert seen > 10


# ---------------------------------------------------------------- 4. servers bind to 127.0.0.1
def test_every_server_the_project_starts_binds_to_localhost():
    """`make mlflow-ui` (`python -m jest mlflow-ui`, jest/tracking/mlflow_ui.py) is the only server the project starts."""
    from jest.tracking import mlflow_ui

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    target = re.search(r"^mlflow-ui:.*\n((?:\t.*\n?)+)", makefile, re.MULTILINE)
    assert target, "Makefile has no mlflow-ui target"
    assert re.search(r"-m jest mlflow-ui\b", target.group(1)), target.group(1)
    command = mlflow_ui.server_command("sqlite:////tmp/x.db", 5000)
    assert command[1:4] == ["-m", "mlflow", "server"]
    assert [command[i + 1] for i, arg in enumerate(command) if arg in ("--host", "-h")] == ["127.0.0.1"], command
    # anything else that would start a server must bind to localhost too
    launchers = re.compile(r"mlflow (ui|server)|uvicorn|gunicorn|http\.server|serve_forever|\.bind\(|"
                           r"0\.0\.0\.0")
    offenders = []
    for path in [*PROJECT_ROOT.glob("jest/**/*.py"), *PROJECT_ROOT.glob("analysis/**/*.py"),
                 *PROJECT_ROOT.glob("baselines/**/*.py"), *PROJECT_ROOT.glob("workflow/**/*.smk"),
                 *PROJECT_ROOT.glob("scripts/**/*.sh"), *PROJECT_ROOT.glob("scripts/**/*.py"),
                 PROJECT_ROOT / "Snakefile", PROJECT_ROOT / "Makefile"]:
        for line in path.read_text().splitlines():
            if launchers.search(line) and "127.0.0.1" not in line:
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {line.strip()}")
    assert not offenders, offenders


# ---------------------------------------------------------------- 5. bad inputs not covered elsewhere
@pytest.mark.parametrize("what", ["learner", "reference"])
def test_a_super_batch_larger_than_the_split_is_a_clear_error(smoke_workspace, tmp_path, what):
    """Refused when the config is read (jest/planning.py: before any job, dry runs too), naming the key;
    and by the trainer, the last line of defence, when a config reaches it unvalidated."""
    from jest.planning import PlanError
    from jest.data.shards import TokenShard
    from jest.training.trainer import RunSpec, reference_spec, train

    ws = smoke_workspace
    if what == "learner":  # the uniform arm with a batch of 2048: its super-batch (the batch) > the pool
        change = {"results_dir": str(tmp_path), "train": {"batch_size": 2048, "micro_batch_size": 4}}
        assert 2048 > len(TokenShard(ws["shards"], "pool"))
        split, key = "pool", "train.batch_size"
    else:  # a reference on 0.4% of the curated split (6 sequences) with a batch of 8
        change = {"results_dir": str(tmp_path), "references": {"ref": {"data_fraction": 0.004}}}
        split, key = "curated", "references.ref.train.batch_size"
    with pytest.raises(PlanError) as planned:
        validate_config(deep_merge(ws["cfg"], change))
    assert key in str(planned.value)
    cfg = deep_merge(ws["cfg"], change)  # as validated before the change: the trainer must still refuse it
    if what == "learner":
        spec = RunSpec(cfg=cfg, arm="uniform", seed=0, run_dir=tmp_path / "run", shards_dir=ws["shards"],
                       tokenizer_dir=ws["tokenizer"])
    else:
        spec = reference_spec(cfg, "ref", tmp_path / "ref", ws["shards"], ws["tokenizer"])
    with pytest.raises(ValueError) as err:
        train(spec, progress=False)
    message = str(err.value)
    assert "super-batch" in message and f"larger than the {split} split" in message
    assert "train.batch_size" in message


def test_an_empty_pool_split_names_the_split_and_the_fix(tmp_path):
    from jest.data.errors import EmptySplitError
    from jest.data.prepare import prepare_corpus

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"Document number {i}. " * 20}) + "\n" for i in range(6)))
    sources = [{"kind": "jsonl", "name": "cur", "path": str(docs), "split": "curated"},
               {"kind": "jsonl", "name": "held", "path": str(docs), "split": "heldout"}]
    # the config check refuses it first, before any job (jest.config: split_token_ceilings) ...
    with pytest.raises(ConfigError) as refused:
        validate_config({"name": "x", "data": {"embedded": False, "extra_sources": sources}})
    assert "longer than the pool split can hold" in str(refused.value) and "add data to that split" in str(refused.value)
    # ... and prepare_data keeps its own guard, for a pool that the config cannot bound in advance
    # (six short documents: the runs would repeat them, which the plan check refuses unless allowed)
    cfg = validate_config({"name": "x", "data": {"embedded": False, "extra_sources": [
        *sources, {"kind": "jsonl", "name": "p", "path": str(docs), "split": "pool"}]},
        "train": {"allow_repeats": True}, "references": {"ref": {"train": {"allow_repeats": True}}}})["data"]
    cfg["extra_sources"] = [s for s in cfg["extra_sources"] if s["split"] != "pool"]
    with pytest.raises(EmptySplitError) as err:
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    assert "split 'pool' is empty" in str(err.value) and "split: pool" in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["", "short"], ids=["no-documents", "no-full-sequence"])
def test_a_split_with_no_full_sequence_stops_build_shards_with_the_fix(smoke_workspace, tmp_path, content):
    from jest.data.shards import ShardError, build_shards

    data = tmp_path / "data"
    data.mkdir()
    for split in ("curated", "heldout", "pool"):
        shutil.copy(smoke_workspace["data"] / f"{split}.jsonl", data / f"{split}.jsonl")
    doc = {"id": "h0", "text": content, "source": "brown", "quality": "clean", "corruption": "none"}
    (data / "heldout.jsonl").write_text(json.dumps(doc) + "\n" if content else "")
    with pytest.raises(ShardError) as err:
        build_shards(data, smoke_workspace["tokenizer"], tmp_path / "shards",
                     smoke_workspace["cfg"]["data"]["seq_len"])
    assert "split 'heldout' has no full sequence of 128 tokens" in str(err.value)
    fix = "holds no document; re-run the prepare_data stage" if not content else "lower 'data.seq_len'"
    assert fix in str(err.value)
    assert not (tmp_path / "shards" / "manifest.json").exists()  # no manifest: nothing downstream trusts it


# ---------------------------------------------------------------- 6. integrity (issue #18): shards, checkpoints
def _train_cli(cfg_path: Path, run_dir: Path, shards: Path, tokenizer: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jest", "train", "--config", str(cfg_path), "--arm", "uniform",
                           "--seed", "0", "--run-dir", str(run_dir), "--shards", str(shards), "--tokenizer",
                           str(tokenizer), "--threads", "1", "--no-progress"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)


def _flip_one_token(shards: Path, split: str) -> Path:
    path = shards / f"{split}.tokens.npy"
    tokens = np.load(path)
    tokens[len(tokens) // 2, 3] ^= 1  # one token, mid-file: the shape and the header stay valid
    np.save(path, tokens)
    return path


@pytest.mark.parametrize("split", ["pool", "heldout"])
def test_a_tampered_shard_stops_the_train_cli_naming_the_file_and_the_rebuild(smoke_workspace, tmp_path, split):
    ws = smoke_workspace
    shards = tmp_path / "shards"
    shutil.copytree(ws["shards"], shards)
    tampered = _flip_one_token(shards, split)
    cfg_path = tmp_path / "cfg.json"
    atomic_write_json(cfg_path, deep_merge(ws["cfg"], {"results_dir": str(tmp_path)}))
    proc = _train_cli(cfg_path, tmp_path / "run", shards, ws["tokenizer"])
    assert proc.returncode != 0
    assert "ShardError" in proc.stderr and f"shard {tampered} was changed after build_shards" in proc.stderr
    assert "--forcerun build_shards" in proc.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # stopped before the first step


def test_a_tampered_pool_stops_score_reference(smoke_workspace, scored, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(smoke_workspace["shards"], shards)
    tampered = _flip_one_token(shards, "pool")
    ref = tmp_path / "ref"
    shutil.copytree(scored["ref"] / "model", ref / "model")
    proc = subprocess.run(_score_cmd(scored["cfg_path"], ref, shards), cwd=PROJECT_ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode != 0 and f"shard {tampered} was changed after build_shards" in proc.stderr
    assert not (ref / "pool_scores.npy").exists()


def test_an_unloadable_latest_checkpoint_is_set_aside_and_the_run_resumes_from_the_previous(smoke_workspace,
                                                                                            tmp_path):
    """A real smoke training run (CLI); its newest checkpoint truncated, then (after recovery) given bad JSON:
    each re-run warns naming the checkpoint, resumes from the one before and ends with the same rows."""
    ws = smoke_workspace
    cfg_path = tmp_path / "cfg.json"
    atomic_write_json(cfg_path, deep_merge(ws["cfg"], {"results_dir": str(tmp_path), "train": {
        "steps": 30, "checkpoint_every": 10, "keep_checkpoints": 2}}))
    run = tmp_path / "run"
    proc = _train_cli(cfg_path, run, ws["shards"], ws["tokenizer"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    volatile = ("wall_time", "time")
    rows = lambda: [{k: v for k, v in r.items() if k not in volatile} for r in read_metrics(run / "metrics.jsonl")]  # noqa: E731
    uninterrupted = rows()
    assert uninterrupted[-1]["step"] == 30
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_0000020", "step_0000030"]

    damages = {"truncated safetensors": lambda c: (c / "model.safetensors").write_bytes(
                   (c / "model.safetensors").read_bytes()[:1000]),
               "bad JSON": lambda c: (c / "state.json").write_text('{"step": 30, "posit')}
    for what, damage in damages.items():
        damage(ckpts / "step_0000030")
        (run / "metrics.jsonl").unlink()  # what a kill after the last checkpoint could leave: nothing to trust
        proc = _train_cli(cfg_path, run, ws["shards"], ws["tokenizer"])
        assert proc.returncode == 0, (what, proc.stderr[-3000:])
        assert f"WARNING: checkpoint {ckpts / 'step_0000030'} does not load" in proc.stdout, (what, proc.stdout)
        card = json.loads((run / "card.json").read_text())
        assert card["resumed_from_step"] == 20, what
        assert rows() == uninterrupted, what
    aside = sorted((run / "checkpoints.unloadable").iterdir())
    assert len(aside) == 2 and all(p.name.startswith("step_0000030-") for p in aside)  # kept for inspection


def test_a_nan_stop_before_the_first_checkpoint_does_not_claim_one(smoke_workspace, tmp_path):
    from jest.training.trainer import NonFiniteLossError, RunSpec, train

    ws = smoke_workspace
    cfg = validate_config(deep_merge(ws["cfg"], {"results_dir": str(tmp_path), "train": {
        "lr": 1e12, "grad_clip": 0, "warmup_steps": 0, "checkpoint_every": 1000}}))
    with pytest.raises(NonFiniteLossError) as err:
        train(RunSpec(cfg=cfg, arm="uniform", seed=0, run_dir=tmp_path / "run", shards_dir=ws["shards"],
                      tokenizer_dir=ws["tokenizer"]), progress=False)
    assert "no checkpoint was written yet" in str(err.value) and "last good checkpoint" not in str(err.value)
    assert "Lower 'train.lr'" in str(err.value)
