"""Command line of the library; every Snakemake rule is one of these commands.

    python -m jest check-config  CONFIG
    python -m jest prepare-data  --config CONFIG --out DIR --cache DIR
    python -m jest train-tokenizer --config CONFIG --data DIR --out DIR
    python -m jest build-shards  --config CONFIG --data DIR --tokenizer DIR --out DIR
    python -m jest train-reference --config CONFIG --ref NAME --run-dir DIR --shards DIR --tokenizer DIR
    python -m jest score-reference --config CONFIG --ref-dir DIR --shards DIR
    python -m jest train         --config CONFIG --arm ARM --seed N --run-dir DIR --shards DIR --tokenizer DIR
                                 [--references DIR]
    python -m jest build-tasks   --config CONFIG --heldout FILE --out DIR --cache DIR
    python -m jest evaluate      --config CONFIG --run-dir DIR [--run-dir DIR ...] --tasks DIR
    python -m jest sync-mlflow   RUN_DIR [RUN_DIR ...]
    python -m jest rebuild-mlflow --config CONFIG
    python -m jest mlflow-ui     --config CONFIG [--port 5000]
    python -m jest verdict       [--summary SUMMARY_JSON | --config CONFIG]
    python -m jest preflight     --config CONFIG [--cache DIR] [--no-registry]
    python -m jest doctor        --config CONFIG [--cache DIR]
    python -m jest sources export DIR --config CONFIG [--cache DIR]
    python -m jest sources import DIR [--config CONFIG] [--cache DIR]

preflight: is every external artifact of the config (npm packs, PyPI sdists, Debian packages)
cached, or still served by its registry? sources export / import: an escrow folder of them, to
restore after a release vanished (docs/sources.md). rebuild-mlflow: MLflow only mirrors the run
folders; a deleted or damaged store is recreated from them (jest/tracking/mlflow_rebuild.py).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from jest.config import ConfigError

from jest.experiment import load_config
from jest.tracking.metrics import MetricsError
from jest.tracking.mlflow_store import MlflowStoreError


def _cmd_check_config(args) -> None:
    print(json.dumps(load_config(args.config), indent=2, sort_keys=True))


def _large_preset(cfg) -> bool:
    """`data.preset: large`: the registry corpus (jest/data/registry_*.py) instead of the npm sources alone."""
    return cfg["data"].get("preset", "default") == "large"


def _cmd_prepare_data(args) -> None:
    from jest.data.prepare import prepare_corpus
    cfg = load_config(args.config)
    if _large_preset(cfg):
        from jest.data.registry_corpus import prepare_registry_corpus as prepare_corpus
    manifest = prepare_corpus(cfg["data"], Path(args.out), Path(args.cache))
    for split, info in sorted(manifest["splits"].items()):
        print(f"{split:8s} {info['documents']:6d} documents {info['characters']:>10,d} characters")


def _cmd_train_tokenizer(args) -> None:
    from jest.data.tokenizer import train_tokenizer
    cfg = load_config(args.config)
    data = Path(args.data)
    if _large_preset(cfg):
        from jest.data.registry_shards import train_tokenizer_on_sample
        info = train_tokenizer_on_sample(data, cfg["data"]["vocab_size"], Path(args.out), cfg["data"]["split_seed"],
                                         cfg["data"]["registry"]["tokenizer_sample_chars"])
        print(f"tokenizer trained on a sample: {info}")
        return
    tok = train_tokenizer([data / "curated.jsonl", data / "pool.jsonl"], cfg["data"]["vocab_size"], Path(args.out))
    print(f"tokenizer: {len(tok)} tokens -> {args.out}")


def _cmd_build_shards(args) -> None:
    from jest.data.shards import build_shards
    cfg = load_config(args.config)
    if _large_preset(cfg):
        from jest.data.registry_shards import build_streaming_shards as build_shards
    manifest = build_shards(Path(args.data), Path(args.tokenizer), Path(args.out), cfg["data"]["seq_len"])
    planted = cfg["data"].get("planted_noise")  # absent unless a config plants noise (the schema's note)
    if planted and planted["share"] > 0:  # the positive control's planted pool (jest/data/planted.py)
        from jest.data.planted import plant_noise
        record = plant_noise(Path(args.out), planted["share"], cfg["data"]["split_seed"], planted["kind"])
        print(f"planted {record['noise_sequences']} noise sequences: {record['share_realised']:.4f} of the pool")
        manifest = json.loads((Path(args.out) / "manifest.json").read_text())
    for split, info in sorted(manifest["splits"].items()):
        print(f"{split:8s} {info['sequences']:6d} sequences {info['tokens']:>10,d} tokens")


def _cmd_train(args) -> None:
    from jest.training.trainer import RunSpec, train
    cfg = load_config(args.config)
    if args.arm not in cfg["arms"]:
        raise ConfigError(f"arm '{args.arm}' is not in the config; allowed values: {sorted(cfg['arms'])}")
    cfg = _ladder_view(cfg, args)
    from jest.ladder.rungs import check_scores_cover, pool_fraction
    references = Path(args.references) if args.references else Path(args.run_dir).resolve().parent.parent / "references"
    check_scores_cover(cfg, args.arm, references)
    spec = RunSpec(cfg=cfg, arm=args.arm, seed=args.seed, run_dir=Path(args.run_dir),
                   shards_dir=Path(args.shards), tokenizer_dir=Path(args.tokenizer),
                   references_root=Path(args.references) if args.references else None,
                   data_fraction=pool_fraction(cfg, args.arm))  # a ladder arm: the ladder's share of the pool
    from jest.training.repetition import RepetitionError
    try:
        train(spec, threads=args.threads, progress=not args.no_progress)
    except RepetitionError as err:  # a ladder run names its rung first (issue #15: no arm at any rung repeats)
        rung = cfg["arms"][args.arm].get("rung")
        if rung is None:
            raise
        raise RepetitionError(f"ladder rung '{rung}', arm '{args.arm}': {err}") from None


def _ladder_view(cfg: dict, args) -> dict:
    """A scale-ladder arm trains with its rung's shape, steps and swept lr (jest/ladder/rungs.py); the lr choice
    is its rung's, results/<name>/ladder/lr_choice/<rung>.json next to the runs/ folder, unless --lr-choice names one."""
    from jest.ladder.rungs import arm_view, rung_lr_choice
    rung = cfg["arms"][args.arm].get("rung")
    results = Path(args.run_dir).resolve().parent.parent
    choice = Path(args.lr_choice) if args.lr_choice else (rung_lr_choice(results, rung) if rung else None)
    return arm_view(cfg, args.arm, choice)  # a LadderError is a ConfigError: main() prints it


