"""``rpc.Server(metrics=True)``: Prometheus metrics of the served machines at ``GET /metrics`` on
the RPC port, scraped by Debian's real Prometheus while a real RPC client mutates a machine."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("the RPC server needs sockets", allow_module_level=True)

from collections.abc import Callable

import aiohttp
from telemetry_backends import Prometheus

import asyncmachine as am
from asyncmachine import rpc
from asyncmachine.telemetry.prometheus import MachMetrics

SCHEMA: am.Schema = {"A": am.State(), "B": am.State()}


def metrics_url(server: rpc.Server) -> str:
    return f"http://{server.host}:{server.port}/metrics"


async def get(url: str, accept: str = "") -> tuple[int, str, str]:
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def bound(mach: am.Machine) -> list[MachMetrics]:
    return [t for t in mach.tracers() if isinstance(t, MachMetrics)]


async def test_real_prometheus_scrapes_the_rpc_port(
    prom_server: Callable[[list[str]], Prometheus],
) -> None:
    """Mutations from a real client show in Prometheus, with the server's own machine beside."""
    mach = am.Machine(SCHEMA, id="served")
    async with rpc.Server([mach], metrics=True) as server:
        prom = prom_server([f"127.0.0.1:{server.port}"])
        client = rpc.Client(server.url)
        await client.start()
        try:
            net = await client.machine("served")
            for _ in range(5):
                assert await net.toggle1("A") == am.Executed
        finally:
            await client.close()
        query = 'am_transitions_total{machine_id="served"}'
        await prom.poll(query, lambda r: bool(r) and r[0]["value"][1] == "5")
        own = await prom.poll("am_transitions_total", lambda r: len(r) == 2)
        assert {r["metric"]["machine_id"] for r in own} == {"served", server.mach.id}


async def test_one_series_per_machine_while_the_server_runs() -> None:
    """Exposed twice, counted once; unexposed, unbound; stopped, nothing left bound."""
    mach = am.Machine(SCHEMA, id="twice")
    server = rpc.Server([mach], metrics=True)
    server.expose(mach, "alias")
    assert bound(mach) == []  # nothing is bound before the server runs
    await server.start()
    try:
        assert len(bound(mach)) == 1
        mach.add1("A")
        status, ctype, text = await get(metrics_url(server))
        assert status == 200 and ctype.startswith("text/plain")
        assert text.count('am_transitions_total{machine_id="twice"} 1.0') == 1
        server.unexpose("alias")
        assert len(bound(mach)) == 1
        server.unexpose("twice")
        assert bound(mach) == []
        _, _, text = await get(metrics_url(server))
        assert 'machine_id="twice"' not in text
        late = am.Machine(SCHEMA, id="late")
        server.expose(late)
        late.add1("B")
        _, _, text = await get(metrics_url(server))
        assert 'am_states_added_total{machine_id="late"} 1.0' in text
    finally:
        await server.stop()
    assert bound(late) == [] and bound(server.mach) == []
    assert server.metrics_registry is not None


async def test_openmetrics_when_asked() -> None:
    async with rpc.Server([am.Machine(SCHEMA, id="om")], metrics=True) as server:
        status, ctype, text = await get(
            metrics_url(server), "application/openmetrics-text; version=1.0.0"
        )
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


async def test_without_metrics_there_is_no_route() -> None:
    """The default server has no /metrics: the port stays a WebSocket endpoint (426)."""
    mach = am.Machine(SCHEMA, id="plain")
    async with rpc.Server([mach]) as server:
        status, _, text = await get(metrics_url(server))
        assert bound(mach) == []
    assert status == 426 and "WebSocket" in text
    assert server.metrics_registry is None


def test_missing_prometheus_client_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"asyncmachine\[telemetry\]"):
        rpc.Server(metrics=True)
