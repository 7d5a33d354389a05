"""Multi-process (multi-GPU) training under torchrun: one process per device, one global JEST step.

Launched as `torchrun --standalone --nproc_per_node N -m jest train ...` (the train
rule does this when `train.nproc_per_node` > 1), every process runs the same
training loop. What makes N processes equal one process with the same global
batch:

* every rank reads the same global super-batch (same sampler, same seed, same
  position), so candidate k is the same sequence on every rank;
* scoring is sharded: rank r scores rows `shard_bounds(B, W, r)` of the
  super-batch, and `gather_rows` puts the per-candidate losses (and pooled
  features) back together in candidate order on every rank;
* selection then runs on identical inputs with the same per-(seed, step)
  generator, so every rank picks the same sub-batch (`check_agreement` verifies
  it cheaply at logged steps);
* rank r trains on its contiguous slice of the chosen b (b / W each);
  DistributedDataParallel averages the gradients, which makes the update the
  full-batch update of one process (up to float rounding).

Only rank 0 writes files (metrics, card, checkpoints, snapshots, MLflow). A
single process (no torchrun, or WORLD_SIZE = 1) gets a `World` whose collectives
are no-ops, so the single-process path runs exactly the code it ran before.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes, and the collectives the loop needs."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this World initialised the process group (and destroys it in close())

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file; the others write nothing."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ---- work split -----------------------------------------------------------------------
    def shard(self, n: int) -> slice:
        """This rank's rows of n candidates (for scoring)."""
        lo, hi = shard_bounds(n, self.world_size, self.rank)
        return slice(lo, hi)

    def batch_slice(self, b: int) -> slice:
        """This rank's part of the chosen global batch b (for training); b must split evenly,
        or the ranks' gradients would be averaged with the wrong weights."""
        check_batch_divides(b, self.world_size)
        per_rank = b // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    # ---- collectives (no-ops for one process) ---------------------------------------------
    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """The rows every rank computed for its `shard(n)`, concatenated in candidate order."""
        if not self.distributed:
            return local
        sizes = [hi - lo for lo, hi in (shard_bounds(n, self.world_size, r) for r in range(self.world_size))]
        # all_gather needs equal shapes: pad every shard to the largest, trim after.
        pad = max(sizes) - local.size(0)
        padded = torch.cat([local, local.new_zeros((pad, *local.shape[1:]))]) if pad else local.contiguous()
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean over ranks of a per-rank scalar (each rank's batch slice has the same size).
        SUM then divide: gloo has no AVG reduction."""
        if not self.distributed:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def check_agreement(self, chosen: np.ndarray, step: int) -> None:
        """Raise if the ranks chose different sub-batches: a selection that is not synchronised
        would silently train each rank on another batch. One 8-byte all_gather."""
        if not self.distributed:
            return
        digest = hashlib.sha256(np.ascontiguousarray(chosen, dtype=np.int64).tobytes()).digest()
        mine = torch.tensor([int.from_bytes(digest[:8], "little", signed=True)], dtype=torch.int64,
                            device=self.device)
        every = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(every, mine)
        values = [int(t.item()) for t in every]
        if len(set(values)) > 1:
            raise RuntimeError(f"ranks chose different sub-batches at step {step} (checksums {values}); "
                               "selection must see the same scores and generator on every rank")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """Contiguous, as equal as possible (the first n % W ranks get one more row): [lo, hi)."""
    q, r = divmod(n, world_size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


def check_batch_divides(b: int, world_size: int) -> None:
    if b % world_size:
        raise ValueError(f"'train.batch_size' = {b} must be divisible by the number of training processes "
                         f"({world_size}, 'train.nproc_per_node' / torchrun --nproc_per_node): every process "
                         f"trains on an equal slice of the batch; allowed values of 'train.nproc_per_node': "
                         f"{[w for w in range(1, b + 1) if b % w == 0]}")


def init_world(device: torch.device) -> World:
    """The World of this process: under torchrun (WORLD_SIZE > 1) join the process group
    (nccl on CUDA, gloo on CPU) and take this rank's GPU; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                **({"device_id": device} if device.type == "cuda" else {}))
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise RuntimeError(f"process group ({dist.get_rank()} of {dist.get_world_size()}) does not match "
                           f"the environment (RANK={rank}, WORLD_SIZE={world_size})")
    return World(rank=rank, world_size=world_size, device=device, owns_group=owns)
