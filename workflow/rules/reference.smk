# Reference stage: train each reference model on the curated split (same loop, uniform
# policy), then score every pool sequence with it once (jest/training/trainer.py, jest/policies/scoring.py).


rule train_reference:
    input:
        shards=rules.build_shards.output.manifest,
        tokenizer=rules.train_tokenizer.output,
    output:
        card=ROOT / "references" / "{ref}" / "card.json",
        metrics=ROOT / "references" / "{ref}" / "metrics.jsonl",
        model=ROOT / "references" / "{ref}" / "model" / "model.safetensors",
    params:
        config=CONFIG_SNAPSHOT,
        trigger=lambda wc: config_hash(CFG["references"][wc.ref]),
        run_dir=lambda wc: ROOT / "references" / wc.ref,
        shards=ROOT / "shards",
        tokenizer=ROOT / "tokenizer",
    threads: 2
    # The reference chain (train, score, then the JEST arms) is the DAG's critical path: when a core
    # frees up, start it before the uniform runs and evaluations that can wait (docs/benchmarks.md).
    priority: 40
    conda:
        ENV
    log:
        ROOT / "logs" / "train_reference" / "{ref}.log",
    shell:
        logged("python -m jest train-reference --config {params.config:q} --ref {wildcards.ref} "
        "--run-dir {params.run_dir:q} --shards {params.shards:q} --tokenizer {params.tokenizer:q} "
        "--threads {threads}")


rule score_reference:
    input:
        model=rules.train_reference.output.model,
        shards=rules.build_shards.output.pool,
    output:
        scores=ROOT / "references" / "{ref}" / "pool_scores.npy",
        meta=ROOT / "references" / "{ref}" / "pool_scores.json",
    params:
        config=CONFIG_SNAPSHOT,
        ref_dir=lambda wc: ROOT / "references" / wc.ref,
        shards=ROOT / "shards",
    threads: 2
    priority: 40  # critical path, as train_reference
    conda:
        ENV
    log:
        ROOT / "logs" / "score_reference" / "{ref}.log",
    shell:
        logged("python -m jest score-reference --config {params.config:q} --ref-dir {params.ref_dir:q} "
        "--shards {params.shards:q} --threads {threads}")
