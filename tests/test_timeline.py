"""tools.timeline: a Snakemake 9 log (the format copied from a real smoke run) -> busy cores, critical path."""
from __future__ import annotations

import pytest

from tools import timeline

LOG = """Building DAG of jobs...
Execute 1 jobs...

[Tue Dec  1 21:55:11 2026]
localrule prepare_data:
    output: r/data/curated.jsonl, r/data/pool.jsonl
    log: r/logs/prepare_data.log
    jobid: 6
    reason: Missing output files: r/data/pool.jsonl
    resources: tmpdir=/tmp
Shell command: python -m jest prepare-data > r/logs/prepare_data.log 2>&1
[Tue Dec  1 21:55:21 2026]
Finished jobid: 6 (Rule: prepare_data)
1 of 4 steps (25%) done
Execute 2 jobs...

[Tue Dec  1 21:55:21 2026]
localrule train_reference:
    input: r/data/curated.jsonl
    output: r/references/ref
    log: r/logs/ref.log
    jobid: 3
    wildcards: ref=ref
    threads: 2
    resources: tmpdir=/tmp
Shell command: python -m jest train-reference --threads 2

[Tue Dec  1 21:55:21 2026]
localrule build_tasks:
    input: r/data/pool.jsonl
    output: r/tasks/tasks.json
    jobid: 8
    resources: tmpdir=/tmp
[Tue Dec  1 21:55:23 2026]
Finished jobid: 8 (Rule: build_tasks)
[Tue Dec  1 21:56:01 2026]
Finished jobid: 3 (Rule: train_reference)
Execute 1 jobs...

[Tue Dec  1 21:56:01 2026]
localrule train:
    input: r/references/ref, r/data/pool.jsonl
    output: r/runs/uniform_s0/final
    jobid: 2
    wildcards: arm=uniform, seed=0
    resources: tmpdir=/tmp
[Tue Dec  1 21:56:31 2026]
Finished job 2.
[Tue Dec  1 21:56:31 2026]
localrule evaluate:
    input: r/runs/uniform_s0/final, r/tasks/tasks.json
    output: r/runs/uniform_s0/eval
    jobid: 1
"""


def test_parse_log_reads_every_job():
    jobs = timeline.parse_log(LOG)
    assert [(j.rule, j.jobid, j.threads) for j in jobs] == [
        ("prepare_data", 6, 1), ("train_reference", 3, 2), ("build_tasks", 8, 1), ("train", 2, 1), ("evaluate", 1, 1)]
    assert [j.seconds for j in jobs[:4]] == [10, 40, 2, 30]
    assert jobs[-1].end is None  # started, never finished (a failed job or a cut run)
    assert jobs[3].wildcards == "arm=uniform, seed=0" and jobs[3].inputs == ["r/references/ref", "r/data/pool.jsonl"]


def test_summary_utilisation_and_critical_path():
    s = timeline.summarize(timeline.parse_log(LOG), cores=2)
    assert s["makespan_s"] == 80 and s["jobs"] == 4 and s["unfinished"] == ["evaluate"]
    # core-seconds handed out: 10x1 + 40x2 + 2x1 (beside the 2-thread reference: oversubscribed) + 30x1
    assert s["core_seconds_used"] == 122 and s["core_utilisation"] == pytest.approx(122 / 160)
    assert s["seconds_oversubscribed"] == 2
    assert s["seconds_with_idle_cores"] == 10 + 30  # prepare_data and train ran on 1 of 2 cores
    # prepare_data -> train_reference -> train (build_tasks is off the path)
    assert [p["rule"] for p in s["critical_path"]] == ["prepare_data", "train_reference", "train"]
    assert s["critical_path_s"] == 80
    assert "critical path 80 s" in timeline.report(s)


def test_no_finished_job_is_a_clear_error():
    with pytest.raises(ValueError, match="no finished job"):
        timeline.summarize(timeline.parse_log(LOG.split("[Tue Dec  1 21:55:21 2026]")[0]), cores=2)
