"""RPC benchmarks: ``python -m bench.rpc [--quick] [--out build/bench/rpc.jsonl]``.

Against a real :class:`asyncmachine.rpc.Server` on 127.0.0.1 and real clients, in one run:

- ``rtt``: one client's mutation round trip (``await net.toggle1("A")``), p50/p99, and the
  mutations/s it reaches sequentially;
- ``echo``: the floor, a bare ``websockets`` echo round trip of a mutation-sized frame (in turns
  with ``rtt``, so both see the same load), and ``rtt/echo``, the ratios of the two;
- ``fanout``: one mutation on the server's machine until the last of N subscribed mirrors shows
  the new tick;
- ``connections``: N clients connected at once to one server: connect time, the server's memory
  per connection, and the fan-out to all of them;
- ``throughput``: C clients making M mutations each, all at once (each toggles a state of its
  own), in mutations/s;
- ``bytes`` / ``push``: frame bytes per client mutation (both directions) and per server-side
  mutation pushed to one subscriber.

The server runs in this process's event loop (``inproc``: client and server share the loop) and in a
child process (``process``: ``python -m bench.rpc --serve``, driven over its stdin and stdout), so
the latencies are measured both ways. ``--quick`` is a smoke run of a few seconds, in-process only.
Every load targets 127.0.0.1 and ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve

import asyncmachine as am
from asyncmachine.rpc import Client, NetMachine, Receiver, Server, Transport
from asyncmachine.rpc._protocol import CLOSE_NORMAL, MAX_FRAME
from asyncmachine.rpc._transport import websockets_connector
from bench.harness import env_info, loadavg
from bench.report import write_report

ROOT = Path(__file__).resolve().parent.parent
MACHINE_ID = "bench"
MUT_FRAME = '{"t":"mut","m":"bench","op":"add","states":["A"],"key":"0123456789abcdef","id":1000}'
"""What ``net.toggle1("A")`` sends: the echo floor bounces a frame of the same size."""
CHILD_LIFETIME = 600.0
"""The child server exits after this long even if nobody tells it to."""


@dataclass(frozen=True)
class Sizes:
    """How much of each measurement: ``FULL`` for the report, ``QUICK`` for the smoke test."""

    rtt: int
    warmup: int
    fanout_clients: int
    fanout_rounds: int
    bytes_mutations: int
    connections: int
    connections_rounds: int
    tp_clients: int
    tp_mutations: int


FULL = Sizes(
    rtt=5000,
    warmup=500,
    fanout_clients=100,
    fanout_rounds=200,
    bytes_mutations=1000,
    connections=1000,
    connections_rounds=50,
    tp_clients=100,
    tp_mutations=200,
)
QUICK = Sizes(
    rtt=200,
    warmup=20,
    fanout_clients=10,
    fanout_rounds=5,
    bytes_mutations=50,
    connections=20,
    connections_rounds=3,
    tp_clients=5,
    tp_mutations=10,
)
LOAD_STATES = 100
"""States of the ``load`` machine: one per throughput client, at most."""
CONNECTING_AT_ONCE = 100
"""Connections opened concurrently (a listen backlog holds about this many)."""


# --- the server side -----------------------------------------------------------------------------


def server_machine() -> am.Machine:
    return am.Machine({"A": am.State(), "B": am.State(), "C": am.State()}, id=MACHINE_ID)


def load_machine() -> am.Machine:
    return am.Machine({load_state(i): am.State() for i in range(LOAD_STATES)}, id="load")


def load_state(i: int) -> str:
    return f"C{i:03}"


def rpc_server(*machines: am.Machine) -> Server:
    # Heartbeats would only add frames to the byte counts; the flood limit is for real clients.
    return Server(machines, heartbeat=60.0, flood_rate=1e9, flood_burst=10**9)


def rss() -> int:
    """This process's resident memory, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_fd_limit() -> None:
    """A thousand connections need a thousand descriptors on each side."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _echo(ws: ServerConnection) -> None:
    async for frame in ws:
        await ws.send(frame)


async def start_echo() -> WsServer:
    """A bare ``websockets`` echo server with the RPC server's connection settings."""
    return await serve(
        _echo, "127.0.0.1", 0, max_size=MAX_FRAME, ping_interval=None, compression=None
    )


def _url(ws_server: WsServer) -> str:
    host, port = next(iter(ws_server.sockets)).getsockname()[:2]
    return f"ws://{host}:{port}"