def _cmd_train_reference(args) -> None:
    from jest.training.trainer import reference_spec, train
    cfg = load_config(args.config)
    if args.ref not in cfg["references"]:
        raise ConfigError(f"reference '{args.ref}' is not in the config; allowed values: {sorted(cfg['references'])}")
    spec = reference_spec(cfg, args.ref, Path(args.run_dir), Path(args.shards), Path(args.tokenizer))
    train(spec, threads=args.threads, progress=not args.no_progress)


def _cmd_score_reference(args) -> None:
    import torch
    from transformers import LlamaForCausalLM
    from jest.policies.scoring import score_pool
    from jest.training.trainer import resolve_device
    cfg = load_config(args.config)
    torch.set_num_threads(args.threads or cfg["threads"])
    ref_dir = Path(args.ref_dir)
    model = LlamaForCausalLM.from_pretrained(ref_dir / "model").to(resolve_device(cfg["device"]))
    from jest.ladder.rungs import reference_pool_fraction
    meta = score_pool(model, Path(args.shards), ref_dir, args.batch_size, ref_dir, progress=not args.no_progress,
                      fraction=reference_pool_fraction(cfg, ref_dir.name),
                      fast=bool(cfg["references"].get(ref_dir.name, {}).get("train", {}).get("fast_path")))
    print(f"scored {meta.get('scored_sequences', meta['sequences'])} of {meta['sequences']} pool sequences in "
          f"{meta['seconds']:.1f} s: mean loss "
          f"{meta['mean_loss']:.4f}, {meta['flops']:.3e} FLOPs")


