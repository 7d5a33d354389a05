"""The policy registry: the one place that says what each batch policy is.

A policy is a `PolicySpec`: its name, the config keys its arms take (with defaults and ranges,
as JSON-schema fragments), what of a reference it reads, the set of sequences its stream draws
from, how many candidates it draws and how its scoring FLOPs count, its group in the reports,
and where its implementation lives ("module:callable", imported only when a run starts, as
lm-evaluation-harness's lazy registry entries are). Config validation, the Snakemake rules,
ladder expansion, planning, cost estimates and the analysis ask the spec; nothing matches
policy names.

The built-in policies are registered like any plugin, lazily by "module:SPEC" (below). A user's
policies come from the modules or files a config names under `plugins:` (or from the
`jest.policies` entry-point group of an installed package): each calls `register_policy` when
imported (torchtitan's `custom_import` is the model). Whatever a plugin's files contain joins
the training hash of the arms that use it, so editing a plugin re-runs its arms and nothing
else (jest.policies.arms, jest.training.runspec.training_hash). docs/extending.md has an example.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from jest.config import ConfigError, PROJECT_ROOT

GROUPS = ("baseline", "selection", "control")   # how reports group arms
ROLES = ("family", "claim", "oracle", "filter", "matched")  # what the analysis reads an arm as (PolicySpec.role)
READS = (None, "scores", "model")               # what of its reference an arm reads


@dataclass(frozen=True)
class ScoringShapes:
    """What a per-step FLOP estimate needs: the batch, the sequence length and the forward FLOPs per
    token of the learner and of the arm's reference (functions of the scored length; None: no reference)."""

    batch_size: int
    seq_len: int
    learner_forward: Callable[[int], float]
    reference_forward: Callable[[int], float] | None = None


def _one(arm: dict) -> float:
    return 1.0


def _no_scoring(arm: dict, shapes: ScoringShapes) -> float:
    return 0.0


def _no_reference(arm: dict) -> str | None:
    return None


@dataclass(frozen=True)
class PolicySpec:
    """What a batch policy is, for everything outside its own `select`."""

    name: str
    # what builds its policy object, callable(arm, ctx: PolicyContext) -> BatchPolicy: the callable itself
    # (a plugin), or "module:callable", imported only when a run starts (the built-ins: no torch at planning)
    build: str | Callable
    summary: str                    # one line: what its arms train on (errors, docs, reports)
    group: str = "selection"        # one of GROUPS
    # The analysis's reading of its arms: "family" = the uniform compute family every multiplier is read
    # against; "claim" = judged against the article's 13x / 10x claims (JEST); "oracle" = the ceiling of
    # re-weighting by labels; "filter" = the offline filter JEST's gain is decomposed against; "matched" = the
    # mixture-matched control (JEST's mixture, uniform within each cell: JEST minus it is selection); None = an
    # arm with a multiplier and, as an ablation, a paired verdict against the headline JEST arm.
    role: str | None = None
    keys: Mapping[str, dict] = field(default_factory=dict)  # arm keys besides the common ones: JSON schema
    fixed: Mapping[str, Any] = field(default_factory=dict)   # values its arms always hold (set, not asked)
    reads_reference: Callable[[dict], str | None] = _no_reference  # arm -> None, "scores" or "model"
    # arm -> the name of another arm whose run of the same seed this arm reads (its train job waits for it,
    # and that run's metrics are part of this run's identity), or None
    reads_arm: Callable[[dict], str | None] = _no_reference
    train_split: str = "pool"       # the split its stream draws from: pool or curated
    draws_from: str = "split"       # planning: "split" (all of it), "clean" (labelled clean), "kept" ((1 - f) of it)
    candidates_per_sequence: Callable[[dict], float] = _one   # super-batch / batch, e.g. 1 / (1 - f)
    score_flops: Callable[[dict, ScoringShapes], float] = _no_scoring  # per step (cost estimates)
    check: Callable[[dict, str, dict], None] | None = None    # (cfg, arm name, arm) -> raise ConfigError
    branchable: bool = False        # may be a wsd cooldown branch of a longer arm (jest/training/branching.py)
    source_files: tuple[str, ...] = ()  # a plugin's files: their content joins its arms' training hash

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"policy '{self.name}': group {self.group!r} is not one of {GROUPS}")
        if self.role not in (None, *ROLES):
            raise ValueError(f"policy '{self.name}': role {self.role!r} is not one of {ROLES} or None")
        if self.train_split not in ("pool", "curated") or self.draws_from not in ("split", "clean", "kept"):
            raise ValueError(f"policy '{self.name}': train_split must be pool or curated, draws_from split, "
                             "clean or kept")
        if isinstance(self.build, str) and ":" not in self.build:
            raise ValueError(f"policy '{self.name}': build {self.build!r} is not 'module:callable'")
        if not isinstance(self.build, str) and not callable(self.build):
            raise ValueError(f"policy '{self.name}': build must be a callable or a 'module:callable' string")

    def super_batch(self, arm: dict, batch_size: int) -> int:
        """Candidates drawn per step for a batch of `batch_size`."""
        return round(batch_size * self.candidates_per_sequence(arm))

    def source_sha256(self) -> str | None:
        """sha256 over the plugin's files (None for a built-in policy: the git commit says its code)."""
        if not self.source_files:
            return None
        h = hashlib.sha256()
        for path in self.source_files:
            h.update(Path(path).read_bytes())
        return h.hexdigest()


