"""The worker process of the pool tests: a hashing job, with faults on demand.

Environment: ``NODE_TEST_DIR`` (a folder: ``pids`` gets this process's pid at start, ``runs`` one
line per finished job), ``NODE_TEST_EXIT`` (a file holding a number: while above zero, a
starting worker decrements it and exits with status 3).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

import asyncmachine as am
from asyncmachine import node

SCHEMA = am.schema_merge(node.WORKER_SCHEMA, {})


class Jobs:
    def WorkRequestedState(self, e: am.Event) -> None:
        e.machine.add1("Working", e.args)

    async def WorkingState(self, e: am.Event) -> None:
        job, rounds = e.args.get("job"), int(e.args.get("rounds", 1))
        await asyncio.sleep(float(e.args.get("hold", 0)))  # a window to kill it mid-job
        value = str(job).encode()
        for i in range(rounds):
            value = hashlib.sha256(value).digest()
            if i % 5000 == 4999:
                await asyncio.sleep(0)
        if e.args.get("fail"):
            raise RuntimeError(f"job {job} failed")
        with open(Path(os.environ["NODE_TEST_DIR"]) / "runs", "a") as runs:
            runs.write(f"{job} {os.getpid()}\n")
        e.machine.add1(
            "ClientSendPayload", {"name": "done", "data": {"job": job, "hex": value.hex()}}
        )
        e.machine.add1("WorkReady")


def exit_at_start() -> bool:
    path = os.environ.get("NODE_TEST_EXIT")
    if not path:
        return False
    left = int(Path(path).read_text() or 0)
    if left <= 0:
        return False
    Path(path).write_text(str(left - 1))
    return True


if __name__ == "__main__":
    with open(Path(os.environ["NODE_TEST_DIR"]) / "pids", "a") as pids:
        pids.write(f"{os.getpid()}\n")
    if exit_at_start():
        sys.exit(3)
    sys.exit(node.run_worker(SCHEMA, Jobs(), kind="test"))
