"""The scale ladder (issue #15): rungs of learner size as ordinary arms of one DAG.

A config's `ladder:` section lists rungs (a learner shape and its batch size); `expand_ladder`,
called by jest.experiment.validate_config, turns every rung into ordinary arms that go through the
same train rule, loop, MLflow mirror and multiplier analysis as any arm:

    <rung>_uniform_lr<lr>      the learning-rate sweep: uniform, budget 1, first seed only
    <rung>_uniform[_x<b>]      the uniform compute family (budgets, e.g. 0.5, 1, 2, 4)
    <rung>_jest_f<f>           JEST at each filter ratio
    <rung>_oracle_clean        control: uniform over the pool's clean sequences
    <rung>_offline_filter_f<f> control: uniform over the reference's best (1 - f) of the pool

Each carries `rung`, its `model` shape and a `train` override (steps, batch size, warmup; the
sweep arms their lr). The rung's 1x steps make its tokens a fixed multiple of its matmul
parameters: steps = round(tokens_per_param * N / (batch_size * seq_len)). Every arm except the
sweep reads its learning rate at run time from results/<name>/ladder/lr_choice.json
(`lr_from_sweep: true`; jest.ladder.lr writes it from the sweep's final held-out losses), so the
sweep is a real DAG dependency of the rung's other arms.

`arm_view` gives the trainer the config as the arm sees it (its model, its train section, the
chosen lr): the trainer reads `cfg["model"]` and `cfg["train"]` and needs no ladder code, and the
FLOP ledger counts the arm's own shape. Expansion is idempotent: arms with a `rung` key are the
ladder's and are regenerated from the section each time (the config snapshot is re-validated by
every job).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from jest.config import ConfigError
from jest.policies.registry import ScoringShapes, get_spec


LR_CHOICE = Path("ladder") / "lr_choice.json"             # under results/<name>/: every rung's choice (the report's)


def rung_lr_choice(results: Path, rung: str) -> Path:
    """The rung's own choice, which its train jobs wait for (each rung's sweep ends on its own)."""
    return Path(results) / "ladder" / "lr_choice" / f"{rung}.json"


class LadderError(ConfigError):
    """A ladder section that cannot be used, or a ladder run without its inputs; the message names the key."""


def fmt(x: float) -> str:
    """0.5 -> '0.5', 2.0 -> '2', 0.003 -> '0.003' (arm names)."""
    return f"{x:g}"


def rung_shape(model: dict, vocab_size: int) -> dict:
    """The shape numbers jest.model.flops needs, from a model section, as jest.model.llama builds it (the SwiGLU width
    is jest.model.llama.intermediate_size's rule, written out so that loading a config never imports
    transformers; tests/test_ladder.py checks the two agree)."""
    d_ff = model.get("intermediate_size") or 32 * math.ceil(8 * model["n_embd"] / 3 / 32)
    return {"n_layer": model["n_layer"], "d_model": model["n_embd"], "d_ff": int(d_ff),
            "n_head": model["n_head"], "n_kv_head": model["n_head"], "vocab_size": vocab_size}


def rung_tokens_per_param(ladder: dict, rung: dict) -> float:
    """The rung's own training length (the length axis gives each rung one), else the ladder's."""
    return float(rung.get("tokens_per_param") or ladder["tokens_per_param"])


def rung_steps(ladder: dict, rung: dict, vocab_size: int, seq_len: int) -> tuple[int, int]:
    """(matmul params N, 1x steps) of a rung: tokens = tokens_per_param * N, in whole steps."""
    from jest.model.flops import matmul_params
    n = matmul_params(rung_shape(rung["model"], vocab_size))
    steps = max(1, round(rung_tokens_per_param(ladder, rung) * n / (rung["batch_size"] * seq_len)))
    return n, steps


def sweep_grid(ladder: dict, rung: dict) -> tuple[list[float], list[float]]:
    """(the sweep's first grid, every lr it may add). With `lr_grid_extend` = E the sweep may add up to E lrs
    beyond each edge, each one grid step (the ratio of the grid's first two values; 2 for a single value)
    further out (jest/ladder/lr.py decides, round by round, whether it does)."""
    grid = sorted(float(x) for x in (rung.get("lr_grid") or ladder["lr_grid"]))
    step = grid[1] / grid[0] if len(grid) > 1 else 2.0
    extra = []
    for i in range(1, int(ladder.get("lr_grid_extend", 0)) + 1):
        extra += [float(f"{grid[0] / step ** i:.6g}"), float(f"{grid[-1] * step ** i:.6g}")]
    return grid, sorted(extra)


def _warmup(ladder: dict, steps: int) -> int:
    """The rung's warmup: a share of its 1x steps, so that its 0.5x budget still has a decay."""
    return max(1, round(ladder["warmup_fraction"] * steps))


def expand_ladder(config: dict, filled: dict) -> dict:
    """`config` with the ladder's arms added (earlier ladder arms replaced). `filled` is the same
    config with the schema's defaults filled (data.vocab_size, seq_len, the ladder's defaults)."""
    ladder, data = filled["ladder"], filled["data"]
    arms = {k: v for k, v in (config.get("arms") or {}).items() if not (isinstance(v, dict) and "rung" in v)}
    if not ladder["rungs"]:
        raise LadderError("'ladder.rungs' is empty; list at least one rung (name: {model: ..., batch_size: ...})")
    if ladder["family_branches"] and filled["train"]["schedule"] != "wsd":
        raise LadderError(f"'ladder.family_branches' needs 'train.schedule: wsd' (it is {filled['train']['schedule']!r}): "
                          "only under warmup-stable-decay is a shorter run, up to its decay, the longer run")
    for name, rung in ladder["rungs"].items():
        n, steps = rung_steps(ladder, rung, data["vocab_size"], data["seq_len"])
        base = {"steps": steps, "batch_size": rung["batch_size"], "micro_batch_size": rung.get("micro_batch_size"),
                "warmup_steps": _warmup(ladder, steps)}
        # the ladder's share of the pool, on the arm (only below 1) so that a change reruns its runs
        share = {"pool_fraction": float(ladder["pool_fraction"])} if ladder["pool_fraction"] < 1 else {}
        common = {"rung": name, "model": dict(rung["model"]), **share}
        new = {}
        first, extra = sweep_grid(ladder, rung)
        for lr in first + extra:  # the extension's arms exist from the start; only a round that needs one runs it
            new[f"{name}_uniform_lr{fmt(lr)}"] = {"policy": "uniform", "budget": 1.0, **common,
                                                  "train": {**base, "lr": float(lr)}}
        tuned = {**common, "train": dict(base), "lr_from_sweep": True}
        family = {f"{name}_uniform" + ("" if b == 1 else f"_x{fmt(b)}"): float(b) for b in ladder["budgets"]}
        trunk = max(family, key=family.get)
        for arm, b in family.items():
            branch = {"branch_from": trunk} if ladder.get("family_branches") and arm != trunk else {}
            new[arm] = {"policy": "uniform", "budget": b, **tuned, **branch}
        for f in ladder["jest_filter_ratios"]:
            new[f"{name}_jest_f{fmt(f)}"] = {"policy": "jest", "filter_ratio": float(f),
                                             "reference": ladder["reference"], **ladder["jest"], **tuned}
        controls = rung.get("controls", ladder["controls"])
        if "oracle_clean" in controls:
            new[f"{name}_oracle_clean"] = {"policy": "oracle_clean", **tuned}
        if "offline_filter" in controls:
            f = ladder["offline_filter_ratio"]
            new[f"{name}_offline_filter_f{fmt(f)}"] = {"policy": "offline_filter", "filter_ratio": float(f),
                                                       "reference": ladder["reference"], **tuned}
        clash = sorted(set(new) & set(arms))
        if clash:
            raise LadderError(f"arms {clash} are both under 'arms' and generated by 'ladder.rungs.{name}'; rename them")
        arms.update(new)
    return {**config, "arms": arms}


def check_ladder(cfg: dict) -> None:
    """Rung sizes at least `min_param_ratio` apart and tokens a fixed multiple of params (validated config)."""
    ladder = cfg.get("ladder")
    if not ladder:
        return
    if ladder["axis"] == "compute":
        sizes = sorted((rung_steps(ladder, r, cfg["data"]["vocab_size"], cfg["data"]["seq_len"])[0], name)
                       for name, r in ladder["rungs"].items())
        for (n0, r0), (n1, r1) in zip(sizes, sizes[1:]):
            if n1 < ladder["min_param_ratio"] * n0:
                raise LadderError(f"'ladder.rungs': {r1} ({n1:,} matmul params) is only {n1 / n0:.2f}x {r0} ({n0:,}); "
                                  f"rungs must be at least 'ladder.min_param_ratio' = {ladder['min_param_ratio']}x "
                                  "apart (widen or deepen the larger rung)")
    else:  # the length axis: one learner shape, lengths apart
        shapes = {json.dumps(r["model"], sort_keys=True) for r in ladder["rungs"].values()}
        if len(shapes) > 1:
            raise LadderError("'ladder.axis' = 'tokens_per_param' measures one learner at several lengths, but the "
                              f"rungs have {len(shapes)} model shapes; give every rung the same 'model'")
        lengths = sorted((rung_tokens_per_param(ladder, r), name) for name, r in ladder["rungs"].items())
        for (t0, r0), (t1, r1) in zip(lengths, lengths[1:]):
            if t1 < ladder["min_length_ratio"] * t0:
                raise LadderError(f"'ladder.rungs.{r1}.tokens_per_param' = {t1:g} is only {t1 / t0:.2f}x {r0}'s {t0:g}; "
                                  f"lengths must be at least 'ladder.min_length_ratio' = {ladder['min_length_ratio']}x "
                                  "apart")
    if ladder["reference"] not in cfg["references"]:
        raise LadderError(f"'ladder.reference' = {ladder['reference']!r} is not a configured reference; "
                          f"allowed values: {sorted(cfg['references'])}")
    if not ladder["evaluate"] and not cfg.get("mlflow", {}).get("live", True):
        # without the evaluate job (ladder.evaluate false) nothing else would mirror a run into MLflow
        raise LadderError("'mlflow.live' = false and 'ladder.evaluate' = false: the ladder's runs would never reach "
                          "MLflow; set 'ladder.evaluate: true' (the evaluate job then mirrors each run) or "
                          "'mlflow.live: true'")
    if ladder["pool_fraction"] < 1:  # the reference then scores the ladder's share of the pool only
        outside = sorted(a for a, s in cfg["arms"].items() if "rung" not in s and s.get("reference") ==
                         ladder["reference"] and get_spec(s["policy"]).reads_reference(s) is not None)
        if outside:
            raise LadderError(f"arms {outside} use the ladder's reference '{ladder['reference']}', which scores only "
                              f"'ladder.pool_fraction' = {ladder['pool_fraction']} of the pool; give them another "
                              "reference or set 'ladder.pool_fraction: 1'")


# ---------------------------------------------------------------- the plan, read by the DAG and the analysis
def rung_plan(cfg: dict) -> dict[str, dict]:
    """rung -> {matmul_params, tokens_per_param, steps, tokens, batch_size, model, sweep {arm: lr} (the first
    grid), sweep_extra {arm: lr} (the lrs the sweep may add, jest/ladder/lr.py), family {arm: budget},
    jest [arms], controls [arms], arms [every non-sweep arm]}, rungs in order along the axis (size, then length)."""
    out = {}
    ladder = cfg.get("ladder")
    if not ladder:
        return out
    for name, rung in ladder["rungs"].items():
        n, steps = rung_steps(ladder, rung, cfg["data"]["vocab_size"], cfg["data"]["seq_len"])
        arms = {a: s for a, s in cfg["arms"].items() if s.get("rung") == name}
        first, _ = sweep_grid(ladder, rung)
        swept = {a: s["train"]["lr"] for a, s in arms.items() if not s.get("lr_from_sweep")}
        sweep = {a: lr for a, lr in swept.items() if lr in first}
        family = {a: s["budget"] for a, s in arms.items() if s.get("lr_from_sweep") and
                  get_spec(s["policy"]).role == "family"}
        jest = [a for a, s in arms.items() if get_spec(s["policy"]).group == "selection"]
        controls = [a for a, s in arms.items() if get_spec(s["policy"]).group == "control"]
        tokens = steps * rung["batch_size"] * cfg["data"]["seq_len"]
        out[name] = {"matmul_params": n, "tokens_per_param": tokens / n, "steps": steps, "tokens": tokens,
                     "batch_size": rung["batch_size"], "model": rung["model"], "sweep": sweep,
                     "sweep_extra": {a: lr for a, lr in swept.items() if a not in sweep}, "family": family,
                     "jest": jest, "controls": controls, "arms": [a for a in arms if a not in swept]}
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["matmul_params"], kv[1]["tokens"])))


