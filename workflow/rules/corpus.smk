# The large registry corpus (data.preset: large) as one target: `snakemake corpus --cores 2
# --configfile config/large.yaml` fetches, extracts, splits, tokenizes and shards it through the data rules
# (the library dispatches on data.preset) and stops there.


rule corpus:
    input:
        rules.build_shards.output.manifest,
