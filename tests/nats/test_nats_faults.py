"""Faults: a NATS node killed, a gateway killed (its clients move), a host restarted with SQLite
idempotency, a slow subscriber. Real nats-server, host and gateway processes."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("needs nats-server and subprocesses", allow_module_level=True)

import asyncio
import json
from pathlib import Path
from typing import Any

from nats_support import NatsServer, Proc
from test_nats_basics import SCHEMA, _until

import asyncmachine as am
from asyncmachine import rpc


def _urls(nodes: list[NatsServer]) -> str:
    return ",".join(node.url for node in nodes)


async def test_a_nats_node_dies(nats_cluster: list[NatsServer], closing: list[Any]) -> None:
    mach = am.Machine(SCHEMA, id="sturdy")
    urls = _urls(nats_cluster)
    closing.append(await rpc.nats.expose(mach, urls, dont_randomize=True))  # on the first node
    gateway = rpc.Server(nats=_urls(nats_cluster[1:]))
    await gateway.start()
    closing.append(gateway)
    client = await rpc.Client(gateway.url).connect()
    closing.append(client)
    net = await client.machine("sturdy")
    assert await net.add1("A") == am.Executed
    nats_cluster[0].kill()  # the host's node
    results = await asyncio.gather(*(net.add1("Multi") for _ in range(5)))
    assert all(r == am.Executed for r in results)
    assert mach.tick("Multi") == 2 * 5 - 1  # each ran once, whatever was resent
    await asyncio.wait_for(_until(net, lambda: list(net.time()) == list(mach.time())), 10)


async def test_a_gateway_dies_and_its_clients_move(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    mach = am.Machine(SCHEMA, id="moving")
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    doomed = Proc("gateway", nats_server.url).start()
    closing.append(_Stopper(doomed))
    other = rpc.Server(nats=nats_server.url)
    await other.start()
    closing.append(other)
    watcher = await rpc.Client(other.url).connect()  # the other gateway already follows it
    closing.append(watcher)
    await watcher.machine("moving")
    clients = [
        await rpc.Client(f"ws://127.0.0.1:{doomed.port}", backoff=0.05).connect() for _ in range(5)
    ]
    closing.extend(clients)
    mirrors = [await c.machine("moving") for c in clients]
    await mirrors[0].add1("A")
    snaps: list[int] = []
    for client in clients:
        _count_snapshots(client, snaps)
    doomed.kill()
    mach.add1("Multi")  # changes while they move
    for client in clients:
        client.url = other.url  # a load balancer sends them to the live gateway
    assert await mirrors[1].add1("Multi") == am.Executed
    for net in mirrors:
        await asyncio.wait_for(_until(net, lambda n=net: list(n.time()) == list(mach.time())), 10)
    assert snaps == []  # every mirror resumed from its seq, without a snapshot


async def test_a_host_restarts_with_sqlite_keys(
    nats_server: NatsServer, closing: list[Any], tmp_path: Path
) -> None:
    db = str(tmp_path / "keys.sqlite")
    host = Proc("host", nats_server.url, "durable", "--sqlite", db).start()
    closing.append(_Stopper(host))
    gateway = rpc.Server(nats=nats_server.url)
    await gateway.start()
    closing.append(gateway)
    client = await rpc.Client(gateway.url, backoff=0.1, request_timeout=30).connect()
    closing.append(client)
    net = await client.machine("durable")
    disconnected = client.mach.when1("Disconnected")
    sent = [asyncio.ensure_future(net.add1("Hit", {"c": "x", "n": n})) for n in range(300)]
    await asyncio.wait(sent, return_when=asyncio.FIRST_COMPLETED)
    host.kill()  # mid-stream: some ran, some did not, some answers are lost
    await asyncio.wait_for(disconnected, 10)
    restarted = Proc("host", nats_server.url, "durable", "--sqlite", db).start()
    closing.append(_Stopper(restarted))
    results = await asyncio.wait_for(asyncio.gather(*sent), 30)
    assert all(r == am.Executed for r in results)
    path = tmp_path / "report.json"
    assert await net.add1("Report", {"path": str(path)}) == am.Executed
    report = json.loads(path.read_text())
    assert report["rows"] == 300 and report["dupes"] == 0  # each ran exactly once
    await asyncio.wait_for(_until(net, lambda: list(net.time()) == report["time"]), 10)


async def test_a_slow_subscriber_catches_up(nats_server: NatsServer, closing: list[Any]) -> None:
    mach = am.Machine(SCHEMA, id="busy")
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    gateway = rpc.Server(nats=nats_server.url, outbox_limit=8)
    await gateway.start()
    closing.append(gateway)
    fast = await rpc.Client(gateway.url).connect()
    slow = await rpc.Client(gateway.url).connect()
    closing += [fast, slow]
    fast_net, slow_net = await fast.machine("busy"), await slow.machine("busy")
    link = slow._link
    assert link is not None and link.transport is not None
    socket = link.transport._transport  # type: ignore[attr-defined]
    socket.pause_reading()
    for _ in range(200):
        mach.add1("Multi")
        await asyncio.sleep(0)  # let each change go out on its own
    await asyncio.wait_for(_until(fast_net, lambda: list(fast_net.time()) == list(mach.time())), 10)
    assert list(slow_net.time()) != list(mach.time())  # it reads nothing meanwhile
    socket.resume_reading()
    await asyncio.wait_for(_until(slow_net, lambda: list(slow_net.time()) == list(mach.time())), 10)


class _Stopper:
    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    async def stop(self) -> None:
        self.proc.stop()


def _count_snapshots(client: rpc.Client, snaps: list[int]) -> None:
    original = client.session.receive

    def spy(frame: str | bytes, now: float) -> None:
        if '"t":"snap"' in (frame if isinstance(frame, str) else frame.decode()):
            snaps.append(1)
        original(frame, now)

    client.session.receive = spy  # type: ignore[method-assign]


async def test_a_gateway_that_misses_diffs_resyncs_from_the_host(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    """A gateway that falls behind on NATS (a dropped diff: a slow consumer) sees the gap in the
    chain, asks the host for its clock, and its clients get the change as a diff."""
    mach = am.Machine(SCHEMA, id="gappy")
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    gateway = rpc.Server(nats=nats_server.url)
    await gateway.start()
    closing.append(gateway)
    client = await rpc.Client(gateway.url).connect()
    closing.append(client)
    net = await client.machine("gappy")
    remote = gateway._gateway.machines["gappy"]
    original = remote.receive
    dropped: list[dict[str, Any]] = []

    def lossy(message: dict[str, Any]) -> None:
        if message.get("t") == "diff" and not dropped:
            dropped.append(message)  # NATS dropped it for a slow consumer
            return
        original(message)

    remote.receive = lossy
    snaps: list[int] = []
    _count_snapshots(client, snaps)
    mach.add1("A")
    await asyncio.sleep(0)
    mach.add1("Multi")
    await asyncio.wait_for(_until(net, lambda: list(net.time()) == list(mach.time())), 10)
    assert dropped and snaps == []  # repaired at the gateway: the client saw only diffs
