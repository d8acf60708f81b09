"""A worker process of kind "hash": iterated SHA-256, a CPU-bound job.

A supervisor starts it (``node.Supervisor("hash", [sys.executable, "hash_worker.py"], SCHEMA)``);
run by hand it needs ``--supervisor URL --id ID --secret S``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

import asyncmachine as am
from asyncmachine import node

SCHEMA = am.schema_merge(node.WORKER_SCHEMA, {})
"""The Worker mixin is all this worker needs: the job travels in ``WorkRequested``'s args."""

YIELD_EVERY = 5_000
"""Rounds between yields to the event loop, so health checks get answered mid-job."""


async def digest(data: str, rounds: int) -> str:
    """``rounds`` times SHA-256 of ``data``, as hex."""
    value = data.encode()
    for i in range(rounds):
        value = hashlib.sha256(value).digest()
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    return value.hex()


class HashWorker:
    def WorkRequestedEnter(self, e: am.Event) -> bool:
        rounds = e.args.get("rounds")
        return isinstance(e.args.get("data"), str) and isinstance(rounds, int) and rounds > 0

    def WorkRequestedState(self, e: am.Event) -> None:
        e.machine.add1("Working", e.args)

    async def WorkingState(self, e: am.Event) -> None:
        job = e.args.get("job")
        result = await digest(e.args["data"], e.args["rounds"])
        e.machine.add1("ClientSendPayload", {"name": "digest", "data": {"job": job, "hex": result}})
        e.machine.add1("WorkReady")


if __name__ == "__main__":
    sys.exit(node.run_worker(SCHEMA, HashWorker(), kind="hash"))
