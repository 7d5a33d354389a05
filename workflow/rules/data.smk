# Data stage: pinned sources -> splits -> tokenizer -> fixed-length shards (jest/data, jest/tokenizer, jest/shards).


rule prepare_data:
    input:
        data_input_files,  # bring-your-own files (common.smk); the pinned packages are checked by sha256
    output:
        curated=ROOT / "data" / "curated.jsonl",
        heldout=ROOT / "data" / "heldout.jsonl",
        pool=ROOT / "data" / "pool.jsonl",
        manifest=ROOT / "data" / "manifest.json",
    params:
        config=CONFIG_SNAPSHOT,
        trigger=data_trigger(),  # the data section and the bring-your-own files' content (common.smk)
        out=ROOT / "data",
        cache=CACHE,
    conda:
        ENV
    log:
        ROOT / "logs" / "prepare_data.log",
    shell:
        logged("python -m jest prepare-data --config {params.config:q} --out {params.out:q} --cache {params.cache:q}")


rule train_tokenizer:
    input:
        curated=rules.prepare_data.output.curated,
        pool=rules.prepare_data.output.pool,
    output:
        ROOT / "tokenizer" / "tokenizer.json",
    params:
        config=CONFIG_SNAPSHOT,
        trigger=section_hash("data"),
        data=ROOT / "data",
        out=ROOT / "tokenizer",
    conda:
        ENV
    log:
        ROOT / "logs" / "train_tokenizer.log",
    shell:
        logged("python -m jest train-tokenizer --config {params.config:q} --data {params.data:q} --out {params.out:q}")


rule build_shards:
    input:
        tokenizer=rules.train_tokenizer.output,
        data=rules.prepare_data.output,
    output:
        manifest=ROOT / "shards" / "manifest.json",
        pool=ROOT / "shards" / "pool.tokens.npy",
        heldout=ROOT / "shards" / "heldout.tokens.npy",
        curated=ROOT / "shards" / "curated.tokens.npy",
    params:
        config=CONFIG_SNAPSHOT,
        trigger=section_hash("data"),
        data=ROOT / "data",
        tokenizer=ROOT / "tokenizer",
        out=ROOT / "shards",
    conda:
        ENV
    log:
        ROOT / "logs" / "build_shards.log",
    shell:
        logged("python -m jest build-shards --config {params.config:q} --data {params.data:q} "
        "--tokenizer {params.tokenizer:q} --out {params.out:q}")
