"""The arms pass of config validation: each arm's keys, checked and completed by its policy's spec.

The schema (workflow/schemas/config.schema.yaml) knows only the keys every arm has (policy, budget,
allow_repeats, branch_from and the scale ladder's); what else an arm takes is its policy's
`PolicySpec.keys` (jest.policies.registry). Here each arm becomes its normalized form: the common
keys, its policy's keys with their defaults, its fixed values, and, for a plugin's policy, the
sha256 of the plugin's files (`policy_source`), which is how editing a plugin re-runs its arms
and nothing else (the arm's config is part of its training hash, jest.training.runspec).
"""
from __future__ import annotations

from jest.config import ConfigError, schema_errors
from jest.config.schema import did_you_mean
from jest.policies.registry import PolicySpec, UnknownPolicyError, get_spec
from jest.training.schedule import arm_train_config, stable_steps

# keys of a scale-ladder arm (jest/ladder/rungs.py) besides a plain arm's: its rung, shape and train overrides
LADDER_ARM_KEYS = ("rung", "model", "train", "lr_from_sweep", "pool_fraction")
# policy_source is derived (a plugin's files' sha256), recomputed at every validation
COMMON_KEYS = ("policy", "budget", "allow_repeats", "branch_from", "policy_source", *LADDER_ARM_KEYS)


def spec_of(cfg: dict, arm: str) -> PolicySpec:
    """The spec of a validated config's arm."""
    return get_spec(cfg["arms"][arm]["policy"])


def reads_reference(cfg: dict, arm: str) -> str | None:
    """What of its reference an arm reads: None, "scores" (the cached pool scores) or "model"."""
    a = cfg["arms"][arm]
    return spec_of(cfg, arm).reads_reference(a)


def check_arms(cfg: dict, explicit: dict[str, set]) -> None:
    """Normalize every arm of `cfg` (in place) by its policy's spec; `explicit` holds the keys each arm
    gave in the file (before the schema filled defaults). Raises ConfigError naming the key."""
    for name in list(cfg["arms"]):
        cfg["arms"][name] = _normalize(cfg, name, cfg["arms"][name], explicit.get(name, set()))
    unknown = [a for a in cfg["ablation_arms"] if a not in cfg["arms"]]
    if unknown:
        raise ConfigError(f"'ablation_arms' names {unknown}, which are not arms; allowed values: {sorted(cfg['arms'])}")
    for name in cfg["ablation_arms"]:
        if spec_of(cfg, name).role == "family":
            raise ConfigError(f"'ablation_arms' = [{name!r}]: a {cfg['arms'][name]['policy']}-policy arm is the "
                              "baseline every report compares against; keep it a headline arm (remove it from "
                              "'ablation_arms')")


def _normalize(cfg: dict, name: str, arm: dict, explicit: set) -> dict:
    try:
        spec = get_spec(arm["policy"])
    except UnknownPolicyError as err:
        raise ConfigError(f"invalid config:\n  'arms.{name}.policy': {err}") from None
    own = {k: v for k, v in arm.items() if k not in COMMON_KEYS}
    takes = sorted(spec.keys)
    stray = sorted(set(own) - set(spec.keys) - set(spec.fixed))
    if stray:
        what = f"takes {takes}" if takes else "takes no other keys"
        raise ConfigError(f"'arms.{name}' has policy '{spec.name}', which besides 'budget' and 'allow_repeats' "
                          f"{what}; remove {stray}{did_you_mean(stray, takes)} (`python -m jest policies` lists each "
                          "policy's keys)")
    for key, value in spec.fixed.items():
        if key in explicit and own.get(key) != value:
            raise ConfigError(f"'arms.{name}.{key}' = {own.get(key)!r}: policy '{spec.name}' always uses "
                              f"{value!r} ({spec.summary}); allowed values: [{value!r}]")
    own = {k: v for k, v in own.items() if k not in spec.fixed}
    schema_errors(own, {"type": "object", "additionalProperties": False, "properties": dict(spec.keys)},
                  prefix=f"arms.{name}.")  # fills the spec's defaults into `own`
    out = {"policy": spec.name, "budget": arm["budget"], **own, **spec.fixed}
    # allow_repeats and branch_from are kept only when given, so that adding either key to the schema
    # changed no arm's training hash; the ladder's keys likewise only where present
    if arm.get("allow_repeats"):
        out["allow_repeats"] = True
    out.update({k: arm[k] for k in LADDER_ARM_KEYS if k in arm})
    trunk = arm.get("branch_from")
    if trunk is not None:
        if not spec.branchable:
            raise ConfigError(f"'arms.{name}.branch_from': only a uniform-policy arm can be a cooldown branch "
                              f"(arm '{name}' has policy '{spec.name}'); remove the key")
        out["branch_from"] = trunk
    if (source := spec.source_sha256()) is not None:
        out["policy_source"] = source  # a plugin: its files' content is part of the arm's training hash
    if spec.reads_reference(out) is not None and out["reference"] not in cfg["references"]:
        raise ConfigError(f"'arms.{name}.reference' = {out['reference']!r} is not a configured reference; "
                          f"allowed values: {sorted(cfg['references'])} (add it under 'references')")
    if spec.check is not None:
        spec.check(cfg, name, out)
    return out


def check_branches(cfg: dict) -> None:
    """arms.<arm>.branch_from (jest/training/branching.py): the arm is the named longer uniform run's cooldown
    branch, which is the separately trained run only when the two share every step before the branch's
    decay: wsd (the stable phase's lr does not depend on the length), the same draw set, a trunk that
    is still in its stable phase there."""
    for name, arm in cfg["arms"].items():
        trunk = arm.get("branch_from")
        if trunk is None:
            continue
        key = f"'arms.{name}.branch_from' = {trunk!r}"
        if cfg["train"]["schedule"] != "wsd":
            raise ConfigError(f"{key} needs 'train.schedule' = 'wsd' (it is {cfg['train']['schedule']!r}): only under "
                              "warmup-stable-decay is a shorter run, up to its decay, the longer run; set "
                              "'train.schedule: wsd' or remove 'branch_from'")
        uniform = sorted(a for a in cfg["arms"] if spec_of(cfg, a).branchable and a != name)
        if trunk not in cfg["arms"] or trunk == name or not spec_of(cfg, trunk).branchable:
            raise ConfigError(f"{key} is not another uniform-policy arm (the same draw set); allowed values: {uniform}")
        if cfg["arms"][trunk].get("branch_from") is not None:
            raise ConfigError(f"{key} is itself a branch (of {cfg['arms'][trunk]['branch_from']!r}); branch from "
                              "the family's longest run, the trunk")
        if arm["budget"] >= cfg["arms"][trunk]["budget"]:
            raise ConfigError(f"{key}: the branch's budget {arm['budget']} must be below the trunk's "
                              f"{cfg['arms'][trunk]['budget']}; branch from the family's longest run")
        at, trunk_stable = stable_steps(arm_train_config(cfg, name)), stable_steps(arm_train_config(cfg, trunk))
        if at > trunk_stable:
            raise ConfigError(f"{key}: the branch's decay starts after step {at}, where the trunk is already in its "
                              f"own decay (from step {trunk_stable}); raise the trunk's budget")



__all__ = ["COMMON_KEYS", "LADDER_ARM_KEYS", "check_arms", "check_branches", "reads_reference", "spec_of"]
