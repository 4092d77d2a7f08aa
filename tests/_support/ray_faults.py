"""A fault for the Ray indexing tests, installed in every Ray worker of their cluster (``worker_process_setup_hook``):
while the file named by ``$LASER_RAG_TEST_KILL_ACTOR`` exists, the first encoding actor that claims it (removes it)
dies on the spot (``os._exit``), as a worker killed by the kernel would; every later call encodes as usual."""

from __future__ import annotations

import os

FLAG_ENV = "LASER_RAG_TEST_KILL_ACTOR"


def install() -> None:
    flag = os.environ.get(FLAG_ENV)
    if not flag:
        return
    from laser_rag import ray_index

    encode = ray_index._EncodeWorker.__call__

    def dies_once(self, batch):
        try:
            os.remove(flag)  # one claimant only, even with several actors
        except FileNotFoundError:
            return encode(self, batch)
        os._exit(1)

    ray_index._EncodeWorker.__call__ = dies_once
