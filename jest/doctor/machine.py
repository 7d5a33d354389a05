"""The doctor's machine checks: CUDA and its device count, GPU memory, bf16, free disk, versions.

torch is imported only when the config asks for a GPU (or `device: auto`): a CPU config's checks
run at every Snakemake start and must stay fast. Nothing here builds a model: sizes come from the
config's shape (jest.ladder.rungs.rung_shape, the shape jest.model.llama builds).
"""
from __future__ import annotations

import re
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jest.config import PROJECT_ROOT, results_root
from jest.doctor.findings import Finding, shown as _rel

GB = 1e9
# fp32 weights (4 B) + gradients (4 B) + AdamW's two moments (8 B) per parameter: the floor of a training
# job's GPU memory (bf16 autocast keeps all four fp32: config schema, train.precision). Activations come on
# top and are not estimated here; tools/bench.py measures the peak of a real step.
TRAIN_BYTES_PER_PARAM = 16
# On disk per run: train.keep_checkpoints checkpoints of the same 16 B/param and evaluation.checkpoints
# lm-eval snapshots of fp32 weights (4 B/param); config/cluster.yaml's header: "two 15 GB checkpoints +
# 6 snapshots". Rough, as the config headers say of their own figures; so the disk check stops a run
# (MISSING) only when the free space is under half of it, and warns below the whole.
SNAPSHOT_BYTES_PER_PARAM = 4
# Data on disk, rough figures with their sources (not measurements of this machine):
#   default preset: the npm packs (38 MB cached) and the splits and shards of a ~2.4M-token pool: < 0.1 GB;
#   large preset: ~240M characters of text and ~108M tokens of shards (README, "large preset"), the .debs: ~2 GB;
#   parquet sources: 4x the parquet files (config/gpu.yaml: ~15 GB of parquet -> ~60 GB with the Arrow
#   cache, the text splits and the token shards), or, before they are downloaded, 4 KB of text per
#   document (max_docs; ~1,000 GPT-2 tokens of FineWeb-Edu) times the same 4.
DATA_GB = {"default": 0.1, "large": 2.0}
BYTES_PER_DOC, DISK_PER_SOURCE_BYTE = 4000, 4
LOCK = PROJECT_ROOT / "requirements.lock"
CHECKED_PACKAGES = ("torch", "transformers", "datasets", "lm_eval", "snakemake", "mlflow")


def _wants_gpu(cfg: dict) -> bool:
    return cfg["device"] in ("cuda", "auto")


def _precisions(cfg: dict) -> set[str]:
    found = {cfg["train"].get("precision", "fp32")}
    found |= {ref.get("train", {}).get("precision", "fp32") for ref in cfg.get("references", {}).values()}
    return found


def _params(model: dict, vocab_size: int) -> int:
    """Parameters of the learner (matmul parameters, plus the input embedding when it is not tied)."""
    from jest.ladder.rungs import rung_shape
    from jest.model.flops import matmul_params
    shape = rung_shape(model, vocab_size)
    return matmul_params(shape) + (0 if model.get("tie_embeddings", True) else vocab_size * model["n_embd"])


def cuda_findings(cfg: dict) -> list[Finding]:
    """CUDA visible, enough devices for train.nproc_per_node, and GPU memory against the training floor."""
    device, nproc = cfg["device"], int(cfg["train"].get("nproc_per_node", 1))
    if not _wants_gpu(cfg):
        return [Finding("cuda", "OK", f"not needed (device: {device})")]
    import torch
    params = _params(cfg["model"], cfg["data"]["vocab_size"])
    floor = params * TRAIN_BYTES_PER_PARAM
    floor_text = (f"{floor / GB:.1f} GB ({params / 1e6:,.0f}M params x {TRAIN_BYTES_PER_PARAM} B: fp32 weights, "
                  "grads, AdamW) + activations (no estimate)")
    if not torch.cuda.is_available():
        build = "the CPU build: a GPU machine needs the CUDA one" if torch.version.cuda is None \
            else f"built for CUDA {torch.version.cuda}: check the driver and CUDA_VISIBLE_DEVICES"
        status = "MISSING" if device == "cuda" else "WARN"
        what = "" if device == "cuda" else " (device auto: the run falls back to the CPU)"
        # on a GPU machine with the CPU wheel (requirements.lock takes it), the CUDA wheel of the same release
        fix = [f"pip install torch=={torch.__version__.split('+')[0]} --index-url "
               "https://download.pytorch.org/whl/cu128"] if torch.version.cuda is None else []
        return [Finding("cuda", status, f"device {device}, nproc_per_node {nproc}: no CUDA GPU visible{what} "
                        f"(torch {torch.__version__}, {build})", fix),
                Finding("gpu memory", "WARN", f"no GPU to measure; training needs {floor_text}; on the GPU, "
                        "measure the peak with:", ["python -m tools.bench --device cuda --precision bf16"])]
    count = torch.cuda.device_count()
    out = []
    if count < nproc:
        out.append(Finding("cuda", "MISSING", f"{count} CUDA device(s) visible, train.nproc_per_node asks for "
                           f"{nproc}", [f"set train.nproc_per_node: {count} (it must divide train.batch_size)"]))
    else:
        out.append(Finding("cuda", "OK", f"{count} device(s) ({torch.cuda.get_device_name(0)}), "
                           f"nproc_per_node {nproc}, CUDA {torch.version.cuda}"))
    free, total = torch.cuda.mem_get_info(0)
    status = "MISSING" if floor > total else "WARN" if floor > free else "OK"
    out.append(Finding("gpu memory", status, f"{free / GB:.1f} of {total / GB:.1f} GB free on device 0; training "
                       f"needs {floor_text}",
                       ["lower model size or train.micro_batch_size"] if status != "OK" else []))
    return out


