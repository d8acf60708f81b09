"""The issue's scale test: a 3-node NATS cluster, 2 host processes, 3 gateway processes and 200
WebSocket clients spread over the gateways, 50 mutations each: every mirror ends on its host's
exact clock and every mutation ran exactly once."""

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
from test_nats_basics import _until

import asyncmachine as am
from asyncmachine import rpc

CLIENTS = 200
MUTATIONS = 50


async def test_cluster_hosts_gateways_and_200_clients(
    nats_cluster: list[NatsServer], tmp_path: Path
) -> None:
    procs: list[Proc] = []
    clients: list[rpc.Client] = []
    try:
        hosts = [Proc("host", nats_cluster[i].url, f"m{i + 1}") for i in range(2)]
        gateways = [Proc("gateway", node.url) for node in nats_cluster]
        procs += hosts + gateways
        for proc in procs:
            proc.start()
        for i in range(CLIENTS):
            gateway = gateways[i % 3]
            url = f"ws://127.0.0.1:{gateway.port}"
            # 10,000 mutations in flight at once: the last wait for the hosts' backlog
            clients.append(rpc.Client(url, client_id=f"c{i}", request_timeout=60))
        await asyncio.gather(*(client.connect() for client in clients))
        mirrors = await asyncio.gather(
            *(client.machine(f"m{i % 2 + 1}") for i, client in enumerate(clients))
        )

        async def hits(i: int) -> list[am.Result]:
            net = mirrors[i]
            return await asyncio.gather(
                *(net.add1("Hit", {"c": f"c{i}", "n": n}) for n in range(MUTATIONS))
            )

        results = await asyncio.gather(*(hits(i) for i in range(CLIENTS)))
        assert all(r == am.Executed for rs in results for r in rs)

        for m in (1, 2):
            path = tmp_path / f"m{m}.json"
            assert await mirrors[m - 1].add1("Report", {"path": str(path)}) == am.Executed
            report = json.loads(path.read_text())
            runs = CLIENTS // 2 * MUTATIONS
            assert report["runs"] == runs  # every mutation ran, once
            names = mirrors[m - 1].state_names()
            assert report["time"][names.index("Hit")] == 2 * runs - 1  # multi: +2 a call
            expected: list[int] = report["time"]
            own = [net for i, net in enumerate(mirrors) if i % 2 + 1 == m]

            def exact(net: Any, want: list[int] = expected) -> bool:
                return list(net.time()) == want

            await asyncio.wait_for(
                asyncio.gather(*(_until(net, lambda n=net: exact(n)) for net in own)), 30
            )
    finally:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
        for proc in procs:
            proc.stop()
