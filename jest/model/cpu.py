"""What the CPU is and which of its units a precision needs, read from /proc/cpuinfo (no torch: config
checks at planning time use it)."""
from __future__ import annotations


def _cpuinfo() -> tuple[set[str], float | None, str]:
    """(ISA flags, clock in Hz, model name) of the first core in /proc/cpuinfo."""
    flags, mhz, name = set(), None, "unknown CPU"
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return flags, mhz, name
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "cpu MHz" and mhz is None:
            mhz = float(value)
        elif key == "model name" and name == "unknown CPU":
            name = value.strip()
    return flags, (mhz * 1e6 if mhz else None), name



# CPU instructions that run bf16 matmuls natively (oneDNN uses them): AMX tiles (Intel Sapphire Rapids and
# later) and AVX512-BF16 dot products (Intel Cooper Lake+, AMD Zen 4+). Without either, bf16 is emulated
# in fp32 instructions with conversions around them: slower than fp32, so refused.
BF16_UNITS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_units(flags: set[str] | None = None) -> dict:
    """{"model": ..., "amx_bf16": bool, "avx512_bf16": bool, "bf16": bool} from /proc/cpuinfo (or `flags`):
    recorded in every run card, and what `train.precision: bf16` on a CPU requires."""
    info_flags, _, name = _cpuinfo()
    flags = info_flags if flags is None else flags
    units = {unit: unit in flags for unit in BF16_UNITS}
    return {"model": name, **units, "bf16": any(units.values())}


def check_cpu_precision(precision: str, key: str = "train.precision", flags: set[str] | None = None) -> None:
    """Refuse bf16 on a CPU without bf16 units, naming the instructions it lacks and the fix."""
    if precision != "bf16":
        return
    units = cpu_bf16_units(flags)
    if not units["bf16"]:
        raise ValueError(f"'{key}' = 'bf16' on the CPU needs bf16 matmul units, and this CPU ({units['model']}) has "
                         f"none of {list(BF16_UNITS)} (AMX or AVX512-BF16, in /proc/cpuinfo's flags): bf16 would "
                         "be emulated, slower than fp32. Use 'fp32' here, or run on a CPU with those units or a GPU")