def bf16_findings(cfg: dict) -> list[Finding]:
    """bf16 where the config asks for it: the CPU's bf16 units (jest.model.cpu) or the GPU's support."""
    if "bf16" not in _precisions(cfg):
        return [Finding("bf16", "OK", "not asked for (precision fp32)")]
    if _wants_gpu(cfg):
        import torch
        if torch.cuda.is_available():
            ok = torch.cuda.is_bf16_supported()
            return [Finding("bf16", "OK" if ok else "MISSING", f"{torch.cuda.get_device_name(0)} "
                            f"{'supports' if ok else 'does not support'} bf16",
                            [] if ok else ["set train.precision: fp32 (and in references)"])]
        if cfg["device"] == "cuda":
            return [Finding("bf16", "WARN", "asked for; no GPU here to ask (NVIDIA: Ampere or later has it)")]
    from jest.model.cpu import cpu_bf16_units
    units = cpu_bf16_units()
    if units["bf16"]:
        have = [u for u in ("amx_bf16", "avx512_bf16") if units[u]]
        return [Finding("bf16", "OK", f"on the CPU ({units['model']}): {', '.join(have)}")]
    return [Finding("bf16", "MISSING", f"asked for on the CPU; {units['model']} has no amx_bf16 or avx512_bf16, "
                    "and training refuses emulated bf16:",
                    ["set train.precision: fp32 (and in references)"])]


def data_bytes(cfg: dict) -> tuple[float, str]:
    """Rough bytes of the corpus on disk (sources, caches, splits, shards) and how it was reckoned."""
    data = cfg["data"]
    preset = "large" if data.get("preset") == "large" else "default" if data.get("embedded", True) else None
    total = DATA_GB[preset] * GB if preset else 0.0
    for source in data.get("extra_sources", []):
        files = source.get("data_files") or ([source["path"]] if source.get("kind") == "jsonl" else [])
        files = [files] if isinstance(files, str) else files
        paths = [p if p.is_absolute() else PROJECT_ROOT / p for p in map(Path, files)]
        if paths and all(p.is_file() for p in paths):
            total += DISK_PER_SOURCE_BYTE * sum(p.stat().st_size for p in paths)
        elif source.get("max_docs"):
            total += DISK_PER_SOURCE_BYTE * BYTES_PER_DOC * source["max_docs"]
    return total, "rough figures, jest/doctor/machine.py"


def run_bytes(cfg: dict) -> float:
    """Rough bytes of the run folders: checkpoints and lm-eval snapshots of every arm x seed, references."""
    vocab, keep = cfg["data"]["vocab_size"], cfg["train"].get("keep_checkpoints", 2)
    per_param = keep * TRAIN_BYTES_PER_PARAM + cfg["evaluation"].get("checkpoints", 6) * SNAPSHOT_BYTES_PER_PARAM
    refs = sum(_params(ref.get("model", cfg["model"]), vocab) * keep * TRAIN_BYTES_PER_PARAM
               for ref in cfg.get("references", {}).values())
    # every arm, ablations included (`snakemake all`): the default target needs less
    return _params(cfg["model"], vocab) * per_param * len(cfg["arms"]) * len(cfg["seeds"]) + refs


def disk_findings(cfg: dict) -> list[Finding]:
    """Free space where results/ lives against the rough size of the corpus and the runs."""
    root = results_root(cfg)
    probe = next(p for p in (root, *root.parents) if p.exists())
    free = shutil.disk_usage(probe).free
    data, how = data_bytes(cfg)
    runs = run_bytes(cfg)
    need = data + runs
    status = "OK" if free >= need else "WARN" if free >= need / 2 else "MISSING"
    return [Finding("disk", status, f"{free / GB:,.1f} GB free at {_rel(probe)}; needs ~{need / GB:,.1f} GB "
                    f"(data ~{data / GB:,.1f} + runs ~{runs / GB:,.1f}; {how})",
                    [] if status == "OK" else ["free space there, or set results_dir (and cache_dir) elsewhere"])]


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """name -> version of every `name==version` line of requirements.lock (names normalised to _)."""
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, sep, ver = line.split("#")[0].strip().partition("==")
        if sep:
            out[re.sub(r"[-.]", "_", name.lower())] = ver.strip()
    return out


def version_findings(lock: Path = LOCK) -> list[Finding]:
    """Python and the main packages against requirements.lock (made with Python 3.11, its header says)."""
    if not lock.is_file():
        return [Finding("versions", "WARN", f"no {lock} to compare with")]
    text = lock.read_text(encoding="utf-8")
    m = re.search(r"Python (\d+\.\d+)", text)
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = []
    if m and m.group(1) != have:
        out.append(Finding("python", "WARN", f"Python {have}; requirements.lock was made with Python {m.group(1)}"))
    else:
        out.append(Finding("python", "OK", f"Python {sys.version.split()[0]}"))
    pins = locked_versions(lock)
    off = []
    for name in CHECKED_PACKAGES:
        try:
            got = version(name)
        except PackageNotFoundError:
            got = None
        want = pins.get(name)
        # a local tag (+cpu, +cu128) is the build of the same release: torch's CUDA wheels differ only there
        if want and (got is None or got.split("+")[0] != want.split("+")[0]):
            off.append(f"{name} {got or 'not installed'} (lock {want})")
    out.append(Finding("packages", "WARN" if off else "OK",
                       ("differ from requirements.lock: " + ", ".join(off)) if off
                       else f"{', '.join(CHECKED_PACKAGES)} as in requirements.lock",
                       ["pip install -r requirements.lock"] if off else []))
    return out