def fire(mach: am.Machine) -> int:
    """Toggle ``A`` on the server's machine; the ``perf_counter_ns`` taken right before."""
    t0 = time.perf_counter_ns()
    mach.toggle1("A")
    return t0


async def serve_stdio() -> None:
    """The child of the ``process`` target: prints its URLs as one JSON line, then answers each
    line on stdin with :func:`fire`'s timestamp, until stdin closes or ``CHILD_LIFETIME`` ends.

    ``perf_counter_ns`` is the system-wide monotonic clock, so the parent can compare the stamps.
    """
    raise_fd_limit()
    mach = server_machine()
    server = rpc_server(mach, load_machine())
    await server.start()
    echo = await start_echo()
    print(json.dumps({"rpc": server.url, "echo": _url(echo)}), flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async with asyncio.timeout(CHILD_LIFETIME):
            while line := await reader.readline():
                print(rss() if line.strip() == b"rss" else fire(mach), flush=True)
    except TimeoutError:
        pass
    finally:
        echo.close()
        await echo.wait_closed()
        await server.stop()


class Target(Protocol):
    """A running RPC server plus echo server, and a way to mutate the server's machine."""

    name: str
    rpc_url: str
    echo_url: str

    async def fire(self) -> int:
        """Toggle ``A`` on the server's machine; returns ``perf_counter_ns`` from just before."""
        ...

    async def rss(self) -> int:
        """The server process's resident memory, in bytes."""
        ...

    async def close(self) -> None: ...


class InProcess:
    """Server, echo server and clients share this process's event loop."""

    name = "inproc"

    def __init__(self, mach: am.Machine, server: Server, echo: WsServer) -> None:
        self.mach = mach
        self.server = server
        self.echo = echo
        self.rpc_url = server.url
        self.echo_url = _url(echo)

    @classmethod
    async def start(cls) -> InProcess:
        mach = server_machine()
        server = rpc_server(mach, load_machine())
        await server.start()
        return cls(mach, server, await start_echo())

    async def fire(self) -> int:
        return fire(self.mach)

    async def rss(self) -> int:
        return rss()  # clients included: only the process target isolates the server

    async def close(self) -> None:
        self.echo.close()
        await self.echo.wait_closed()
        await self.server.stop()


class ChildProcess:
    """Server and echo server in a child process (:func:`serve_stdio`), with their own loop."""

    name = "process"

    def __init__(self, proc: asyncio.subprocess.Process, urls: dict[str, str]) -> None:
        self.proc = proc
        self.rpc_url = urls["rpc"]
        self.echo_url = urls["echo"]

    @classmethod
    async def start(cls) -> ChildProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.rpc",
            "--serve",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            return cls(proc, json.loads(line))
        except BaseException:
            proc.kill()
            await proc.wait()
            raise

    async def fire(self) -> int:
        return await self._ask(b"fire")

    async def rss(self) -> int:
        return await self._ask(b"rss")

    async def _ask(self, command: bytes) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + b"\n")
        await self.proc.stdin.drain()
        return int(await self.proc.stdout.readline())

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- counting frames ----------------------------------------------------------------------------


def ws_header(size: int, masked: bool) -> int:
    """Bytes of the WebSocket frame header (RFC 6455 section 5.2) for a payload of ``size``."""
    length = 0 if size < 126 else 2 if size < 2**16 else 8
    return 2 + length + (4 if masked else 0)


@dataclass
class Traffic:
    """Frames in one direction: JSON bytes, and JSON plus WebSocket headers (``wire``)."""

    frames: int = 0
    payload: int = 0
    wire: int = 0

    def count(self, frame: str, masked: bool) -> None:
        size = len(frame.encode())
        self.frames += 1
        self.payload += size
        self.wire += size + ws_header(size, masked)

    def since(self, before: Traffic) -> Traffic:
        return Traffic(
            self.frames - before.frames, self.payload - before.payload, self.wire - before.wire
        )


