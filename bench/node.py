"""Worker pool benchmarks: ``python -m bench.node [--quick] [--out build/bench/node.jsonl]``.

A real ``node.Supervisor`` forking the example's hashing workers (``examples/node_pool``):

- ``startup``: from ``Supervisor.start()`` to ``PoolReady`` with 4 workers (``min=4``);
- ``req_worker``: ``client.req_worker()`` latency with an idle worker waiting, p50/p99;
- ``throughput``: the same hashing jobs done by 4 workers (4 clients) and in this one process,
  in turns, in jobs/s, and their ratio (``speedup``; 2 cores bound it near 2);
- ``replace``: a worker killed with SIGKILL, until the pool has 4 ready workers again.

The machine may be shared: each row records the load average when it was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncmachine import node
from bench.harness import env_info, loadavg
from bench.report import write_report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "node_pool"))
from hash_worker import SCHEMA, digest  # noqa: E402

WORKER_CMD = [sys.executable, str(ROOT / "examples" / "node_pool" / "hash_worker.py")]
POOL = 4
TIMEOUT = 60.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _ready(sup: node.Supervisor, count: int) -> None:
    while sum(w.status == "idle" for w in sup.workers()) < count or sup.mach.not1("PoolReady"):
        await asyncio.sleep(0.005)


def _supervisor(**opts: Any) -> node.Supervisor:
    return node.Supervisor("hash", WORKER_CMD, SCHEMA, health_timeout=10.0, **opts)


async def startup(reps: int) -> dict[str, Any]:
    times = []
    for _ in range(reps):
        sup = _supervisor(min=POOL, warm=0, max=POOL)
        started = time.perf_counter()
        await sup.start()
        await asyncio.wait_for(sup.mach.when1("PoolReady"), TIMEOUT)
        times.append(time.perf_counter() - started)
        await sup.stop()
    return {
        "workload": "startup",
        "workers": POOL,
        "n": reps,
        "unit": "s",
        "p50": statistics.median(times),
        "max": max(times),
        "load": loadavg(),
    }


async def req_worker(reps: int) -> dict[str, Any]:
    sup = _supervisor(min=1, warm=0, max=1)
    await sup.start()
    client = node.Client("bench", "hash", SCHEMA)
    try:
        await _ready(sup, 1)
        await client.start([sup.url])
        times = []
        for _ in range(reps):
            await asyncio.wait_for(_ready(sup, 1), TIMEOUT)
            started = time.perf_counter()
            await client.req_worker(timeout=TIMEOUT)
            times.append(time.perf_counter() - started)
            await client.release_worker()
    finally:
        await client.stop()
        await sup.stop()
    return {
        "workload": "req_worker",
        "n": reps,
        "unit": "ms",
        "p50": 1000 * _pct(times, 0.5),
        "p99": 1000 * _pct(times, 0.99),
        "load": loadavg(),
    }


class _Digests:
    """The ``digest`` payloads: job -> hex."""

    def __init__(self) -> None:
        self.hex: dict[int, str] = {}

    def WorkerPayloadState(self, e: Any) -> None:
        self.hex[e.args["data"]["job"]] = e.args["data"]["hex"]


async def throughput(jobs: int, rounds: int, turns: int) -> dict[str, Any]:
    """``turns`` times: the jobs on the pool, then the same jobs in this process (in turns, so
    both see the same load); the digests must agree."""
    sup = _supervisor(min=POOL, warm=0, max=POOL)
    await sup.start()
    clients = [node.Client(f"bench-{i}", "hash", SCHEMA) for i in range(POOL)]
    digests = _Digests()
    pooled: list[float] = []
    alone: list[float] = []
    try:
        await asyncio.wait_for(_ready(sup, POOL), TIMEOUT)
        workers = []
        for client in clients:
            client.mach.bind_handlers(digests)
            await client.start([sup.url])
            workers.append(await client.req_worker(timeout=TIMEOUT))

        async def drive(queue: list[int], client: node.Client, worker: Any) -> None:
            while queue:
                job = queue.pop()
                ticks = client.mach.tick("WorkerPayload")
                await worker.add1("WorkRequested", {"job": job, "data": str(job), "rounds": rounds})
                await asyncio.wait_for(client.mach.when_time1("WorkerPayload", ticks + 1), TIMEOUT)

        for _ in range(turns):
            digests.hex.clear()
            queue = list(range(jobs))
            started = time.perf_counter()
            await asyncio.gather(
                *(drive(queue, c, w) for c, w in zip(clients, workers, strict=True))
            )
            pooled.append(time.perf_counter() - started)
            started = time.perf_counter()
            expected = {job: await digest(str(job), rounds) for job in range(jobs)}
            alone.append(time.perf_counter() - started)
            assert digests.hex == expected, "the workers' digests differ from this process's"
    finally:
        for client in clients:
            await client.stop()
        await sup.stop()
    return {
        "workload": "throughput",
        "workers": POOL,
        "n": jobs,
        "rounds": rounds,
        "turns": turns,
        "unit": "jobs/s",
        "pool": jobs / statistics.median(pooled),
        "one_process": jobs / statistics.median(alone),
        "speedup": sum(alone) / sum(pooled),
        "cores": os.cpu_count(),
        "load": loadavg(),
    }


async def replace(reps: int) -> dict[str, Any]:
    sup = _supervisor(min=POOL, warm=0, max=POOL, heartbeat=0.5)
    await sup.start()
    times = []
    try:
        for _ in range(reps):
            await asyncio.wait_for(_ready(sup, POOL), TIMEOUT)
            victim = sup.workers()[0]
            started = time.perf_counter()
            os.kill(victim.pid, signal.SIGKILL)
            while victim.id in [w.id for w in sup.workers()]:
                await asyncio.sleep(0.002)
            await asyncio.wait_for(_ready(sup, POOL), TIMEOUT)
            times.append(time.perf_counter() - started)
    finally:
        await sup.stop()
    return {
        "workload": "replace",
        "n": reps,
        "unit": "s",
        "p50": statistics.median(times),
        "max": max(times),
        "load": loadavg(),
    }


async def run(quick: bool) -> list[dict[str, Any]]:
    return [
        await startup(1 if quick else 3),
        await req_worker(5 if quick else 100),
        await throughput(8, 2_000, 1) if quick else await throughput(16, 150_000, 3),
        await replace(1 if quick else 3),
    ]


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| workload | result | load |", "|---|---|---|"]
    for row in rows:
        if row["workload"] == "throughput":
            text = (
                f"{row['pool']:.2f} jobs/s pooled vs {row['one_process']:.2f} in one process:"
                f" {row['speedup']:.2f}x ({row['turns']} turns of {row['n']} jobs of"
                f" {row['rounds']} rounds)"
            )
        elif row["unit"] == "ms":
            text = f"p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms ({row['n']} requests)"
        else:
            text = f"median {row['p50']:.2f} s, max {row['max']:.2f} s ({row['n']} runs)"
        lines.append(f"| {row['workload']} | {text} | {row['load']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.node", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--out", default="build/bench/node.jsonl", help="JSON lines output file")
    args = ap.parse_args(argv)
    env = env_info()
    print(f"bench.node: load {loadavg()}", file=sys.stderr)
    rows = asyncio.run(run(args.quick))
    records = [{"system": "asyncmachine.node", **row, "quick": args.quick, **env} for row in rows]
    write_report(Path(args.out), records, render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
