"""Escrow: a folder holding every external file of a config, to restore after a release vanished.

``export_sources`` fetches what the cache lacks (with the existing fetchers, so every file is
verified against its pin), then copies each file into the folder at its cache path
(``npm/...``, ``pypi/...``, ``debian/...``; local files under ``local/``) with
``manifest.json``. The folder is thus also a ready cache: ``rsync -a ESCROW/ CACHE/`` works too,
but ``import_sources`` checks before it copies: each file's sha256 against the manifest and, where
the code pins the file, against the code's pin; one bad file refuses the whole import.

Hub datasets (``data.extra_sources`` of kind hf) are not exported: the ``datasets`` cache is
keyed by library version and fingerprint, not by file; the manifest lists them under
``skipped`` with the call that fetches them (jest/evaluation/preflight.py for lm-eval's).
"""
from __future__ import annotations

import json
import time
from pathlib import Path, PurePosixPath

from jest.io import atomic_write_json, sha256_file
from jest.sources.artifacts import Artifact, artifacts_for, code_pins
from jest.sources.preflight import SourcesError, copy_verified

FORMAT = "jest-sources-escrow-v1"
CACHE_FOLDERS = ("npm", "pypi", "debian")  # where an imported file may land, under the cache dir


def _jest_version() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from jest.tracking.records import git_commit
    try:
        package = version("jest-harness")
    except PackageNotFoundError:
        package = "unknown"
    return {"package": package, "commit": git_commit()}


def _fetched(a: Artifact, cache_dir: Path) -> dict:
    """The verified file of ``a`` in the cache (fetched if needed), as a manifest entry."""
    if a.kind == "debian":  # maybe the current version instead of the pin (debfetch's fallback)
        from jest.data.debfetch import fetch_deb
        deb = fetch_deb(a.pin, cache_dir)
        entry = {**a.key(), "spec": f"{a.name}={deb.version}", "file": deb.path.name, "sha256": deb.sha256,
                 "cache_relpath": f"debian/{deb.path.name}", "path": deb.path}
        if not deb.pinned:
            entry["pinned_spec"] = a.spec  # import writes debfetch's <package>.resolved.json
        return entry
    path = a.fetch(cache_dir)
    if a.kind == "local-file":
        if not path.is_file():
            raise SourcesError(f"{a.needed_by[0]}: no file at {path}")
        return {**a.key(), "sha256": sha256_file(path), "source_path": str(path), "path": path}
    return {**a.key(), "path": path}


def export_sources(cfg: dict, out_dir: Path, *, cache_dir: Path | None = None) -> dict:
    """Copy every external file ``cfg`` needs into ``out_dir`` with ``manifest.json``; return the manifest.

    Raises :class:`SourcesError` naming every artifact that could not be fetched (the others are
    exported and listed first).
    """
    from jest.config import cache_root
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, skipped, failed = [], [], []
    for a in artifacts_for(cfg):
        if a.kind == "hub-dataset":
            skipped.append({**a.key(), "why": f"hub dataset, not exported; fetch it with {a.fetch_with}"})
            continue
        try:
            entry = _fetched(a, cache_dir)
        except Exception as err:  # noqa: BLE001 -- every fetcher's error; all are named at the end
            failed.append(f"  {a.spec} (needed by {', '.join(a.needed_by)}): {err}")
            continue
        path = entry.pop("path")
        relpath = entry["cache_relpath"] or f"local/{len(entries):02d}-{a.file}"
        copy_verified(path, out_dir / relpath, entry["sha256"])  # a verified copy already there is kept
        entries.append({**entry, "escrow_path": relpath})
    manifest = {"format": FORMAT, "config": cfg.get("name"), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "jest": _jest_version(), "artifacts": entries, "skipped": skipped}
    atomic_write_json(out_dir / "manifest.json", manifest)
    if failed:
        raise SourcesError(f"exported {len(entries)} artifact(s) to {out_dir}, but {len(failed)} could not be "
                           "fetched:\n" + "\n".join(failed))
    return manifest