class CountingTransport:
    """Wraps a client transport and counts what passes (client frames are masked)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.inner: Transport | None = None
        self.up = Traffic()
        self.down = Traffic()

    def frame_received(self, frame: str | bytes) -> None:
        assert isinstance(frame, str)
        self.down.count(frame, masked=False)
        self.receiver.frame_received(frame)

    def connection_lost(self, code: int, reason: str) -> None:
        self.receiver.connection_lost(code, reason)

    def send(self, frame: str) -> None:
        self.up.count(frame, masked=True)
        assert self.inner is not None
        self.inner.send(frame)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        assert self.inner is not None
        self.inner.close(code, reason)

    def abort(self) -> None:
        assert self.inner is not None
        self.inner.abort()


class CountingConnector:
    """A client connector that keeps the last transport it opened, counted."""

    transport: CountingTransport | None = None

    async def __call__(self, url: str, receiver: Receiver) -> Transport:
        counted = CountingTransport(receiver)
        counted.inner = await websockets_connector(url, counted)
        self.transport = counted
        return counted


# --- measurements -------------------------------------------------------------------------------


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    return round(sorted_ns[max(0, math.ceil(q * len(sorted_ns)) - 1)] / 1000, 1)


def latency(workload: str, server: str, samples: list[int], **extra: Any) -> dict[str, Any]:
    samples.sort()
    return {
        "workload": workload,
        "server": server,
        "n": len(samples),
        "unit": "us",
        "p50": percentile(samples, 0.5),
        "p99": percentile(samples, 0.99),
        "mean": round(statistics.fmean(samples) / 1000, 1),
        **extra,
    }


async def measure_round_trips(target: Target, sizes: Sizes) -> list[dict[str, Any]]:
    """A mutation's round trip (``rtt``) and the floor, a bare ``websockets`` client bouncing a
    mutation-sized frame (``echo``), measured in turns: both see the same machine load, so their
    ratio holds on a busy machine too."""
    ws = await connect(target.echo_url, ping_interval=None, compression=None, proxy=None)
    try:
        async with Client(target.rpc_url, client_id="bench-rtt") as client:
            net = await client.machine(MACHINE_ID)
            for _ in range(sizes.warmup):
                await net.toggle1("A")
                await ws.send(MUT_FRAME)
                await ws.recv()
            rtt, echo = [0] * sizes.rtt, [0] * sizes.rtt
            busy = 0
            gc.collect()
            for i in range(sizes.rtt):
                t0 = time.perf_counter_ns()
                await net.toggle1("A")
                t1 = time.perf_counter_ns()
                await ws.send(MUT_FRAME)
                await ws.recv()
                t2 = time.perf_counter_ns()
                rtt[i], echo[i] = t1 - t0, t2 - t1
                busy += t1 - t0
    finally:
        await ws.close()
    per_s = round(sizes.rtt / (busy / 1e9), 1)
    return [
        latency("rtt", target.name, rtt, mutations_per_s=per_s),
        latency("echo", target.name, echo, frame_bytes=len(MUT_FRAME)),
    ]


class LastArrival:
    """Counts mirrors reaching a tick; resolves with the ``perf_counter_ns`` of the last one."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def __call__(self, waiter: am.Waiter) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set_result(time.perf_counter_ns())


async def fanout_rounds(target: Target, nets: Sequence[NetMachine], rounds: int) -> list[int]:
    """Nanoseconds from a server-side mutation until the last of ``nets`` shows it, per round."""
    samples: list[int] = []
    warmup = max(1, rounds // 10)
    gc.collect()
    for round_ in range(warmup + rounds):
        tick = nets[0].tick("A") + 1
        last = LastArrival(len(nets))
        for net in nets:
            net.when_time1("A", tick).add_done_callback(last)
        t0 = await target.fire()
        t1 = await asyncio.wait_for(last.done, 30)
        if round_ >= warmup:
            samples.append(t1 - t0)
    return samples


async def measure_fanout(target: Target, sizes: Sizes) -> dict[str, Any]:
    clients = [
        Client(target.rpc_url, client_id=f"bench-fan-{i}") for i in range(sizes.fanout_clients)
    ]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        nets: list[NetMachine] = await asyncio.gather(*(c.machine(MACHINE_ID) for c in clients))
        samples = await fanout_rounds(target, nets, sizes.fanout_rounds)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return latency("fanout", target.name, samples, clients=sizes.fanout_clients)


async def measure_connections(target: Target, sizes: Sizes) -> dict[str, Any]:
    """``connections`` clients on one server: connect time, server memory, fan-out."""
    raise_fd_limit()
    n = sizes.connections
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    times = [0] * n
    clients = [
        Client(target.rpc_url, client_id=f"bench-conn-{i}", request_timeout=60.0) for i in range(n)
    ]

    async def join(i: int) -> NetMachine:
        async with gate:
            t0 = time.perf_counter_ns()
            await clients[i].connect()
            net = await clients[i].machine(MACHINE_ID)
            times[i] = time.perf_counter_ns() - t0
            return net

    gc.collect()
    before = await target.rss()
    started = time.perf_counter_ns()
    try:
        nets = await asyncio.gather(*(join(i) for i in range(n)))
        total = time.perf_counter_ns() - started
        after = await target.rss()
        samples = await fanout_rounds(target, nets, sizes.connections_rounds)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    times.sort()
    samples.sort()
    return {
        "workload": "connections",
        "server": target.name,
        "n": len(samples),
        "unit": "us",
        "connections": n,
        "connect_all_s": round(total / 1e9, 2),
        "connect_p50": percentile(times, 0.5),
        "connect_p99": percentile(times, 0.99),
        "kb_per_connection": round((after - before) / n / 1024, 1),
        "p50": percentile(samples, 0.5),
        "p99": percentile(samples, 0.99),
    }


async def measure_throughput(target: Target, sizes: Sizes) -> dict[str, Any]:
    """``tp_clients`` clients, each toggling its own state ``tp_mutations`` times, all at once."""
    n, m = sizes.tp_clients, sizes.tp_mutations
    clients = [
        Client(target.rpc_url, client_id=f"bench-tp-{i}", request_timeout=60.0) for i in range(n)
    ]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        nets = await asyncio.gather(*(c.machine("load") for c in clients))

        async def drive(net: NetMachine, state: str) -> None:
            for _ in range(m):
                await net.toggle1(state)

        gc.collect()
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(drive(net, load_state(i)) for i, net in enumerate(nets)))
        elapsed = time.perf_counter_ns() - t0
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {
        "workload": "throughput",
        "server": target.name,
        "n": n * m,
        "unit": "mutations/s",
        "clients": n,
        "mutations": m,
        "mutations_per_s": round(n * m / (elapsed / 1e9), 1),
    }


