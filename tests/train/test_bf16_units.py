"""bf16 on a CPU needs bf16 units (AMX or AVX512-BF16); a CPU without them is refused, naming them."""
from __future__ import annotations

import pytest

from jest.config import ConfigError
from jest.experiment import validate_config
from jest.model import cpu


def test_a_cpu_without_bf16_units_is_refused_naming_the_instructions():
    with pytest.raises(ValueError, match=r"'train.precision' = 'bf16' on the CPU needs bf16 matmul units.*"
                                         r"\['amx_bf16', 'avx512_bf16'\]"):
        cpu.check_cpu_precision("bf16", flags={"avx2", "fma", "avx512f"})
    cpu.check_cpu_precision("bf16", flags={"avx512f", "avx512_bf16"})   # Zen 4 / Cooper Lake: accepted
    cpu.check_cpu_precision("bf16", flags={"amx_bf16", "amx_tile"})      # Sapphire Rapids: accepted
    cpu.check_cpu_precision("fp32", flags=set())                          # fp32 needs nothing


def test_the_plan_refuses_bf16_on_device_cpu_when_the_machine_lacks_the_units(monkeypatch):
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ({"avx2", "fma"}, 2.4e9, "Old CPU"))
    with pytest.raises(ConfigError, match=r"'references.ref.train.precision' = 'bf16'.*Old CPU"):
        validate_config({"name": "x", "device": "cpu",
                         "references": {"ref": {"train": {"steps": 300, "batch_size": 16, "precision": "bf16"}}}})
    validate_config({"name": "x", "device": "auto", "train": {"precision": "bf16"}})  # checked where it runs
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ({"avx512_bf16"}, 2.4e9, "New CPU"))
    validate_config({"name": "x", "device": "cpu", "train": {"precision": "bf16"}})


def test_run_cards_record_the_cpu_bf16_units():
    from jest.tracking.records import machine_info
    info = machine_info()
    assert set(info["cpu_bf16_units"]) <= {"amx_bf16", "avx512_bf16"} and info["cpu_model"]