def _safe_relpath(relpath: str, allowed: tuple[str, ...]) -> bool:
    """A manifest path stays inside its folder (no '..', not absolute, under an allowed top folder)."""
    parts = PurePosixPath(relpath).parts
    return bool(parts) and not PurePosixPath(relpath).is_absolute() and ".." not in parts and parts[0] in allowed


def _verify(src: Path, entry: dict, pins: dict[str, str]) -> str | None:
    """Why the escrow file of ``entry`` must not be imported, or None."""
    rel, spec = entry.get("escrow_path", ""), entry.get("spec", "?")
    if not _safe_relpath(rel, (*CACHE_FOLDERS, "local")):
        return f"manifest entry {spec}: escrow_path {rel!r} is outside the escrow's npm/, pypi/, debian/, local/"
    cache_rel = entry.get("cache_relpath")
    if cache_rel is not None and not _safe_relpath(cache_rel, CACHE_FOLDERS):
        return f"manifest entry {spec}: cache_relpath {cache_rel!r} is outside the cache's {CACHE_FOLDERS}"
    file = src / rel
    if not file.is_file():
        return f"{file}: listed in manifest.json ({spec}) but not in the folder"
    got = sha256_file(file)
    if got != entry.get("sha256"):
        return (f"{file}: sha256 {got}, but manifest.json says {entry.get('sha256')} ({spec}); the file was altered "
                "or truncated: copy it again from the original escrow")
    pinned = pins.get(cache_rel) if cache_rel else None
    if pinned is not None and got != pinned:
        return (f"{file}: sha256 {got}, but the code pins {cache_rel} at {pinned} ({spec}); not the file this "
                "checkout reads")
    return None


def import_sources(src: Path, cache_dir: Path, *, cfg: dict | None = None) -> list[str]:
    """Verify every file of the escrow folder ``src``, then copy each into ``cache_dir`` atomically.

    Nothing is copied if any file fails (a :class:`SourcesError` names each). Local files go back
    to the path they were exported from unless a file is already there. Returns one line per
    artifact (and, with ``cfg``, a line for each artifact the config needs that is still missing).
    """
    src, cache_dir = Path(src), Path(cache_dir)
    manifest_path = src / "manifest.json"
    if not manifest_path.is_file():
        raise SourcesError(f"{manifest_path} not found: an escrow folder is made by `python -m jest sources export "
                           "DIR --config CONFIG`")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise SourcesError(f"{manifest_path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    pins = code_pins()
    problems = [why for entry in manifest["artifacts"] if (why := _verify(src, entry, pins))]
    if problems:
        raise SourcesError(f"refusing the escrow import from {src}; nothing was copied:\n  " + "\n  ".join(problems))
    lines = []
    for entry in manifest["artifacts"]:
        file = src / entry["escrow_path"]
        if entry.get("cache_relpath") is None:  # a local file: back where the config reads it
            target = Path(entry["source_path"])
            if target.is_file():
                same = sha256_file(target) == entry["sha256"]
                lines.append(f"{'present' if same else 'KEPT':9s} {target}"
                             + ("" if same else f" (differs from the escrow copy {file}; left as is)"))
                continue
        else:
            target = cache_dir / entry["cache_relpath"]
            if target.is_file() and sha256_file(target) == entry["sha256"]:
                lines.append(f"{'present':9s} {entry['spec']} at {target}")
                continue
        copy_verified(file, target, entry["sha256"])
        if entry.get("pinned_spec"):  # debfetch reads this record when the pinned .deb is gone
            package = entry["pinned_spec"].split("=", 1)[0]
            atomic_write_json(target.parent / f"{package}.resolved.json",
                              {"package": package, "pinned_version": entry["pinned_spec"].split("=", 1)[1],
                               "version": entry["spec"].split("=", 1)[1], "sha256": entry["sha256"],
                               "file": target.name})
        lines.append(f"{'imported':9s} {entry['spec']} -> {target}")
    if cfg is not None:
        held = {e.get("cache_relpath") for e in manifest["artifacts"]}
        for a in artifacts_for(cfg):
            path = a.cache_path(cache_dir)
            if path is not None and a.cache_relpath not in held and not path.is_file():
                lines.append(f"{'absent':9s} {a.spec}: needed by {', '.join(a.needed_by)}, in neither the escrow "
                             "nor the cache")
    return lines
