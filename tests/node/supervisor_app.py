"""A supervisor in a process of its own (the test kills it): ``supervisor_app.py PORT``.

Prints its URL once the pool is ready, then serves until killed.
"""

from __future__ import annotations

import asyncio
import sys

from node_support import FAST, WORKER_CMD
from worker_app import SCHEMA

from asyncmachine import node


async def main(port: int) -> None:
    sup = node.Supervisor("test", WORKER_CMD, SCHEMA, min=1, warm=0, max=2, **FAST)
    await sup.start("127.0.0.1", port)
    await sup.mach.when1("PoolReady")
    print(sup.url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