def _per(traffic: Traffic, n: int) -> dict[str, float]:
    return {"frames": traffic.frames / n, "bytes": traffic.payload / n, "wire": traffic.wire / n}


async def measure_bytes(target: Target, sizes: Sizes) -> list[dict[str, Any]]:
    """Bytes per client mutation (both ways) and per server-side mutation pushed to the client."""
    connector = CountingConnector()
    n = sizes.bytes_mutations
    async with Client(target.rpc_url, client_id="bench-bytes", connector=connector) as client:
        counted = connector.transport
        assert counted is not None
        down0 = replace(counted.down)
        net = await client.machine(MACHINE_ID)
        snap = counted.down.since(down0).payload
        up0, down0 = replace(counted.up), replace(counted.down)
        for _ in range(n):
            await net.toggle1("A")
        up, down = counted.up.since(up0), counted.down.since(down0)
        pushed0 = replace(counted.down)
        for _ in range(n):
            shown = net.when_time1("A", net.tick("A") + 1)
            await target.fire()
            await asyncio.wait_for(_wait(shown), 10)
        pushed = counted.down.since(pushed0)
    per_up, per_down, per_push = _per(up, n), _per(down, n), _per(pushed, n)
    common = {"server": target.name, "n": n, "unit": "B"}
    return [
        {
            "workload": "bytes",
            **common,
            "up": per_up["bytes"],
            "down": per_down["bytes"],
            "up_wire": per_up["wire"],
            "down_wire": per_down["wire"],
            "frames_up": per_up["frames"],
            "frames_down": per_down["frames"],
            "snap": snap,
        },
        {
            "workload": "push",
            **common,
            "down": per_push["bytes"],
            "down_wire": per_push["wire"],
            "frames_down": per_push["frames"],
        },
    ]


async def _wait(waiter: am.Waiter) -> None:
    await waiter


def ratios(rtt: dict[str, Any], echo: dict[str, Any]) -> dict[str, Any]:
    return {
        "workload": "rtt/echo",
        "server": rtt["server"],
        "n": rtt["n"],
        "unit": "x",
        "p50": round(rtt["p50"] / echo["p50"], 2),
        "p99": round(rtt["p99"] / echo["p99"], 2),
    }


async def run(quick: bool, servers: Sequence[str]) -> list[dict[str, Any]]:
    """Every measurement against each server placement (``inproc``, ``process``), one at a time."""
    sizes = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    for placement in servers:
        target: Target = await (
            InProcess.start() if placement == "inproc" else ChildProcess.start()
        )
        try:
            rtt, echo = await measure_round_trips(target, sizes)
            rows += [rtt, echo, ratios(rtt, echo), await measure_fanout(target, sizes)]
            rows.append(await measure_throughput(target, sizes))
            rows.append(await measure_connections(target, sizes))
            if placement == servers[0]:  # the bytes do not depend on where the server runs
                rows += await measure_bytes(target, sizes)
        finally:
            await target.close()
    return rows


