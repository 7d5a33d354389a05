"""Evaluation: held-out loss during training (heldout, heldout_sets), the lm-eval suites and their
items (tasks, items, suites), checkpoint evaluation and aggregation (evaluate, runner), the BIG-bench
source package (bigbench), and the preflight of external sources (preflight). Import the module you
need: this package imports none of them, so the trainer's held-out loss never loads lm-eval."""
