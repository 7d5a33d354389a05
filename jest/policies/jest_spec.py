"""What the JEST policy is for the rest of the harness (jest.policies.registry): its arm keys with
defaults, the reference it reads, its super-batch and its scoring FLOPs. The policy itself, which
needs torch, is jest.policies.jest_policy, imported only when a run starts."""
from __future__ import annotations

from jest.config import ConfigError
from jest.policies.registry import PolicySpec, ScoringShapes


def super_batch_size(batch_size: int, filter_ratio: float) -> int:
    """B = b / (1 - f), which must be a whole number of sequences."""
    exact = batch_size / (1.0 - filter_ratio)
    if abs(exact - round(exact)) > 1e-6:
        raise ValueError(f"b / (1 - f) = {batch_size} / (1 - {filter_ratio}) = {exact:.4g} is not a whole number")
    return round(exact)


def prefix_len(score_prefix: float, seq_len: int) -> int:
    """Tokens of each candidate the learner scores (cheap scoring, the Flexi-JEST analogue)."""
    return max(2, round(score_prefix * seq_len))


KEYS = {
    "filter_ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.8,
                     "description": "Share of the super-batch filtered out, f; super-batch B = b / (1 - f) "
                                    "(0.5, 0.8, 0.9 give 2x, 5x, 10x)."},
    "criterion": {"type": "string", "enum": ["learnability", "hard_learner", "easy_reference"],
                  "default": "learnability",
                  "description": "Score s_i = learner loss - reference loss (learnability), learner loss "
                                 "(hard_learner), or -reference loss (easy_reference)."},
    "selector": {"type": "string", "enum": ["joint", "independent", "topk"], "default": "joint",
                 "description": "joint = blocked sampling in n_chunks chunks; independent = sampling without "
                                "replacement, p ~ exp(s/tau); topk = the b best."},
    "n_chunks": {"type": "integer", "minimum": 1, "default": 16,
                 "description": "joint: chunks of the blocked sampler (the paper uses 16)."},
    "tau": {"type": "number", "exclusiveMinimum": 0, "default": 0.1,
            "description": "joint / independent: sampling temperature on the scores (nats)."},
    "interaction": {"type": "number", "minimum": 0, "default": 0.0,
                    "description": "joint: lambda in M = diag(s) + lambda C, C = cosine similarity of mean-pooled "
                                   "final hidden states; 0 reproduces independent."},
    "score_prefix": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0,
                     "description": "Share of each sequence's tokens the learner scores (cheap scoring, the "
                                    "Flexi-JEST analogue); 1 = full sequences."},
    "reference": {"type": "string", "default": "ref",
                  "description": "Name of the reference model (a key of 'references')."},
    "reference_scoring": {"type": "string", "enum": ["cached", "online"], "default": "cached",
                          "description": "cached = the reference scores the whole pool once (a DAG step, counted "
                                         "in 'total'); online = it scores each super-batch ('train+score')."},
    "score_batch_size": {"type": "integer", "minimum": 1, "default": 16,
                         "description": "Sequences per scoring forward pass (16 was ~2x faster than one big "
                                        "batch on CPU)."},
}


def reads_reference(arm: dict) -> str:
    return "scores" if arm["reference_scoring"] == "cached" else "model"


def candidates_per_sequence(arm: dict) -> float:
    return 1.0 / (1.0 - arm["filter_ratio"])


def score_flops(arm: dict, s: ScoringShapes) -> float:
    """Per step: the learner's forward over the super-batch's scored prefix (unless the criterion needs
    no learner), and the reference's over the full super-batch when it scores online."""
    B = super_batch_size(s.batch_size, arm["filter_ratio"])
    Tp = prefix_len(arm["score_prefix"], s.seq_len)
    flops = 0.0 if arm["criterion"] == "easy_reference" else B * Tp * s.learner_forward(Tp)
    if arm["reference_scoring"] == "online":
        flops += B * s.seq_len * s.reference_forward(s.seq_len)
    return flops


def check(cfg: dict, name: str, arm: dict) -> None:
    """The super-batch b / (1 - f) must be a whole number of sequences."""
    from jest.training.schedule import arm_train_config
    b = arm_train_config(cfg, name)["batch_size"]
    try:
        super_batch_size(b, arm["filter_ratio"])
    except ValueError as err:
        fits = [f for f in (0.5, 0.75, 0.8, 0.875, 0.9, 0.9375, 0.95) if abs(b / (1 - f) - round(b / (1 - f))) < 1e-6]
        raise ConfigError(f"'arms.{name}.filter_ratio' = {arm['filter_ratio']} does not fit "
                          f"'train.batch_size' = {b}: {err}; allowed values for this batch size include {fits}") from None


SPEC = PolicySpec(
    name="jest", build="jest.policies.jest_policy:JestPolicy.load", group="selection", role="claim",
    summary="score a super-batch of b / (1 - f) candidates (learner and reference losses), train on the chosen b",
    keys=KEYS, reads_reference=reads_reference, candidates_per_sequence=candidates_per_sequence,
    score_flops=score_flops, check=check)
