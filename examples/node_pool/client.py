"""A pool of hashing workers driven by a Python client.

Run from the repository root: ``python examples/node_pool/client.py``. It starts a supervisor
with two worker processes, takes one worker per client, hashes four inputs on two workers at
once, and prints the digests.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hash_worker import SCHEMA

import asyncmachine as am
from asyncmachine import node

WORKER_CMD = [sys.executable, str(Path(__file__).with_name("hash_worker.py"))]


async def hash_on(client: node.Client, inputs: list[str], rounds: int) -> None:
    """Hash each input on the client's worker, one job after the other."""
    worker = await client.req_worker(timeout=30)
    for data in inputs:
        ticks = client.mach.tick("WorkerPayload")
        await worker.add1("WorkRequested", {"job": data, "data": data, "rounds": rounds})
        await client.mach.when_time1("WorkerPayload", ticks + 1)  # the digest arrived
    await client.release_worker()


class Results:
    """Collects the ``digest`` payloads the worker sends."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}

    def WorkerPayloadState(self, e: am.Event) -> None:
        if e.args["name"] == "digest":
            self.digests[e.args["data"]["job"]] = e.args["data"]["hex"]


async def main() -> None:
    async with node.Supervisor("hash", WORKER_CMD, SCHEMA, min=2, warm=0, max=2) as sup:
        await sup.mach.when1("PoolReady")
        results = Results()
        clients = [node.Client(f"client-{i}", "hash", SCHEMA) for i in range(2)]
        for client in clients:
            client.mach.bind_handlers(results)
            await client.start([sup.url])
        await asyncio.gather(
            hash_on(clients[0], ["alpha", "beta"], 200_000),
            hash_on(clients[1], ["gamma", "delta"], 200_000),
        )
        for client in clients:
            await client.stop()
        for data, digest in sorted(results.digests.items()):
            print(f"{data:>6}: {digest}")


if __name__ == "__main__":
    asyncio.run(main())
