"""What a config will cost, before any run: tokens and analytic FLOPs per run, per arm and for the DAG.

    python -m analysis.costs config/gpu.yaml [--pool-tokens 2.7e9] [--gpu "H100 SXM"] [--mfu 0.4]

The numbers come from the same code the runs log their FLOP ledger with: the model shape
jest.model.llama builds (Llama-style, SwiGLU width from jest.model.llama.intermediate_size) and the
per-token formulas of jest.model.flops (training 6N + 12 L d T, forward 2N + 4 L d T; N counts every
matmul parameter, the output projection included). Per run of an arm:

    train        steps x b x T x train_flops_per_token(learner, T)
    score        steps x B x T' x forward_flops_per_token(learner, T')     (JEST arms; B = b / (1 - f),
                 T' = the scored prefix) + steps x B x T x forward(reference, T) when scoring is online
    train+score  train + score
and once per reference: its training (same formula on its own shape and steps) and, when an arm
uses cached scores, one forward pass over the pool (pool tokens x forward(reference, T)), which
enter the `total` accounting of the JEST arms.

Wall time is an ESTIMATE, not a measurement: FLOPs / (GPUs x the chip's peak dense FLOP/s at the
config's precision, from jest.model.hardware's datasheet table, x an assumed model FLOPs utilisation).
Evaluation (held-out loss, lm-eval) and data preparation are not counted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jest.experiment import load_config

from jest.policies.registry import ScoringShapes, get_spec
from jest.model.flops import forward_flops_per_token, matmul_params, train_flops_per_token
from jest.model.llama import build_hf_config, shape_summary

DEFAULT_GPU = "H100 SXM"   # the datasheet entry of jest.model.hardware used for estimates
DEFAULT_MFU = 0.40         # an assumption: dense bf16 training of 0.1-1B models typically reaches 30-50%


def shape(model_cfg: dict, vocab_size: int, seq_len: int) -> dict:
    """The shape the runs build (jest.model.llama), as jest.model.flops reads it."""
    return shape_summary(build_hf_config(model_cfg, vocab_size, seq_len, bos_token_id=0, eos_token_id=1))


def model_costs(model_cfg: dict, train_cfg: dict, vocab: int, T: int) -> dict:
    s = shape(model_cfg, vocab, T)
    tokens = train_cfg["steps"] * train_cfg["batch_size"] * T
    return {"shape": s, "n_matmul": matmul_params(s), "train_fpt": train_flops_per_token(s, T),
            "forward_fpt": forward_flops_per_token(s, T), "steps": train_cfg["steps"],
            "batch_size": train_cfg["batch_size"], "tokens": tokens,
            "train_flops": tokens * train_flops_per_token(s, T)}


def arm_costs(cfg: dict, arm: str, learner: dict | None = None) -> dict:
    """FLOPs of one run of `arm`: train, score and train+score (the logged accountings but `total`)."""
    T, V = cfg["data"]["seq_len"], cfg["data"]["vocab_size"]
    learner = learner or model_costs(cfg["model"], cfg["train"], V, T)
    a = cfg["arms"][arm]
    budget = a.get("budget", 1.0)  # the uniform compute family: round(budget x steps) steps (jest/training/schedule.py)
    steps = max(1, round(budget * learner["steps"]))
    spec = get_spec(a["policy"])  # its super-batch, scoring FLOPs and reference (jest/policies/registry.py)
    ref = cfg["references"][a["reference"]] if spec.reads_reference(a) else None
    shapes = ScoringShapes(learner["batch_size"], T, lambda n: forward_flops_per_token(learner["shape"], n),
                           (lambda n: forward_flops_per_token(shape(ref["model"], V, T), n)) if ref else None)
    out = {"arm": arm, "policy": a["policy"], "budget": budget, "filter_ratio": a.get("filter_ratio", 0.0),
           "super_batch": spec.super_batch(a, learner["batch_size"]),
           "train": learner["train_flops"] * steps / learner["steps"], "score": steps * spec.score_flops(a, shapes)}
    if ref is not None:  # its one-time costs (training, pool scoring) are the reference's, below
        out["reference"] = a["reference"]
    out["train+score"] = out["train"] + out["score"]
    return out


def config_costs(cfg: dict, pool_tokens: float | None = None, arms: list[str] | None = None) -> dict:
    """Per-run costs of every arm in `arms` (default: all), the references they use and the DAG total."""
    T, V = cfg["data"]["seq_len"], cfg["data"]["vocab_size"]
    learner = model_costs(cfg["model"], cfg["train"], V, T)
    arms = list(cfg["arms"]) if arms is None else arms
    per_arm = {a: arm_costs(cfg, a, learner) for a in arms}
    refs = {}
    for name in sorted({c["reference"] for c in per_arm.values() if "reference" in c}):
        ref_cfg = cfg["references"][name]
        r = model_costs(ref_cfg["model"], ref_cfg["train"], V, T)
        cached = any(cfg["arms"][a].get("reference") == name and get_spec(cfg["arms"][a]["policy"]).reads_reference(
            cfg["arms"][a]) == "scores" for a in arms)
        r["pool_scoring"] = (pool_tokens * r["forward_fpt"]) if (cached and pool_tokens) else None
        refs[name] = r
    one_time = sum(r["train_flops"] + (r["pool_scoring"] or 0.0) for r in refs.values())
    n_seeds = len(cfg["seeds"])
    return {"learner": learner, "arms": per_arm, "references": refs, "seeds": n_seeds,
            "runs_flops": n_seeds * sum(c["train+score"] for c in per_arm.values()),
            "one_time_flops": one_time, "pool_tokens": pool_tokens,
            "dag_flops": n_seeds * sum(c["train+score"] for c in per_arm.values()) + one_time}


def hours(flops: float, gpus: int, peak: float, mfu: float) -> float:
    return flops / (gpus * peak * mfu) / 3600.0


def _peak(gpu: str, precision: str) -> tuple[float, str]:
    from jest.model.hardware import lookup
    matmul = "tf32" if precision == "fp32" else precision   # fp32 matmuls on tensor cores (TF32)
    peak, source = lookup(gpu, matmul)
    if peak is None:
        raise SystemExit(f"error: {source}")
    return peak, source


def render(cfg: dict, costs: dict, gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU) -> str:
    """The cost table as text (what each config's header comment quotes)."""
    L = costs["learner"]
    T = cfg["data"]["seq_len"]
    peak, source = _peak(gpu, cfg["train"]["precision"])
    n = int(cfg["train"]["nproc_per_node"])
    lines = [(f"config {cfg['name']}: learner {L['shape']['n_layer']} layers, d={L['shape']['d_model']}, "
              f"V={L['shape']['vocab_size']}, T={T}: N = {L['n_matmul']:,} matmul parameters"),
             f"  training FLOPs per token 6N + 12LdT = {L['train_fpt']:.4g}; forward 2N + 4LdT = {L['forward_fpt']:.4g}",
             f"  tokens per run = {L['steps']} steps x {L['batch_size']} x {T} = {L['tokens']:.4g}",
             f"  training FLOPs per run = {L['tokens']:.4g} x {L['train_fpt']:.4g} = {L['train_flops']:.3e}",
             (f"  wall-time estimates: {gpu}, {cfg['train']['precision']} peak {peak / 1e12:g} TFLOP/s "
              f"(jest.model.hardware: {source.split(':', 1)[0]}), assumed MFU {mfu:.0%}, {n} GPU(s) per run")]
    for a, c in costs["arms"].items():
        ratio = c["train+score"] / c["train"]
        lines.append(f"  arm {a:24s} super-batch {c['super_batch']:5d}: train+score {c['train+score']:.3e} FLOPs "
                     f"({ratio:.2f}x train), ~{hours(c['train+score'], n, peak, mfu):.1f} h per run")
    for name, r in costs["references"].items():
        pool = ("" if r["pool_scoring"] is None else
                f"; pool scoring {costs['pool_tokens']:.3g} tokens x {r['forward_fpt']:.4g} = {r['pool_scoring']:.3e} "
                f"FLOPs, ~{hours(r['pool_scoring'], 1, peak, mfu):.1f} h on 1 GPU")
        lines.append(f"  reference {name}: N = {r['n_matmul']:,}, {r['tokens']:.4g} tokens, training "
                     f"{r['train_flops']:.3e} FLOPs, ~{hours(r['train_flops'], 1, peak, mfu):.1f} h on 1 GPU{pool}")
    dag_gpu_h = (hours(costs["runs_flops"], 1, peak, mfu) + hours(costs["one_time_flops"], 1, peak, mfu))
    lines.append(f"  whole DAG ({len(costs['arms'])} arms x {costs['seeds']} seeds + references): "
                 f"{costs['dag_flops']:.3e} FLOPs, ~{dag_gpu_h:.0f} GPU-hours")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.costs", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--pool-tokens", type=float, help="pool size in tokens (known after build_shards: "
                    "shards/manifest.json); needed for the reference's pool-scoring cost")
    ap.add_argument("--gpu", default=DEFAULT_GPU, help=f"a GPU name of jest.model.hardware's table (default {DEFAULT_GPU})")
    ap.add_argument("--mfu", type=float, default=DEFAULT_MFU, help=f"assumed MFU (default {DEFAULT_MFU})")
    ap.add_argument("--arms", choices=("headline", "all"), default="all")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    arms = [a for a in cfg["arms"] if args.arms == "all" or a not in cfg.get("ablation_arms", [])]
    print(render(cfg, config_costs(cfg, args.pool_tokens, arms), args.gpu, args.mfu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["arm_costs", "config_costs", "hours", "model_costs", "render", "shape"]
