"""The pool page: a supervisor of hashing workers and the page that borrows them.

Run from the repository root after ``make site``:
``python examples/node_pool/serve.py [--port 8010]``, then open ``http://127.0.0.1:8010/pool.html``.
The page loads asyncmachine in Pyodide, asks the supervisor for a worker with
``requestWorker`` and hashes on it; the digest comes back as a payload.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "wasm-demo"))
from hash_worker import SCHEMA  # noqa: E402
from server import StaticSite  # noqa: E402  (the demo's static files, precompressed)

from asyncmachine import node, rpc  # noqa: E402

WORKER_CMD = [sys.executable, str(HERE / "hash_worker.py")]


async def serve(site: Path, port: int) -> None:
    async with node.Supervisor("hash", WORKER_CMD, SCHEMA, min=2, warm=1, max=4) as sup:
        pages = {
            "/pool.html": (HERE / "pool.html").read_bytes(),
            "/pool.json": json.dumps({"supervisor": sup.url}).encode(),
        }
        web = rpc.Server(http=StaticSite(site, pages))
        await web.start("127.0.0.1", port)
        try:
            print(f"http://127.0.0.1:{web.port}/pool.html (supervisor {sup.url})", flush=True)
            await asyncio.Event().wait()
        finally:
            await web.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=8010)
    ap.add_argument("--site", type=Path, default=ROOT / "build" / "site")
    args = ap.parse_args()
    if not (args.site / "asyncmachine.mjs").exists():
        raise SystemExit(f"{args.site} has no build: run `make site` first")
    asyncio.run(serve(args.site, args.port))


if __name__ == "__main__":
    main()
