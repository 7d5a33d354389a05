"""Developer tools outside the library's import graph: the benchmark (python -m tools.bench) and the
job timeline of a Snakemake run (python -m tools.timeline). Nothing in jest/, baselines/ or analysis/
imports them."""