def _cmd_build_tasks(args) -> None:
    from jest.evaluation.bigbench import configured_copy
    from jest.evaluation.bigbench_items import needs_bigbench
    from jest.evaluation.suites import expand
    from jest.evaluation.tasks import build_tasks
    cfg = load_config(args.config)
    ecfg = cfg["evaluation"]
    table = build_tasks(Path(args.heldout), Path(args.cache), Path(args.out), seed=ecfg["seed"],
                        n_heldout_docs=ecfg["heldout_docs"], with_bigbench=needs_bigbench(expand(ecfg["tasks"])),
                        bigbench_sdist=configured_copy(ecfg))
    for name, entry in sorted(table["tasks"].items()):
        print(f"{name:40s} {entry.get('n_items', '?'):>6} items  chance {entry.get('chance')}")


def _cmd_evaluate(args) -> None:
    """lm-eval on each run (one process for all: imports and lm-eval's task loading are paid once),
    then, with receipts, each run's MLflow mirror. A run that fails does not stop the others; the
    command exits 1 at the end naming every run that failed."""
    import traceback

    from jest.evaluation.runner import evaluate_run
    if args.receipt and len(args.receipt) != len(args.run_dir):
        raise ConfigError(f"--receipt is given {len(args.receipt)} times for {len(args.run_dir)} --run-dir: "
                          "give one receipt per run folder, in the same order, or none")
    cfg = load_config(args.config)
    failed = []
    for i, run_dir in enumerate(map(Path, args.run_dir)):
        if len(args.run_dir) > 1:
            print(f"== [{i + 1}/{len(args.run_dir)}] {run_dir}", flush=True)
        try:
            evaluate_run(cfg, run_dir, Path(args.tasks), threads=args.threads)
            # the workflow's evaluate job mirrors the run into MLflow in the same process
            if args.receipt and _mirror_runs([run_dir], None, Path(args.receipt[i])):
                raise RuntimeError("MLflow does not hold every point of the run (above)")
        except Exception as err:  # noqa: BLE001 -- reported below, and the exit status says so
            traceback.print_exc()
            failed.append(f"{run_dir}: {err!r}")
    if failed:
        print(f"evaluation failed for {len(failed)} of {len(args.run_dir)} runs:\n  " + "\n  ".join(failed),
              file=sys.stderr)
        sys.exit(1)


def _cmd_sync_mlflow(args) -> None:
    if args.receipt and len(args.run_dirs) != 1:
        raise ConfigError("--receipt needs exactly one run folder")
    if _mirror_runs(list(map(Path, args.run_dirs)), args.tracking_uri, Path(args.receipt) if args.receipt else None):
        sys.exit(1)


def _cmd_rebuild_mlflow(args) -> None:
    from jest.tracking.mlflow_rebuild import rebuild
    if rebuild(load_config(args.config)):
        sys.exit(1)


def _cmd_preflight(args) -> None:
    """One line per artifact; exit 1 naming every missing one and the ways to provide it."""
    from jest.sources import SourcesError, preflight
    cfg = load_config(args.config)
    try:
        report = preflight(cfg, check_registry=not args.no_registry, cache_dir=args.cache,
                           config_hint=f"--config {args.config}")
    except SourcesError as err:
        print("\n".join(err.report.lines()) if err.report else "", flush=True)
        raise
    print("\n".join(report.lines()))
    print(f"ok: {len(report.checks)} artifact(s) for {args.config}, cache {report.cache_dir}"
          + (" (as at the last pass: files unchanged)" if report.from_stamp else "")
          + "; lm-eval's hub datasets: python -m jest.evaluation.preflight --config " + args.config)


