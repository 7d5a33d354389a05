"""One process of the multi-process tests in test_ddp.py: run by torchrun (one copy per rank)
or called in-process as the single-process reference.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train/ddp_worker.py JOB.json

Under torchrun it first checks jest.training.distributed's collectives (uneven shards gathered in
order, disagreeing ranks caught), then, in the same process group, runs jest.training.trainer.train
on each job of JOB.json in turn (one launch, several runs: starting processes is most of the
cost on CPU), with the policy's choices recorded per step, one file per rank
(<run>.chosen_rank<r>.json next to the run folder), so that the test can compare the
sub-batches 1 and 2 processes chose.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def run_training(job: dict) -> None:
    """Train the run described by `job` (RunSpec fields + threads), recording the choices: the arm's
    policy is re-registered under another name (the plugin point, jest.policies.registry) with a
    build that wraps the real one and records what its `select` chose."""
    from dataclasses import replace

    from jest.policies.registry import build_policy, get_spec, register_policy
    from jest.training import trainer

    rank = int(os.environ.get("RANK", "0"))
    record = Path(job["run_dir"]).with_name(f"{Path(job['run_dir']).name}.chosen_rank{rank}.json")
    chosen: dict[int, list[int]] = {}
    arm = job["cfg"]["arms"][job["arm"]]

    def build_recording(arm_cfg, ctx):
        policy = build_policy({**arm_cfg, "policy": arm["policy"]}, ctx)
        select = policy.select

        def recording_select(step, *args, **kwargs):
            selection = select(step, *args, **kwargs)
            chosen[step] = selection.chosen.tolist()
            return selection

        policy.select = recording_select
        return policy

    recording = f"recording_{arm['policy']}"
    register_policy(replace(get_spec(arm["policy"]), name=recording, build=build_recording))
    cfg = {**job["cfg"], "arms": {**job["cfg"]["arms"], job["arm"]: {**arm, "policy": recording}}}
    spec = trainer.RunSpec(cfg=cfg, arm=job["arm"], seed=job["seed"], run_dir=Path(job["run_dir"]),
                           shards_dir=Path(job["shards"]), tokenizer_dir=Path(job["tokenizer"]),
                           references_root=Path(job["references"]) if job.get("references") else None)
    trainer.train(spec, threads=job.get("threads", 1), progress=False)
    record.write_text(json.dumps(chosen))


def check_collectives(world) -> None:
    """gather_rows puts uneven shards back in order; check_agreement raises when ranks differ."""
    import numpy as np
    import torch

    assert world.world_size == 2, world
    n = 7  # 4 + 3 rows: the shards are uneven
    rows = torch.arange(n * 3, dtype=torch.float32).view(n, 3)
    gathered = world.gather_rows(rows[world.shard(n)] * 1.0, n)
    assert torch.equal(gathered, rows), gathered
    world.check_agreement(np.arange(4), step=1)  # the same choice everywhere: passes
    try:
        world.check_agreement(np.arange(4) + world.rank, step=2)
    except RuntimeError as err:
        assert "different sub-batches at step 2" in str(err), err
    else:
        raise AssertionError("ranks with different choices were not caught")
    mean = world.mean(torch.tensor(float(world.rank)))
    assert mean.item() == 0.5, mean
    print(f"rank {world.rank}: collectives ok", flush=True)


if __name__ == "__main__":
    import torch

    from jest.training.distributed import init_world

    world = init_world(torch.device("cpu"))  # train() finds this process group and leaves it open
    try:
        check_collectives(world)
        for job in json.loads(Path(sys.argv[1]).read_text()):
            run_training(job)
    finally:
        world.close()
