# Training stage: one job per arm x seed, all through the same loop (jest/training/trainer.py),
# mirrored into MLflow while it trains (mlflow.live), and once more by its evaluate job, which makes
# sure MLflow holds every metric point of the run (workflow/rules/evaluate.smk).

# `python`, or torchrun with one process per GPU when train.nproc_per_node > 1 (jest/training/distributed.py).
# The count is an integer of the validated config, never free text from it.
_NPROC = int(CFG["train"]["nproc_per_node"])
TRAIN_LAUNCHER = "python" if _NPROC == 1 else f"torchrun --standalone --nproc_per_node {_NPROC}"


rule train:
    input:
        unpack(reference_inputs),
        unpack(trunk_inputs),
        shards=rules.build_shards.output.manifest,
        tokenizer=rules.train_tokenizer.output,
    output:
        card=ROOT / "runs" / "{arm}_s{seed}" / "card.json",
        metrics=ROOT / "runs" / "{arm}_s{seed}" / "metrics.jsonl",
        model=ROOT / "runs" / "{arm}_s{seed}" / "model" / "model.safetensors",
    wildcard_constraints:
        seed=r"\d+",
    params:
        config=CONFIG_SNAPSHOT,
        # "model=.. train=.. device=.. arm=..": a re-plan's "Params have changed" names the section
        trigger=lambda wc: section_hashes(model=CFG["model"], train=CFG["train"], device=CFG["device"],
                                          arm=CFG["arms"][wc.arm]),
        run_dir=lambda wc: run_dir(wc.arm, wc.seed),
        shards=ROOT / "shards",
        tokenizer=ROOT / "tokenizer",
        references=ROOT / "references",
        launcher=TRAIN_LAUNCHER,
    threads: 2
    priority: seed_priority  # common.smk: a seed's runs finish together, so its evaluation starts early
    conda:
        ENV
    log:
        ROOT / "logs" / "train" / "{arm}_s{seed}.log",
    shell:
        logged("{params.launcher} -m jest train --config {params.config:q} --arm {wildcards.arm} --seed {wildcards.seed} "
        "--run-dir {params.run_dir:q} --shards {params.shards:q} --tokenizer {params.tokenizer:q} "
        "--references {params.references:q} --threads {threads}")
