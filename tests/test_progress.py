"""Live progress lines (jest/training/progress.py) and the attempt-keeping job logs (jest/joblog.py), each
on the real thing: a clock-driven reporter, the wrapped shell command run by bash. The verdict print is
tests/test_verdict.py."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from jest.config import PROJECT_ROOT
from jest.joblog import logged
from jest.training.progress import PROGRESS_FD_ENV, Progress, format_duration


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _run(total: int, seconds_per_step: float, start: int = 0) -> list[str]:
    clock, out = Clock(), io.StringIO()
    progress = Progress("jest_f0.5_s0", total, start, tokens_per_step=1024, streams=[out], clock=clock)
    for step in range(start + 1, total + 1):
        clock.t += seconds_per_step
        progress.update(step, loss=6.0 - step / total)
    return out.getvalue().splitlines()


def test_a_line_every_tenth_of_the_run_with_rate_and_eta():
    lines = _run(200, 0.5)
    assert len(lines) == 10
    assert lines[0] == "[jest_f0.5_s0] step 20/200 (10%) loss 5.900 | 2,048 tok/s | ETA 1m30s"
    assert lines[-1].startswith("[jest_f0.5_s0] step 200/200 (100%) loss 5.000 | 2,048 tok/s | done")


def test_slow_steps_add_a_line_every_30_seconds_not_more():
    lines = _run(20, 40.0)       # every step takes longer than 30 s: one line per step, never more
    assert len(lines) == 20 and "ETA 12m40s" in lines[0]
    assert len(_run(100_000, 0.001)) == 10   # fast steps: 10 lines, not 100,000


def test_a_resumed_run_counts_from_its_checkpoint():
    lines = _run(100, 1.0, start=40)
    assert lines[0].startswith("[jest_f0.5_s0] step 50/100 (50%)") and len(lines) == 6


def test_durations_read_like_a_clock():
    assert [format_duration(s) for s in (5, 65, 3600 * 2 + 61)] == ["5s", "1m05s", "2h01m"]


def test_progress_goes_to_the_fd_the_workflow_names(tmp_path):
    """JEST_PROGRESS_FD (what the rules set, pointing at Snakemake's terminal) gets the lines too."""
    code = ("from jest.training.progress import Progress\n"
            "p = Progress('uniform_s0', 10, 0, 100)\n"
            "[p.update(s, 1.0) for s in range(1, 11)]\n")
    r, w = os.pipe()
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, PROGRESS_FD_ENV: str(w)},
                          pass_fds=(w,), capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    os.close(w)
    with os.fdopen(r) as side:
        terminal = side.read().splitlines()
    assert terminal == proc.stdout.splitlines() and len(terminal) == 10


def test_a_wrapped_job_keeps_every_attempt_and_its_exit_status(tmp_path):
    """The rules' command wrapper, formatted as Snakemake does and run by bash: the log holds this
    attempt, <log>.attempts every attempt, fd 3 (the terminal) only the progress lines."""
    log = tmp_path / "logs" / "train.log"
    log.parent.mkdir()
    job = ("python -c \"import sys; from tqdm import tqdm; from jest.training.progress import Progress; "
           "p = Progress('arm_s0', 2, 0, 8); [None for _ in tqdm(range(3), desc='a library bar')]; "
           "p.update(1, 2.0); p.update(2, 1.5); print('a warning', file=sys.stderr); sys.exit(int(sys.argv[1]))\" {code}")
    for code in (3, 0):
        log.unlink(missing_ok=True)  # as Snakemake does before each attempt
        cmd = logged(job).replace("{rule}", "train").replace("{log:q}", str(log)).replace("{code}", str(code))
        cmd = cmd.replace("{{", "{").replace("}}", "}")
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=PROJECT_ROOT)
        assert proc.returncode == code                    # pipefail: the job's status, not tee's
        assert [line.split(" | ")[0] for line in proc.stderr.splitlines()] == [
            "[arm_s0] step 1/2 (50%) loss 2.000", "[arm_s0] step 2/2 (100%) loss 1.500"]
    current, attempts = log.read_text(), (tmp_path / "logs" / "train.log.attempts").read_text()
    assert current.startswith("=== attempt started ") and current.count("=== attempt") == 1
    assert "a warning" in current and attempts.count("=== attempt started ") == 2 and attempts.endswith(current)
    assert "\r" not in attempts and "a library bar" not in attempts   # third-party tqdm bars are off in jobs


def test_the_eta_uses_the_mean_rate_so_one_slow_step_does_not_swing_it():
    clock, out = Clock(), io.StringIO()
    progress = Progress("uniform_s0", 100, 0, tokens_per_step=10, streams=[out], clock=clock)
    for step in range(1, 31):
        clock.t += 60.0 if step == 20 else 1.0      # one step (an evaluation, a checkpoint) takes a minute
        progress.update(step)
    last = out.getvalue().splitlines()[-1]
    assert last == "[uniform_s0] step 30/100 (30%) | 10 tok/s | ETA 3m28s"   # 70 steps x 89 s / 30
