"""Issues #17 / #18 on the real Snakemake DAG: the profile found by default (Ctrl-C and a re-run of
the README's own command resume), a config snapshot no other invocation can change, recovery after
SIGKILL of the whole Snakemake process, bring-your-own files tracked, checks before any job.

The interrupted run is the one real DAG run of the default suite; the uninterrupted run it is
compared with is conftest.py's `smoke_dag`, which the slow end-to-end test shares."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from checkout_copy import copy_tracked_files
from jest.config import PROJECT_ROOT, config_hash, deep_merge
from jest.experiment import load_config
from jest.io import sha256_file
from jest.tracking.records import read_metrics

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CACHE = PROJECT_ROOT / "results" / "cache"
README_COMMAND = [*SNAKEMAKE, "--cores", "2", "--configfile", "config/smoke.yaml"]  # the README's, verbatim
ARMS = ("uniform_s0", "jest_f0.5_s0")
VOLATILE = re.compile(r"time|wall|second|duration|mfu|tok_s|tokens_per_s|throughput|path|dir|run_id|uri|commit|host")


def _checkout_copy(root: Path) -> dict:
    """The tracked files (as they are in the working tree) under `root`, the download cache linked in;
    the environment imports the copy's jest."""
    copy_tracked_files(root)
    (root / "results").mkdir()
    CACHE.mkdir(parents=True, exist_ok=True)
    (root / "results" / "cache").symlink_to(CACHE, target_is_directory=True)
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(root)}