def _cmd_sources(args) -> None:
    from jest.sources import export_sources, import_sources
    if args.action == "export":
        if not args.config:
            raise ConfigError("sources export needs --config CONFIG (the config says which artifacts)")
        manifest = export_sources(load_config(args.config), Path(args.dir), cache_dir=args.cache)
        for entry in manifest["artifacts"]:
            print(f"exported  {entry['spec']:45s} {entry['escrow_path']}  sha256 {entry['sha256']}")
        for entry in manifest["skipped"]:
            print(f"skipped   {entry['spec']:45s} {entry['why']}")
        print(f"manifest: {Path(args.dir) / 'manifest.json'}")
        return
    cfg = load_config(args.config) if args.config else None
    if args.cache is None and cfg is None:
        raise ConfigError("sources import needs --config CONFIG (its cache dir) or --cache DIR")
    from jest.config import cache_root
    cache = Path(args.cache) if args.cache else cache_root(cfg)
    print("\n".join(import_sources(Path(args.dir), cache, cfg=cfg)))


def _mirror_runs(run_dirs: list[Path], uri: str | None, receipt: Path | None) -> int:
    """Mirror each run into MLflow (jest.tracking.records.mirror_run); the receipt once MLflow holds every
    point. Returns how many runs are not fully mirrored (the callers exit 1 on any)."""
    from jest.tracking.records import mirror_run, write_receipt
    failed = 0
    for run_dir in run_dirs:
        mirror, ok, missing = mirror_run(run_dir, uri)
        print(f"{run_dir}: {'synced' if ok else 'FAILED'} (points missing in MLflow: {missing})"
              + ("" if ok or not mirror.last_error else f": {mirror.last_error}"))
        failed += not ok
        if ok and receipt:
            write_receipt(receipt, mirror, missing)
    return failed