# --- report -------------------------------------------------------------------------------------


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one column per server placement."""
    placements = [p for p in ("inproc", "process") if any(r["server"] == p for r in rows)]
    by = {(r["workload"], r["server"]): r for r in rows}
    names = {"inproc": "server in the same loop", "process": "server in its own process"}

    def cells(workload: str, show: Callable[[dict[str, Any]], str]) -> str:
        return " | ".join(show(by[workload, p]) if (workload, p) in by else "-" for p in placements)

    clients = next((r["clients"] for r in rows if r["workload"] == "fanout"), 0)
    conns = next((r["connections"] for r in rows if r["workload"] == "connections"), 0)
    tp = next((r for r in rows if r["workload"] == "throughput"), {"clients": 0, "mutations": 0})
    out = [
        "| measure | " + " | ".join(names[p] for p in placements) + " |",
        "|---|" + "---|" * len(placements),
        "| mutation round trip p50 / p99 (µs) | "
        + cells("rtt", lambda r: f"{r['p50']:.0f} / {r['p99']:.0f}")
        + " |",
        "| mutations/s, one client, sequential | "
        + cells("rtt", lambda r: f"{r['mutations_per_s']:,.0f}")
        + " |",
        "| floor: websockets echo p50 / p99 (µs) | "
        + cells("echo", lambda r: f"{r['p50']:.0f} / {r['p99']:.0f}")
        + " |",
        "| round trip / echo, p50 / p99 | "
        + cells("rtt/echo", lambda r: f"{r['p50']:.2f}x / {r['p99']:.2f}x")
        + " |",
        f"| fan-out to {clients} mirrors p50 / p99 (µs) | "
        + cells("fanout", lambda r: f"{r['p50']:.0f} / {r['p99']:.0f}")
        + " |",
        f"| {tp['clients']} clients x {tp['mutations']} mutations at once: mutations/s | "
        + cells("throughput", lambda r: f"{r['mutations_per_s']:,.0f}")
        + " |",
        f"| {conns} connections: all connected in (s), each p50 / p99 (ms) | "
        + cells(
            "connections",
            lambda r: (
                f"{r['connect_all_s']:.1f} s, {r['connect_p50'] / 1000:.1f} / "
                f"{r['connect_p99'] / 1000:.1f}"
            ),
        )
        + " |",
        f"| {conns} connections: server memory per connection (KiB) | "
        + cells("connections", lambda r: f"{r['kb_per_connection']:.0f}")
        + " |",
        f"| {conns} connections: fan-out to all p50 / p99 (µs) | "
        + cells("connections", lambda r: f"{r['p50']:.0f} / {r['p99']:.0f}")
        + " |",
        "| bytes per client mutation, up / down: JSON (+ WebSocket headers) | "
        + cells(
            "bytes",
            lambda r: (
                f"{r['up']:.0f} / {r['down']:.0f} ({r['up_wire']:.0f} / {r['down_wire']:.0f})"
                f" in {r['frames_up']:.0f} / {r['frames_down']:.0f} frames"
            ),
        )
        + " |",
        "| bytes per server mutation pushed to a subscriber: JSON (+ headers) | "
        + cells("push", lambda r: f"{r['down']:.0f} ({r['down_wire']:.0f})")
        + " |",
        "| subscribe snapshot (JSON bytes) | " + cells("bytes", lambda r: f"{r['snap']}") + " |",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements, write JSON lines to ``--out`` and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.rpc", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small N, in-process only: a smoke run")
    ap.add_argument("--out", default="build/bench/rpc.jsonl", help="JSON lines output file")
    ap.add_argument(
        "--server",
        choices=("inproc", "process", "both"),
        help="where the server runs (default: both; inproc with --quick)",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the child's side
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve_stdio())
        return 0

    placement = args.server or ("inproc" if args.quick else "both")
    servers = ("inproc", "process") if placement == "both" else (placement,)
    env = env_info()
    print(
        f"bench.rpc: {'quick' if args.quick else 'full'} run, {env}, load {loadavg()}",
        file=sys.stderr,
    )
    rows = asyncio.run(run(args.quick, servers))
    records = [{"system": "asyncmachine.rpc", **row, "quick": args.quick, **env} for row in rows]
    write_report(Path(args.out), records, render_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