def _terminal_signals() -> None:
    """In the child before exec: SIGINT and SIGQUIT as a terminal's foreground job has them. A pytest
    started in the background of a non-interactive shell (`nohup pytest ... &`) ignores both, the
    ignore is inherited, and Python then never raises KeyboardInterrupt: the Ctrl-C of step 3 would
    do nothing and the test would fail for a reason outside the code under test (seen)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("wall_time", "time")} for r in read_metrics(run / "metrics.jsonl")]


def _finished(run: Path) -> bool:
    """The run's card says finished (a card of an interrupted run says failed)."""
    try:
        return json.loads((run / "card.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError):
        return False


def _stable(obj):
    """A summary without what legitimately differs between two runs of the same DAG (timings, paths)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if not VOLATILE.search(str(k))}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


@pytest.fixture
def started():
    """Snakemake runs started in their own process group; any still running at the end is killed
    (a failed assertion must not leave a run holding the CPU)."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_readme_command_interrupted_raced_killed_and_rerun_gives_identical_results(tmp_path, smoke_dag, started):
    root = tmp_path / "checkout"
    env = _checkout_copy(root)
    results = root / "results" / "smoke"
    run = lambda *cmd, **kw: subprocess.run(list(cmd), cwd=root, env=env, capture_output=True, text=True,  # noqa: E731
                                            check=False, **kw)

    # 1. the README's command, in its own process group as a terminal would start it
    logs = tmp_path / "first.log", tmp_path / "second.log"  # files, not pipes: nobody reads a pipe mid-run
    first = subprocess.Popen(README_COMMAND, cwd=root, env=env, stdout=logs[0].open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_terminal_signals)
    started.append(first)
    snapshots = lambda: sorted(p for p in results.glob("config.*.json")  # noqa: E731
                               if re.fullmatch(r"config\.[0-9a-f]{12}\.json", p.name)) if results.is_dir() else []
    _wait_for(lambda: any((root / ".snakemake" / "locks").glob("*")) and snapshots(), first, "the run's lock")
    (snapshot,) = snapshots()
    frozen = snapshot.read_bytes()

    # 2. the race of issue #18: while it runs, a dry run and a run the lock refuses, with another config
    other = ["--config", "data={vocab_size: 700}", "train={lr: 0.01}"]
    dry = run(*README_COMMAND, "-n", *other)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    refused = run(*README_COMMAND, *other)
    assert refused.returncode != 0 and "LockException" in refused.stdout + refused.stderr
    assert snapshot.read_bytes() == frozen  # the running DAG's snapshot is never rewritten
    assert len(snapshots()) == 2  # the other config got its own file

    # 3. Ctrl-C (SIGINT to the process group) once a training job has written a checkpoint
    ckpts = [results / "runs" / arm / "checkpoints" for arm in ARMS]
    _wait_for(lambda: any(any(c.glob("step_*")) for c in ckpts if c.is_dir()), first, "a training checkpoint")
    os.killpg(first.pid, signal.SIGINT)
    first.wait(timeout=300)
    assert first.returncode != 0, logs[0].read_text()[-3000:]
    interrupted = [arm for arm in ARMS if not _finished(results / "runs" / arm)]
    assert interrupted, "no training run was cut short: the test proves nothing"

    # 4. the same command again: it resumes (the profile's rerun-incomplete), then SIGKILL of the whole
    # Snakemake process group (a power loss) once a training run has finished
    second = subprocess.Popen(README_COMMAND, cwd=root, env=env, stdout=logs[1].open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    started.append(second)
    _wait_for(lambda: any(_finished(results / "runs" / arm) for arm in interrupted), second,
              "a resumed training run to finish")
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=120)
    # the README's recovery: the same command says the directory is locked; --unlock, then the same command
    locked = run(*README_COMMAND)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    unlock = run(*README_COMMAND, "--unlock")
    assert unlock.returncode == 0, unlock.stdout[-3000:] + unlock.stderr[-3000:]
    final = run(*README_COMMAND)
    assert final.returncode == 0, final.stdout[-4000:] + final.stderr[-4000:]
    assert "Using workflow specific profile profiles/default" in final.stderr + final.stdout

    # 5. identical to the uninterrupted run, and never touched by the other config
    assert snapshot.read_bytes() == frozen
    reference = smoke_dag / "smoke"
    for arm in ARMS:
        assert _rows(results / "runs" / arm) == _rows(reference / "runs" / arm), arm
    # The cut runs resumed from their checkpoints (step >= 10) in the second command. One that then
    # finished before the SIGKILL left Snakemake no record of it: the final command re-ran it, and a
    # finished run whose outputs Snakemake deleted trains afresh (as --forcerun asks; jest/training/checkpoint.py),
    # to the same rows. Every attempt's output is in the job's .attempts log.
    attempts = "".join((results / "logs" / "train" / f"{arm}.log.attempts").read_text() for arm in interrupted)
    resumed = [int(step) for step in re.findall(r"resuming at step (\d+)", attempts)]
    assert any(step >= 10 for step in resumed), attempts[-3000:]
    vocab = json.loads((results / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(vocab) <= 512  # built from the snapshot (vocab_size 512), not the dry run's 700
    assert (results / "tokenizer" / "tokenizer.json").read_bytes() == \
        (reference / "tokenizer" / "tokenizer.json").read_bytes()
    summary, ref_summary = (json.loads((r / "report" / "summary.json").read_text()) for r in (results, reference))
    for key in ("baseline", "headline", "parity", "claims"):
        assert _stable(summary[key]) == _stable(ref_summary[key]), key
    assert json.loads((results / "config.resolved.json").read_text())["data"]["vocab_size"] == 512


# ---------------------------------------------------------------- checks before any job, through Snakemake
def _config_file(tmp_path: Path, **overrides) -> Path:
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     {"results_dir": str(tmp_path / "results"), "cache_dir": str(CACHE), **overrides})
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    # targets and flags first: --configfile and --config take every word that follows them
    return subprocess.run([*SNAKEMAKE, *extra, "--cores", "2", "--configfile", str(config)], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, check=False)


def test_nested_config_overrides_are_converted_or_refused_with_the_fix(tmp_path):
    config = _config_file(tmp_path)
    ok = _snakemake(config, "-n", "--config", "train={steps: 10, warmup_steps: 2}", "seeds=[0]")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    want = deep_merge(load_config(config), {"train": {"steps": 10, "warmup_steps": 2}, "seeds": [0]})
    snapshot = tmp_path / "results" / "smoke" / f"config.{config_hash(want)}.json"
    assert json.loads(snapshot.read_text())["train"]["steps"] == 10  # what the jobs would read
    bad = _snakemake(config, "-n", "--config", "train={steps: ten}")
    said = bad.stdout + bad.stderr  # Snakemake 9 prints a workflow error on stdout
    assert bad.returncode != 0
    assert "'train.steps' = 'ten' has the wrong type" in said and "--configfile FILE" in said


def test_an_impossible_seq_len_is_refused_by_the_dry_run(tmp_path):
    proc = _snakemake(_config_file(tmp_path, data={"seq_len": 500_000}), "-n")
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "'data.seq_len' = 500000 is longer than the" in said and "lower 'data.seq_len'" in said


def test_an_edited_bring_your_own_file_reruns_prepare_data_and_what_follows(tmp_path):
    """Bring-your-own jsonl files only (no download): the data stage and the tokenizer, for real; then
    one file edited: the dry run lists prepare_data and the tokenizer again (it said nothing to do before)."""
    files = {}
    for split, n in (("curated", 40), ("heldout", 12), ("pool", 40)):
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps({"text": f"{split} document {i}: " + "words and more words. " * 30})
                                        + "\n" for i in range(n)))
    # Too little text for the smoke runs to train without repeats (jest/planning.py refuses that when the
    # config is read); this test only builds the data and the tokenizer, so repeats are allowed.
    config = _config_file(tmp_path, data={"embedded": False, "vocab_size": 300, "extra_sources": [
        {"kind": "jsonl", "name": f"byo_{s}", "path": str(p), "split": s} for s, p in files.items()]},
        train={"allow_repeats": True})
    tokenizer = tmp_path / "results" / "smoke" / "tokenizer" / "tokenizer.json"
    built = _snakemake(config, str(tokenizer))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    manifest = json.loads((tmp_path / "results" / "smoke" / "data" / "manifest.json").read_text())
    assert {e["path"]: e["sha256"] for e in manifest["input_files"]} == \
        {str(p): sha256_file(p) for p in files.values()}
    quiet = _snakemake(config, "-n", str(tokenizer))
    assert quiet.returncode == 0 and "Nothing to be done" in quiet.stdout + quiet.stderr

    # An edit whose mtime goes back (as `cp -p`, `rsync -a`, `tar x` leave it): found by content (issue #30)
    before = files["pool"].stat()
    files["pool"].write_text(files["pool"].read_text().replace("pool document 3:", "pool document 9:"))
    os.utime(files["pool"], ns=(before.st_atime_ns, before.st_mtime_ns))
    assert files["pool"].stat().st_mtime_ns == before.st_mtime_ns
    back = _snakemake(config, "-n", str(tokenizer))
    listed = back.stdout + back.stderr
    assert back.returncode == 0 and "rule prepare_data:" in listed, listed[-3000:]
    assert re.search(r"[Pp]arams have changed since last execution", listed), listed[-3000:]

    with open(files["pool"], "a") as f:
        f.write(json.dumps({"text": "one more document, added after the run"}) + "\n")
    again = _snakemake(config, "-n", str(tokenizer))
    assert again.returncode == 0, again.stderr[-3000:]
    listed = again.stdout + again.stderr
    assert re.search(r"rule prepare_data:", listed) and re.search(r"rule train_tokenizer:", listed), listed[-3000:]
    assert re.search(r"reason: Updated input files: .*pool\.jsonl", listed), listed[-3000:]