def _cmd_policies(args) -> None:
    from jest.experiment import load_config
    from jest.policies.registry import get_spec, registered_names
    if args.config:
        load_config(args.config)  # registers its plugins
    for name in registered_names():
        spec = get_spec(name)
        where = spec.build if isinstance(spec.build, str) else f"{spec.build.__module__}.{spec.build.__qualname__}"
        print(f"{name}  [{spec.group}{', ' + spec.role if spec.role else ''}]  {where}\n    {spec.summary}")
        for key, schema in spec.keys.items():
            limits = ", ".join(f"{k} {v}" for k, v in schema.items() if k in ("minimum", "maximum", "exclusiveMinimum",
                                                                               "exclusiveMaximum", "enum"))
            print(f"    {key} (default {schema.get('default')!r}{'; ' + limits if limits else ''}): "
                  f"{schema.get('description', '')}")
        for key, value in spec.fixed.items():
            print(f"    {key} = {value!r} (fixed)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a config and print it with defaults filled")
    p.add_argument("config")
    p.set_defaults(func=_cmd_check_config)

    def command(name, func, help, required, threads=False, progress=False):
        """A subcommand with required path-like options (and the shared --threads / --no-progress)."""
        p = sub.add_parser(name, help=help)
        for flag in required:
            p.add_argument(f"--{flag}", required=True)
        if threads:
            p.add_argument("--threads", type=int, default=None)
        if progress:
            p.add_argument("--no-progress", action="store_true")
        p.set_defaults(func=func)
        return p

    command("prepare-data", _cmd_prepare_data, "fetch the pinned sources and write the splits",
            ("config", "out", "cache"))
    command("train-tokenizer", _cmd_train_tokenizer, "train the byte-level BPE on curated + pool",
            ("config", "data", "out"))
    command("build-shards", _cmd_build_shards, "tokenize the splits into fixed-length sequences",
            ("config", "data", "tokenizer", "out"))
    p = command("train", _cmd_train, "train one arm x seed (resumes from its last checkpoint)",
                ("config", "arm", "run-dir", "shards", "tokenizer"), threads=True, progress=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--references", help="folder holding references/<name>/ (JEST arms)")
    p.add_argument("--lr-choice", help="scale ladder: the rung sweep's choice (default: "
                                       "<run-dir>/../../ladder/lr_choice/<rung>.json)")
    command("train-reference", _cmd_train_reference, "train a reference model on the curated split",
            ("config", "ref", "run-dir", "shards", "tokenizer"), threads=True, progress=True)
    p = command("score-reference", _cmd_score_reference, "reference loss of every pool sequence, cached on disk",
                ("config", "ref-dir", "shards"), threads=True, progress=True)
    p.add_argument("--batch-size", type=int, default=16)
    command("build-tasks", _cmd_build_tasks, "write the lm-eval task YAMLs and data files",
            ("config", "heldout", "out", "cache"))
    p = command("evaluate", _cmd_evaluate, "lm-eval on runs' saved snapshots (--tasks: the build-tasks folder)",
                ("config", "tasks"), threads=True)
    p.add_argument("--run-dir", action="append", required=True,
                   help="a training run's folder; repeat it to evaluate several runs in this one process")
    p.add_argument("--receipt", action="append",
                   help="then mirror the run (training and lm-eval rows) into MLflow, as sync-mlflow does, and "
                        "write this receipt once MLflow holds every point; one per --run-dir, in the same order")

    p = command("preflight", _cmd_preflight, "check that every external artifact is cached or still served "
                "(exit 1 naming each missing one)", ("config",))
    p.add_argument("--cache", help="the source cache (default: the config's cache dir)")
    p.add_argument("--no-registry", action="store_true", help="do not ask registries: uncached means missing")
    p = sub.add_parser("doctor", help="is this machine ready for the config? one line per need (data, datasets, "
                                      "CUDA, GPU memory, bf16, disk, versions); exit 1 if one is missing")
    p.add_argument("--config", required=True)
    p.add_argument("--cache", help="the source cache (default: the config's cache dir)")
    p.set_defaults(func=lambda a: sys.exit(importlib.import_module("jest.doctor").main(a.config, a.cache)))
    p = sub.add_parser("sources", help="escrow: export the config's external artifacts to a folder, or import "
                                       "a folder into the cache (verified against its manifest and the pins)")
    p.add_argument("action", choices=("export", "import"))
    p.add_argument("dir", help="the escrow folder")
    p.add_argument("--config", help="export: the config whose artifacts to export (required); import: report "
                                    "what it still lacks, and its cache dir is the default --cache")
    p.add_argument("--cache", help="the source cache (default: the config's cache dir)")
    p.set_defaults(func=_cmd_sources)

    p = sub.add_parser("sync-mlflow", help="push any metric points MLflow lacks (idempotent)")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--receipt", help="write a JSON receipt here once MLflow holds every point")
    p.add_argument("--tracking-uri", help="push to this MLflow store instead of the run's configured one "
                                          "(e.g. when the configured server is gone)")
    p.set_defaults(func=_cmd_sync_mlflow)

    command("rebuild-mlflow", _cmd_rebuild_mlflow, "recreate the MLflow store from the run folders (a deleted or "
            "damaged store; the old file is moved aside, new run ids, receipts rewritten)", ("config",))

    p = sub.add_parser("mlflow-ui", help="serve the MLflow UI (127.0.0.1) opened on the headline runs table")
    p.add_argument("--config", required=True)
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=lambda a: importlib.import_module("jest.tracking.mlflow_ui").main(a.config, a.port))

    p = sub.add_parser("verdict", help="print the finding: claims, multipliers, controls, paired verdicts, "
                                       "agreement with the committed reference, and where the report is")
    p.add_argument("summary", nargs="?", help="a report's summary.json (default: the --config's report)")
    p.add_argument("--summary", dest="summary_opt", metavar="SUMMARY_JSON", help="the same, as an option")
    p.add_argument("--config", default="config/tiny.yaml")
    p.set_defaults(func=lambda a: sys.exit(importlib.import_module("jest.verdict").main(a.summary_opt or a.summary,
                                                                                        a.config)))

    p = sub.add_parser("policies", help="list the registered batch policies (with a config: its plugins' too), "
                                        "each with its arm keys, defaults and ranges")
    p.add_argument("--config", help="a config whose 'plugins' are loaded first")
    p.set_defaults(func=_cmd_policies)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, MetricsError, MlflowStoreError) as err:  # each names the file or key and the fix
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
