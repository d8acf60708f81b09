"""A client in a process of its own (the test kills it): ``client_app.py URL``.

Takes a worker, prints its id, then holds it until killed.
"""

from __future__ import annotations

import asyncio
import sys

from worker_app import SCHEMA

from asyncmachine import node


async def main(url: str) -> None:
    client = node.Client("vanishing", "test", SCHEMA)
    await client.start([url])
    worker = await client.req_worker(timeout=15)
    print(worker.id, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
