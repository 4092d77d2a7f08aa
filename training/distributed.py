"""Training on N processes (torch.distributed) with the loss of one process on the whole batch.

Every rank builds the same global batch (the plan and each step's draw are fixed by the seed), encodes its own
contiguous slice of the queries and of the documents, and all-gathers the embeddings, so the in-batch negatives,
the hard negatives and the KL / trajectory terms are computed over the global batch on every rank. `gather` keeps
the gradient of the local slice only (the others are received tensors); DDP then averages the ranks' gradients,
so the backward pass scales the loss by the world size (`backward_scale`): the sum over the ranks of the gradients
through their own slices is the single-process gradient of the global batch.

    laser-rag train --config training/configs/laser.yaml --nproc 2          # `launch`: torchrun's elastic agent
    torchrun --nproc-per-node 2 -m laser_rag_training --config training/configs/laser.yaml

A process started by torchrun (``WORLD_SIZE`` set) joins the process group (nccl on CUDA, gloo on CPU); any other
process is a world of one and runs exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    #: The device this rank trains on (its own GPU under torchrun, else the library's default device).
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        """The rank that writes the run directory (checkpoints, logs, the final encoder) and shows progress."""
        return self.rank == 0

    def sizes(self, total: int) -> list[int]:
        """How many of ``total`` items each rank holds (contiguous slices, the first ranks one more)."""
        return [total // self.size + (rank < total % self.size) for rank in range(self.size)]

    def shard(self, items: Sequence | torch.Tensor) -> Sequence | torch.Tensor:
        """This rank's contiguous slice of ``items`` (a list, or a tensor's rows; rank order: concatenating all
        slices gives ``items``)."""
        sizes = self.sizes(len(items))
        start = sum(sizes[:self.rank])
        return items[start:start + sizes[self.rank]]

    @property
    def backward_scale(self) -> float:
        """The factor on the loss for the backward pass: DDP averages the ranks' gradients, each of which is the
        gradient through that rank's own slice only."""
        return float(self.size)


def _launched_world() -> World:
    """The world torchrun describes in the environment (a world of one without it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        from laser_rag.runtime import default_device

        device = default_device()
    return World(rank, size, device)


@contextmanager
def session() -> Iterator[World]:
    """This process's `World`: joins torchrun's process group when launched by it (nccl on CUDA, gloo elsewhere)
    and leaves it on exit; a group the caller initialised is used and left alone."""
    world = _launched_world()
    owned = world.size > 1 and not dist.is_initialized()
    if owned:
        if world.device.type == "cuda":
            torch.cuda.set_device(world.device)
        # Long timeout: the other ranks wait in the next collective while rank 0 evaluates or saves.
        dist.init_process_group("nccl" if world.device.type == "cuda" else "gloo", timeout=timedelta(hours=4))
    try:
        yield world
    finally:
        if owned:
            dist.destroy_process_group()


def gather(tensor: torch.Tensor, world: World, total: int) -> torch.Tensor:
    """Every rank's ``tensor`` (its slice of ``total`` rows, as `World.shard` cut them) concatenated in rank order
    along dim 0; only this rank's own slice keeps its gradient (the local-slice trick: see the module docstring)."""
    if world.size == 1:
        return tensor
    sizes = world.sizes(total)
    flag = tensor.dtype == torch.bool  # gloo has no bool collectives
    local = tensor.detach().to(torch.uint8) if flag else tensor.detach()
    padded = torch.cat([local, local.new_zeros(max(sizes) - len(local), *local.shape[1:])]).contiguous()
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(parts, padded)
    parts = [part[:n].bool() if flag else part[:n] for part, n in zip(parts, sizes)]
    parts[world.rank] = tensor
    return torch.cat(parts)


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """``model`` under DistributedDataParallel (it broadcasts rank 0's weights; gradients are averaged in the
    backward pass), or itself in a world of one."""
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, forward_sync_buffers=False)  # the buffers (rotary tables) never change


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if world.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def launch(entrypoint: Callable, nproc: int, *args: Any) -> dict[int, Any]:
    """Run ``entrypoint(*args)`` in ``nproc`` local processes under torchrun's elastic agent (a standalone
    rendezvous on 127.0.0.1); the return values by rank. ``entrypoint`` must be importable (a module-level
    function decorated with ``torch.distributed.elastic.multiprocessing.errors.record``): the workers are spawned.
    A failed worker stops the others; its error is raised as a `TrainingError`."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from laser_rag.errors import TrainingError

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"laser-rag-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.5)
    try:
        return elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        message = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        lines = [line for line in str(message).splitlines() if line.strip()]
        raise TrainingError(f"training process {rank} of {nproc} failed: {lines[-1] if lines else exc}") from None


def cpu_threads(world: World) -> int:
    """Torch threads per rank on CPU when the config leaves them to the machine: the physical cores shared out
    (0, the library's own choice, in a world of one or on a GPU)."""
    if world.size == 1 or world.device.type != "cpu":
        return 0
    from laser_rag.runtime import physical_cores

    local = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
    return max(1, physical_cores() // local)