def ladder_seeds(cfg: dict) -> list[int]:
    return list(cfg["ladder"]["seeds"] or cfg["seeds"])


def sweep_seed(cfg: dict) -> int:
    """The LR sweep runs one seed, the ladder's first (a sweep picks a setting; seeds measure it)."""
    return ladder_seeds(cfg)[0]


# ---------------------------------------------------------------- what the trainer sees
def read_lr_choice(path: Path, rung: str, arm: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LadderError(f"arm '{arm}' takes its learning rate from the rung's sweep, but {path} does not exist: "
                          "run the sweep and its choice first (snakemake ladder_lr_choice, or the ladder target)")
    choice = json.loads(path.read_text())
    if rung not in choice.get("rungs", {}):
        raise LadderError(f"{path} has no choice for rung '{rung}' (it has {sorted(choice.get('rungs', {}))}): "
                          "re-run the ladder_lr_choice rule for this config")
    return choice["rungs"][rung]


def arm_view(cfg: dict, arm: str, lr_choice: Path | None) -> dict:
    """The config as `arm`'s run sees it: the arm's model shape and train overrides (and the chosen
    lr, recorded under arms.<arm>.lr_choice, so the run's card and MLflow params carry it). Arms
    without overrides get `cfg` unchanged."""
    settings = cfg["arms"][arm]
    if not any(k in settings for k in ("model", "train")):
        return cfg
    train = {**cfg["train"], **settings.get("train", {})}
    settings = dict(settings)
    if settings.get("lr_from_sweep"):
        if lr_choice is None:
            raise LadderError(f"arm '{arm}' takes its learning rate from the ladder sweep: pass --lr-choice")
        chosen = read_lr_choice(lr_choice, settings["rung"], arm)
        train["lr"] = float(chosen["lr"])
        settings["lr_choice"] = {"lr": train["lr"], "metric": chosen["metric"], "losses": chosen["losses"]}
    arms = {**cfg["arms"], arm: settings}
    trunk = settings.get("branch_from")
    if trunk is not None and "lr_choice" in settings:
        # a cooldown branch checks its trunk's state against the trunk's identity, computed from this view:
        # the trunk's arm as its own run saw it (the same rung, hence the same choice)
        arms[trunk] = {**cfg["arms"][trunk], "lr_choice": settings["lr_choice"]}
    return {**cfg, "model": {**cfg["model"], **settings.get("model", {})}, "train": train, "arms": arms}


# ---------------------------------------------------------------- the ladder's share of the pool
def pool_fraction(cfg: dict, arm: str) -> float:
    """The share of the pool a run of `arm` draws from: a ladder arm's `pool_fraction` (the expansion copies
    `ladder.pool_fraction` onto it; a fixed, nested subset, jest.training.runspec.training_subset), else the whole pool."""
    return float(cfg["arms"][arm].get("pool_fraction", 1.0))


def reference_pool_fraction(cfg: dict, ref: str) -> float:
    """The share of the pool the reference `ref` scores: the ladder's when it is the ladder's reference
    (its learners never draw elsewhere: scoring the rest of a 97M-token pool would cost more than the
    CPU ladder's training), the whole pool otherwise."""
    ladder = cfg.get("ladder")
    return float(ladder["pool_fraction"]) if ladder and ref == ladder["reference"] else 1.0


def check_scores_cover(cfg: dict, arm: str, references_root: Path) -> None:
    """A ladder arm that reads cached pool scores needs them for its whole share of the pool. The
    score_reference rule does not rerun when `ladder.pool_fraction` grows (its trigger is the reference's
    own config), so a smaller, older scoring would hand the arm NaN scores: refuse it, naming the fix."""
    s = cfg["arms"][arm]
    if "rung" not in s or get_spec(s["policy"]).reads_reference(s) != "scores":
        return
    meta_path = Path(references_root) / s["reference"] / "pool_scores.json"
    if not meta_path.is_file():
        return  # the policy names the missing scores itself
    scored = float(json.loads(meta_path.read_text()).get("fraction", 1.0))
    if scored + 1e-12 < pool_fraction(cfg, arm):
        raise LadderError(f"ladder rung '{s['rung']}', arm '{arm}' draws from {pool_fraction(cfg, arm):g} of the pool, "
                          f"but {meta_path} scores only {scored:g} of it: re-score with "
                          "`snakemake --forcerun score_reference ...` (same config)")


# ---------------------------------------------------------------- no repetition, planned before any job
def planned_draws(cfg: dict) -> list[dict]:
    """Per ladder arm x its plan: candidates drawn (steps x super-batch) and the set it draws from."""
    from jest.training.schedule import arm_train_config
    rows = []
    for arm, s in cfg["arms"].items():
        if "rung" not in s:
            continue
        t = arm_train_config(cfg, arm)
        spec = get_spec(s["policy"])
        drawn = t["steps"] * spec.super_batch(s, t["batch_size"])
        rows.append({"rung": s["rung"], "arm": arm, "policy": s["policy"], "draws_from": spec.draws_from,
                     "drawn": drawn, "filter_ratio": s.get("filter_ratio")})
    return rows


def check_draws(cfg: dict, pool_sequences: int, clean_sequences: int | None) -> list[dict]:
    """Refuse a ladder whose arm would draw a candidate twice: the set sizes come from the built shards
    (pool sequences; clean ones for oracle_clean). Returns the plan rows with their passes."""
    short = []
    rows = planned_draws(cfg)
    share = cfg["ladder"]["pool_fraction"]  # a random subset: the clean count scales in expectation
    pool_sequences = max(1, int(share * pool_sequences))
    clean_sequences = None if clean_sequences is None else int(share * clean_sequences)
    for r in rows:
        size = {"clean": clean_sequences,
                "kept": None if r["filter_ratio"] is None else
                max(1, round((1 - r["filter_ratio"]) * pool_sequences))}.get(r["draws_from"], pool_sequences)
        r["draw_set"] = size
        r["passes"] = None if not size else r["drawn"] / size
        if size is not None and r["drawn"] > size:
            short.append(f"rung {r['rung']}, arm {r['arm']}: {r['drawn']:,} candidates from {size:,} sequences "
                         f"({r['drawn'] - size:,} short, {r['passes']:.2f} passes)")
    if short:
        raise LadderError("the ladder would repeat data (issue #15 forbids it):\n  " + "\n  ".join(short) +
                          "\n  fixes: lower 'ladder.tokens_per_param', a smaller rung batch, or a larger pool "
                          "(data.preset: large)")
    return rows


def shard_set_sizes(shards_manifest: dict) -> tuple[int, int | None]:
    """(pool sequences, the oracle's pool sequences) from shards/manifest.json; the latter is None where the
    manifest has no per-quality table (the default preset's shards: the trainer still checks at start)."""
    pool = shards_manifest["splits"]["pool"]
    by_quality = pool.get("by_quality")
    from baselines.controls import ORACLE_QUALITIES
    if by_quality is None:
        return int(pool["sequences"]), None
    clean = sum(int(by_quality.get(q, {}).get("sequences", 0)) for q in ORACLE_QUALITIES)
    return int(pool["sequences"]), clean


# ---------------------------------------------------------------- cost
def own_steps(cfg: dict, arm: str) -> int:
    """The steps a run of `arm` trains itself: all of them, or a cooldown branch's decay only (it starts
    from its trunk's state; jest/training/branching.py)."""
    from jest.training.schedule import arm_train_config, stable_steps
    t = arm_train_config(cfg, arm)
    return t["steps"] - (stable_steps(t) if cfg["arms"][arm].get("branch_from") else 0)


def estimate_cost(cfg: dict, train_tokens_per_s: dict[str, float], score_tokens_per_s: dict[str, float],
                  cores: int = 2, parallel_efficiency: float = 0.85) -> dict:
    """Core-seconds and wall time of the ladder's training runs from measured 1-thread throughputs per
    rung (training tokens/s, learner scoring tokens/s): the sweep on one seed, every other arm on every
    seed; JEST adds the learner's scoring of B - b candidates per step (the reference's are cached)."""
    from jest.model.flops import forward_flops_per_token
    seq_len = cfg["data"]["seq_len"]
    seeds = len(ladder_seeds(cfg))
    per_rung = {}
    for rung, plan in rung_plan(cfg).items():
        step_tokens = plan["batch_size"] * seq_len
        shape = rung_shape(plan["model"], cfg["data"]["vocab_size"])
        shapes = ScoringShapes(plan["batch_size"], seq_len, lambda n, shape=shape: forward_flops_per_token(shape, n))
        sec = 0.0
        for arm in list(plan["sweep"]) + plan["arms"]:
            s = cfg["arms"][arm]
            steps = own_steps(cfg, arm)
            t = steps * step_tokens / train_tokens_per_s[rung]
            # scored tokens per step: the spec's scoring FLOPs in full-length learner forwards
            t += steps * get_spec(s["policy"]).score_flops(s, shapes) / shapes.learner_forward(seq_len) \
                / score_tokens_per_s[rung]
            sec += t * (1 if arm in plan["sweep"] else seeds)
        per_rung[rung] = round(sec)
    total = sum(per_rung.values())
    return {"core_seconds": per_rung, "total_core_seconds": total,
            "wall_minutes": round(total / cores / parallel_efficiency / 60, 1)}


def ladder_flops(cfg: dict) -> dict:
    """Training and train+score FLOPs per rung over all its runs (sweep on one seed, the rest on every
    seed; jest.model.flops on the rung's shape): the input of the GPU and cluster configs' cost estimates."""
    from jest.model.flops import forward_flops_per_token, train_flops_per_token
    seq_len, seeds, out = cfg["data"]["seq_len"], len(ladder_seeds(cfg)), {}
    for rung, plan in rung_plan(cfg).items():
        shape = rung_shape(plan["model"], cfg["data"]["vocab_size"])
        tr = train_flops_per_token(shape, seq_len)
        shapes = ScoringShapes(plan["batch_size"], seq_len, lambda n, shape=shape: forward_flops_per_token(shape, n))
        train = score = 0.0
        for arm in list(plan["sweep"]) + plan["arms"]:
            s = cfg["arms"][arm]
            steps = own_steps(cfg, arm)
            runs = 1 if arm in plan["sweep"] else seeds
            train += runs * steps * plan["batch_size"] * seq_len * tr
            score += runs * steps * get_spec(s["policy"]).score_flops(s, shapes)
        out[rung] = {"matmul_params": plan["matmul_params"], "steps": plan["steps"], "tokens": plan["tokens"],
                     "runs": len(plan["sweep"]) + seeds * len(plan["arms"]), "flops_train": train,
                     "flops_train_score": train + score}
    return out


__all__ = ["LR_CHOICE", "LadderError", "rung_lr_choice", "arm_view", "check_draws", "check_ladder", "check_scores_cover", "estimate_cost",
           "expand_ladder", "ladder_flops", "ladder_seeds", "own_steps", "planned_draws", "pool_fraction",
           "reference_pool_fraction", "rung_plan", "rung_shape", "rung_steps", "rung_tokens_per_param", "shard_set_sizes",
           "sweep_grid", "sweep_seed"]