# Built-in policies, registered lazily: "module:SPEC" is imported the first time its name is asked for.
BUILTIN = {
    "uniform": "baselines.uniform:SPEC",
    "jest": "jest.policies.jest_spec:SPEC",
    "oracle_clean": "baselines.controls:ORACLE_CLEAN",
    "offline_filter": "baselines.controls:OFFLINE_FILTER",
    "curated_only": "baselines.controls:CURATED_ONLY",
    "mixture_matched": "baselines.mixture:SPEC",
}
ENTRY_POINT_GROUP = "jest.policies"   # installed packages: [project.entry-points."jest.policies"] name = "module"

_SPECS: dict[str, PolicySpec] = {}
_ENTRY_POINTS_LOADED = False


class UnknownPolicyError(ConfigError):
    """A policy name that no spec is registered under."""


def register_policy(spec: PolicySpec) -> PolicySpec:
    """Register `spec` under its name (a plugin calls this when imported). Registering the same name again
    replaces the spec only when it comes from the same place (a re-import); a built-in name is refused."""
    if spec.name in BUILTIN and _where(spec.build) != _where(_import_object(BUILTIN[spec.name]).build):
        raise ValueError(f"policy name '{spec.name}' is built in; give yours another name")
    if spec.name not in BUILTIN and not spec.source_files:
        spec = replace(spec, source_files=_source_of(spec.build))
    old = _SPECS.get(spec.name)
    if old is not None and _where(old.build) != _where(spec.build):
        raise ValueError(f"policy '{spec.name}' is registered twice: by {_where(old.build)} and by {_where(spec.build)}")
    _SPECS[spec.name] = spec
    return spec


def _where(build) -> str:
    """'module:qualname' of a build target, string or callable."""
    return build if isinstance(build, str) else f"{build.__module__}:{build.__qualname__}"


def _source_of(build) -> tuple[str, ...]:
    """The file that defines a plugin's build target: its content joins the training hash of the arms."""
    module = _where(build).split(":", 1)[0]
    found = sys.modules.get(module)
    path = getattr(found, "__file__", None) if found else importlib.util.find_spec(module).origin
    return (path,) if path and path.endswith(".py") else ()


def _import_object(entry):
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def get_spec(name: str) -> PolicySpec:
    """The spec registered under `name`; UnknownPolicyError names the registered ones (and the closest)."""
    if name not in _SPECS and name in BUILTIN:
        _SPECS[name] = _import_object(BUILTIN[name])
    if name not in _SPECS:
        _load_entry_points()
    if name not in _SPECS:
        known = registered_names()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownPolicyError(f"unknown policy {name!r}{hint}; registered policies: {known}. A policy of your "
                                 "own is registered by a module or file named under 'plugins' (docs/extending.md)")
    return _SPECS[name]


def registered_names() -> list[str]:
    return sorted(set(BUILTIN) | set(_SPECS))


def role_of(name: str | None) -> str | None:
    """The analysis's reading of a policy's arms (PolicySpec.role); None for a name no spec knows (a
    table written by a plugin that is not loaded here)."""
    try:
        return get_spec(name).role if name else None
    except UnknownPolicyError:
        return None


def group_of(name: str | None) -> str | None:
    try:
        return get_spec(name).group if name else None
    except UnknownPolicyError:
        return None


def build_policy(arm: dict, ctx):
    """The policy object of an arm's config (validated by jest.policies.arms), built by its spec."""
    return _import_object(get_spec(arm["policy"]).build)(arm, ctx)


# ---------------------------------------------------------------- plugins
def load_plugins(entries: list[str], base_dir: Path | None = None) -> list[str]:
    """Import the modules or .py files a config names under `plugins` (each registers its policies when
    imported); return the entries as absolute module names or paths. A relative path is read from
    `base_dir` (the project root by default). Errors name the entry and what went wrong."""
    base_dir = Path(base_dir or PROJECT_ROOT)
    resolved = []
    for i, entry in enumerate(entries):
        key = f"plugins[{i}] = {entry!r}"
        if str(entry).endswith(".py"):
            path = Path(entry).expanduser()
            path = path if path.is_absolute() else base_dir / path
            if not path.is_file():
                raise ConfigError(f"invalid config:\n  '{key}': no such file ({path})")
            _import_file(path, key)
            resolved.append(str(path))
        else:
            _import_module(str(entry), key)
            resolved.append(str(entry))
    return resolved


def _import_file(path: Path, key: str) -> None:
    name = "jest_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _run_plugin(lambda: spec.loader.exec_module(module), key, name)


def _import_module(name: str, key: str) -> None:
    if name in sys.modules:
        return
    try:
        found = importlib.util.find_spec(name)
    except (ModuleNotFoundError, ValueError):  # a missing parent package
        found = None
    if found is None:
        raise ConfigError(f"invalid config:\n  '{key}': no module {name!r} on the Python path; give a module "
                          "name that `python -c 'import NAME'` finds, or the path of a .py file")
    _run_plugin(lambda: importlib.import_module(name), key, name)


def _run_plugin(load, key: str, module: str) -> None:
    try:
        load()
    except ConfigError:
        raise
    except Exception as err:
        sys.modules.pop(module, None)
        raise ConfigError(f"invalid config:\n  '{key}': importing it failed: {type(err).__name__}: {err}") from err


def _load_entry_points() -> None:
    """Plugins of installed packages (entry-point group `jest.policies`), once per process."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _import_module(ep.value.split(":")[0], f"entry point {ep.name} = {ep.value}")


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "GROUPS", "PolicySpec", "ROLES", "ScoringShapes", "UnknownPolicyError",
           "build_policy", "get_spec", "group_of", "load_plugins", "register_policy", "registered_names", "role_of"]
