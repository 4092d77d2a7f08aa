"""A run directory's files: the resumable checkpoint (adapter, optimizer, scheduler, RNG state), the logs, the lock.

    runs/<name>/
      lock               held (filelock) while a process trains here: a second one would interleave checkpoints
      train_config.json  the settings (a resumed run must read the same ones)
      log.jsonl          one line per step; eval.jsonl: one line per evaluation
      checkpoint/        laser_config.json + adapter + train_config.json + state.pt (replaced atomically)
      final/             laser_config.json + adapter: `LaSEREncoder.from_pretrained("runs/<name>/final")`
      summary.json       written last: the run is finished
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout

from laser_rag.errors import TrainingError
from laser_rag_training.config import TrainConfig, save_config
from laser_rag_training.distributed import World, broadcast
from laser_rag_training.model import LaSERModel


@contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """One process per run directory; a second one is refused at once (the lock is released even on a crash)."""
    lock = FileLock(run / "lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise TrainingError(f"another process is training in {run} already; wait for it, or use another output_dir") from None
    try:
        yield
    finally:
        lock.release()


def use_threads(threads: int = 0) -> int:
    """Set torch's threads: ``threads`` if given, else the library's choice (`laser_rag.runtime.configure_threads`:
    the physical cores, unless ``$LASER_RAG_THREADS`` or ``OMP_NUM_THREADS`` say otherwise). Returns the count."""
    if threads:
        torch.set_num_threads(threads)
        return threads
    from laser_rag.runtime import configure_threads

    return configure_threads()


def seed_run(seed: int, threads: int = 0) -> None:
    """Set torch's threads (`use_threads`) and seed Python's, numpy's and torch's RNGs at the start of a run."""
    use_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(run: Path, model: LaSERModel, optimizer, scheduler, config: TrainConfig, progress: dict) -> Path:
    """Write ``run/checkpoint`` (adapter, laser_config.json, train_config.json, state.pt): built in a staging folder,
    then swapped in, so an interruption leaves the previous checkpoint or the new one. ``progress``: step and
    elapsed times, saved in state.pt with the optimizer, scheduler and RNG states."""
    staging, target, old = run / "checkpoint.tmp", run / "checkpoint", run / "checkpoint.old"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    save_config(config, staging / "train_config.json")
    torch.save({**progress, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state()}, staging / "state.pt")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def resume(run: Path, model: LaSERModel, optimizer, scheduler, config: TrainConfig,
           world: World | None = None) -> dict[str, Any]:
    """Load ``run/checkpoint`` into the model, optimizer, scheduler and RNGs, after checking it was saved under the
    same settings; returns its progress (``{}`` when there is no checkpoint: a fresh run).

    On N ranks (``world``) rank 0 reads it, whatever the number of ranks that wrote it, and sends the optimizer,
    scheduler and RNG states and the progress to the others (the run directory need not be shared); the adapter
    reaches them when `laser_rag_training.distributed.wrap` broadcasts rank 0's weights."""
    world = world or World()
    checkpoint, state = run / "checkpoint", None
    if world.is_main and (checkpoint / "state.pt").is_file():
        config.check_resumes(json.loads((checkpoint / "train_config.json").read_text()))
        state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
        model.load_adapter(checkpoint)
    state = broadcast(state, world)
    if state is None:
        return {}
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    set_rng_state(state.pop("rng"))
    return state


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (they were not checkpointed and will be run again)."""
    if path.is_file():
        from laser_rag.util import atomic_write

        lines = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        atomic_write(path, "".join(line + "\n" for line in lines))
