"""Real training on a GPU through the CLI the DAG runs (`python -m jest train`), compared with
the same runs made on the CPU.

The benchmark (`tools.bench`) times the training step on synthetic tokens; this check runs the
whole training loop of the default config on its real data on a CUDA device: the sampler over
the real shards, the cached reference scores, JEST selection, bf16 autocast, fused AdamW,
pinned-memory copies, held-out evaluation, checkpoints and the metrics rows with MFU. Its
question is "does the GPU path train the same model?", so it compares each GPU run with the
CPU fp32 run of the same arm and seed: held-out loss at every evaluation and the final train
loss, within a tolerance (bf16 and GPU kernels change the rounding, so the trajectories
drift apart slowly; they must not diverge).

Two steps:
    python scripts/device_train_check.py pack [--config tiny]   # here, after `make reproduce`:
        copies what training reads (resolved config, shards, tokenizer, the reference models
        and their cached pool scores) and the CPU runs' metrics into .devdata/ (git-ignored)
    bash scripts/device_train_check.sh                          # on the GPU machine
        (= python scripts/device_train_check.py run --out DIR with a CUDA python)

The run writes device_train.json (per run: wall time, steps/s, final losses, the largest
held-out difference to the CPU run, MFU) and each run's metrics.jsonl (a failed run's log
instead), and prints PASS/FAIL per run. Exit status 1 when a run failed or left the tolerance.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness from this checkout, also where it is not pip-installed
from jest.tracking.records import read_metrics  # noqa: E402

DEVDATA = ROOT / ".devdata"
ARMS = ("uniform", "jest_f0.8")  # the baseline and the middle headline JEST arm
SEED = 0
# Largest allowed |GPU - CPU| held-out loss (nats) at any evaluation, and final train loss.
# On the tiny config a new seed moves the final held-out loss by up to 0.10 nats (uniform
# 5.686 / 5.790 / 5.790 over seeds 0-2); bf16 rounding on the same seed must stay well inside
# that, while a broken path (an untrained model is ~2 nats higher; a wrong mask or label shift
# costs > 0.5) falls far outside.
HELDOUT_TOL = 0.05
TRAIN_TOL = 0.15  # one batch's loss (and, for JEST, possibly another chosen batch): noisier


def pack(config_name: str) -> None:
    src = ROOT / "results" / config_name
    resolved = src / "config.resolved.json"
    if not resolved.is_file():
        sys.exit(f"{resolved} not found: run `make reproduce` (or the DAG on --configfile config/{config_name}.yaml) first")
    cfg = json.loads(resolved.read_text())
    if DEVDATA.exists():
        shutil.rmtree(DEVDATA)
    (DEVDATA / "cpu").mkdir(parents=True)
    shutil.copy2(resolved, DEVDATA / "config.resolved.json")
    shutil.copytree(src / "shards", DEVDATA / "shards")
    shutil.copytree(src / "tokenizer", DEVDATA / "tokenizer")
    for ref in sorted({cfg["arms"][a].get("reference") for a in ARMS} - {None}):
        dst = DEVDATA / "references" / ref
        shutil.copytree(src / "references" / ref / "model", dst / "model")
        for name in ("card.json", "pool_scores.npy", "pool_scores.json"):
            shutil.copy2(src / "references" / ref / name, dst / name)
    for arm in ARMS:
        shutil.copy2(src / "runs" / f"{arm}_s{SEED}" / "metrics.jsonl", DEVDATA / "cpu" / f"{arm}_s{SEED}.metrics.jsonl")
    exclude = ROOT / ".git" / "info" / "exclude"
    if exclude.parent.is_dir() and "/.devdata/" not in exclude.read_text().split():
        with exclude.open("a") as fh:
            fh.write("/.devdata/\n")
    size = sum(p.stat().st_size for p in DEVDATA.rglob("*") if p.is_file())
    print(f"packed {DEVDATA} ({size / 2**20:.1f} MiB) from {src}; carry it with: carry [\".whl\", \".devdata\"]")


def compare(gpu_rows: list[dict], cpu_rows: list[dict]) -> dict:
    """Held-out and train-loss agreement of one GPU run with its CPU twin (pure; tested)."""
    cpu_heldout = {r["step"]: r["heldout_loss"] for r in cpu_rows if "heldout_loss" in r}
    gpu_heldout = {r["step"]: r["heldout_loss"] for r in gpu_rows if "heldout_loss" in r}
    shared = sorted(set(cpu_heldout) & set(gpu_heldout))
    if not shared or gpu_rows[-1]["step"] != cpu_rows[-1]["step"]:
        return {"ok": False, "why": f"steps differ: GPU {gpu_rows[-1]['step']} vs CPU {cpu_rows[-1]['step']}, "
                                    f"{len(shared)} shared evaluations"}
    diffs = [abs(gpu_heldout[s] - cpu_heldout[s]) for s in shared]
    worst = max(range(len(shared)), key=diffs.__getitem__)
    train_diff = abs(gpu_rows[-1]["train_loss"] - cpu_rows[-1]["train_loss"])
    ok = diffs[worst] <= HELDOUT_TOL and train_diff <= TRAIN_TOL
    mfu = [r["mfu"] for r in gpu_rows if r.get("mfu") is not None]
    return {"ok": ok, "evaluations": len(shared),
            "heldout_final": {"device": gpu_heldout[shared[-1]], "cpu": cpu_heldout[shared[-1]]},
            "heldout_max_abs_diff": diffs[worst], "heldout_max_diff_step": shared[worst],
            "train_loss_final": {"device": gpu_rows[-1]["train_loss"], "cpu": cpu_rows[-1]["train_loss"]},
            "train_loss_final_abs_diff": train_diff,
            "mfu_median": sorted(mfu)[len(mfu) // 2] if mfu else None,
            "tolerance": {"heldout": HELDOUT_TOL, "train_loss": TRAIN_TOL}}


def run(out: Path, device: str, precision: str, compile_arm: str | None, work: Path) -> int:
    cfg = json.loads((DEVDATA / "config.resolved.json").read_text())
    cfg.update(device=device, results_dir=str(work))
    cfg["train"]["precision"] = precision
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    variants = [(arm, False) for arm in ARMS] + ([(compile_arm, True)] if compile_arm else [])
    report: dict = {"device": device, "precision": precision, "runs": {}}
    status = 0
    for arm, compiled in variants:
        cfg["train"]["compile"] = compiled
        cfg_path = work / f"config.{'compile' if compiled else 'eager'}.json"
        cfg_path.write_text(json.dumps(cfg, indent=1))
        name = f"{arm}{'_compile' if compiled else ''}"
        run_dir = work / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [sys.executable, "-m", "jest", "train", "--config", str(cfg_path), "--arm", arm, "--seed", str(SEED),
               "--run-dir", str(run_dir), "--shards", str(DEVDATA / "shards"),
               "--tokenizer", str(DEVDATA / "tokenizer"), "--references", str(DEVDATA / "references"),
               "--threads", "4", "--no-progress"]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
            print(f"   FAILED (status {proc.returncode}); the end of its log:\n{(proc.stdout + proc.stderr)[-3000:]}")
            report["runs"][name] = {"ok": False, "returncode": proc.returncode, "wall_s": wall}
            status = 1
            continue
        rows = read_metrics(run_dir / "metrics.jsonl")
        shutil.copy2(run_dir / "metrics.jsonl", out / f"{name}.metrics.jsonl")
        result = compare(rows, read_metrics(DEVDATA / "cpu" / f"{arm}_s{SEED}.metrics.jsonl"))
        card = json.loads((run_dir / "card.json").read_text())
        result.update(wall_s=round(wall, 1), train_wall_s=rows[-1]["wall_time"],
                      steps_per_s=round(rows[-1]["step"] / rows[-1]["wall_time"], 2),
                      mlflow_synced=card.get("mlflow_synced"))
        report["runs"][name] = result
        status |= 0 if result["ok"] else 1
        verdict = "PASS" if result["ok"] else "FAIL"
        if "heldout_final" in result:
            print(f"   {verdict}  held-out loss at step {rows[-1]['step']}: {device} {result['heldout_final']['device']:.4f} "
                  f"vs CPU {result['heldout_final']['cpu']:.4f}; largest difference {result['heldout_max_abs_diff']:.4f} "
                  f"at step {result['heldout_max_diff_step']} (tolerance {HELDOUT_TOL}); final train loss "
                  f"{result['train_loss_final']['device']:.4f} vs {result['train_loss_final']['cpu']:.4f}; "
                  f"{result['steps_per_s']} steps/s ({wall:.0f} s with start-up); median MFU {result['mfu_median']}")
        else:
            print(f"   {verdict}  {result['why']}")
    (out / "device_train.json").write_text(json.dumps(report, indent=1))
    return status


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="copy what the GPU runs read into .devdata/")
    pk.add_argument("--config", default="tiny", help="the results/<name>/ folder of a finished DAG run")
    rn = sub.add_parser("run", help="train on the device and compare with the CPU runs")
    rn.add_argument("--out", type=Path, default=ROOT / "results" / "device_check")
    rn.add_argument("--device", default="cuda")
    rn.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    rn.add_argument("--compile-arm", default="uniform", help="also run this arm with train.compile (empty: skip)")
    rn.add_argument("--work", type=Path, default=Path("/tmp/jest_device_train"))
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.config)
    else:
        sys.exit(run(args.out, args.device, args.precision, args.compile_arm or None, args.work))


if __name__ == "__main__":
    main()
