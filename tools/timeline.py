"""The job timeline of a Snakemake run, from its log: how busy the cores were, and the critical path.

    python -m tools.timeline .snakemake/log/<run>.snakemake.log [--cores 2] [--json PATH]

Snakemake (8 and 9) logs every job it starts as a timestamp line, the rule, its input,
output, jobid and threads (a job with 1 thread has no `threads:` line), and every job it
finishes as a timestamp line plus "Finished jobid: N" (Snakemake 9) or "Finished job N."
(Snakemake 8). From that:

* per job: rule, start, end, threads (the threads Snakemake gave it, after --cores scaling);
* busy cores over time: the sum of the threads of the jobs running, against --cores; the
  run's core utilisation is core-seconds used / (cores x makespan). A job that uses fewer
  cores than it was given (lm-eval's Python parts, I/O) is not visible here: this counts
  what the scheduler handed out, the upper bound of what ran;
* the critical path: the chain of jobs, each an input producer of the next, with the
  largest summed duration (edges from an input file of one job matching an output file of
  another). With unlimited cores the run could not be shorter than this; the gap between
  makespan and critical path is what more cores (or better packing) could win.
Timestamps have a resolution of one second; jobs shorter than that count as 0 s.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FIELD = re.compile(r"^\s+(input|output|jobid|threads|wildcards): (.*)$")
_FINISHED = re.compile(r"^Finished job(?:id:)? (\d+)")


@dataclass
class Job:
    jobid: int
    rule: str
    start: float
    end: float | None = None
    threads: int = 1
    wildcards: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end or self.start) - self.start


def _stamp(text: str) -> float:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").timestamp()


def parse_log(text: str) -> list[Job]:
    """Jobs in start order; a job with no finish line (failed, or the run was cut) has end None."""
    jobs: dict[int, Job] = {}
    now: float | None = None
    current: Job | None = None
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m:
            now, current = _stamp(m.group(1)), None
            continue
        m = _RULE.match(line)
        if m and now is not None:
            current = Job(jobid=-1, rule=m.group(1), start=now)
            continue
        m = _FIELD.match(line)
        if m and current is not None:
            key, value = m.groups()
            if key == "jobid":
                current.jobid = int(value)
                jobs[current.jobid] = current
            elif key == "threads":
                current.threads = int(value)
            elif key == "wildcards":
                current.wildcards = value.strip()
            else:
                setattr(current, key + "s", [v.strip() for v in value.split(",") if v.strip()])
            continue
        m = _FINISHED.match(line)
        if m and now is not None and int(m.group(1)) in jobs:
            jobs[int(m.group(1))].end = now
    return sorted(jobs.values(), key=lambda j: (j.start, j.jobid))


def critical_path(jobs: list[Job]) -> tuple[float, list[Job]]:
    """(summed seconds, jobs) of the longest dependency chain (producer -> consumer by file)."""
    producer = {out: j for j in jobs for out in j.outputs}
    best: dict[int, tuple[float, list[Job]]] = {}

    def longest(job: Job) -> tuple[float, list[Job]]:
        if job.jobid not in best:
            parents = {producer[i].jobid: producer[i] for i in job.inputs if i in producer and producer[i] is not job}
            chains = [longest(p) for p in parents.values()]
            before = max(chains, key=lambda c: c[0], default=(0.0, []))
            best[job.jobid] = (before[0] + job.seconds, before[1] + [job])
        return best[job.jobid]

    return max((longest(j) for j in jobs), key=lambda c: c[0], default=(0.0, []))


def summarize(jobs: list[Job], cores: int) -> dict:
    """Makespan, core utilisation, seconds with idle cores, per-rule totals, the critical path."""
    done = [j for j in jobs if j.end is not None]
    if not done:
        raise ValueError("no finished job in the log: was it a dry run, or did the first job fail?")
    t0, t1 = min(j.start for j in done), max(j.end for j in done)
    makespan = t1 - t0
    used = sum(min(j.threads, cores) * j.seconds for j in done)
    # busy cores per second of the run (1 s resolution, as the log's timestamps)
    busy = [0] * max(1, int(makespan))
    for j in done:
        for s in range(int(j.start - t0), int(j.end - t0)):
            busy[s] += min(j.threads, cores)
    rules: dict[str, dict] = {}
    for j in done:
        r = rules.setdefault(j.rule, {"jobs": 0, "seconds": 0.0, "threads": j.threads})
        r["jobs"] += 1
        r["seconds"] += j.seconds
    path_s, path = critical_path(done)
    return {"cores": cores, "jobs": len(done), "unfinished": [j.rule for j in jobs if j.end is None],
            "makespan_s": makespan, "core_seconds_used": used,
            "core_utilisation": used / (cores * makespan) if makespan else None,
            "seconds_with_idle_cores": sum(1 for b in busy if b < cores),
            "seconds_oversubscribed": sum(1 for b in busy if b > cores),
            "rules": rules, "critical_path_s": path_s,
            "critical_path": [{"rule": j.rule, "wildcards": j.wildcards, "seconds": j.seconds,
                               "threads": j.threads} for j in path],
            "jobs_detail": [asdict(j) | {"start": j.start - t0, "end": j.end - t0} for j in done]}


def report(s: dict) -> str:
    lines = [f"{s['jobs']} jobs, makespan {s['makespan_s']:.0f} s on {s['cores']} cores; core utilisation "
             f"{100 * s['core_utilisation']:.0f}% (threads handed out x seconds / cores x makespan); "
             f"{s['seconds_with_idle_cores']} s with an idle core",
             f"critical path {s['critical_path_s']:.0f} s ({100 * s['critical_path_s'] / s['makespan_s']:.0f}% "
             "of the makespan):"]
    lines += [f"  {p['seconds']:6.0f} s  {p['rule']} {p['wildcards']} ({p['threads']} thread"
              f"{'s' if p['threads'] > 1 else ''})" for p in s["critical_path"]]
    lines.append("per rule (jobs, summed wall seconds, threads):")
    lines += [f"  {name:20s} {r['jobs']:3d} {r['seconds']:7.0f} s  {r['threads']}" for name, r in
              sorted(s["rules"].items(), key=lambda kv: -kv[1]["seconds"])]
    lines.append("timeline (s from the start: rule, threads):")
    lines += [f"  {j['start']:6.0f} -> {j['end']:6.0f}  {j['rule']} {j['wildcards']} ({j['threads']})"
              for j in s["jobs_detail"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.timeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="a Snakemake log, .snakemake/log/<time>.snakemake.log")
    parser.add_argument("--cores", type=int, default=2, help="the --cores the run had")
    parser.add_argument("--json", default=None, help="write the summary (every job included) to this file")
    args = parser.parse_args(argv)
    path = Path(args.log)
    if not path.is_file():
        parser.error(f"{path}: no such log; Snakemake writes one per run under .snakemake/log/")
    s = summarize(parse_log(path.read_text()), args.cores)
    print(report(s))
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
