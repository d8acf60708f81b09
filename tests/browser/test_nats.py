"""A Chromium page connected to gateway B drives a machine hosted behind gateway A, over NATS."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

Page = Any


class Site:
    """nats-server, a host with gateway A in front of it, and gateway B, on a loop thread."""

    def __init__(self) -> None:
        import asyncmachine as am
        from asyncmachine import rpc
        from bench.natsproc import NatsServer

        self.nats = NatsServer().start()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.machine = am.Machine(
            {"Idle": am.State(auto=True, remove=("Busy",)), "Busy": am.State(remove=("Idle",))},
            id="far",
        )

        async def start() -> tuple[Any, Any, Any]:
            self.machine.add1("Idle")
            host = await rpc.nats.expose(self.machine, self.nats.url)
            a = rpc.Server(nats=self.nats.url)
            b = rpc.Server(nats=self.nats.url)
            await a.start()
            await b.start()
            return host, a, b

        self.host, self.a, self.b = self.call(start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        async def stop() -> None:
            await self.b.stop()
            await self.a.stop()
            await self.host.close()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.nats.stop()


@pytest.fixture(scope="module")
def nats_site() -> Iterator[Site]:
    pytest.importorskip("nats")
    site = Site()
    yield site
    site.close()


def test_page_on_gateway_b_drives_a_machine_behind_gateway_a(
    bridge_page: tuple[Page, Any], nats_site: Site
) -> None:
    page, _ = bridge_page
    out = page.evaluate(
        """async (url) => {
        const m = await am.connect(url, {id: "far", clientId: "via-b"});
        await m.connection.when1("Ready");
        const before = m.stringAll();
        const result = await m.add1("Busy");
        window.far = m;
        window.idleAgain = m.when1("Idle");
        return {before, result, after: m.stringAll()};
    }""",
        nats_site.b.url,
    )
    assert out["before"] == "(Idle:1) [Busy:0 Exception:0]"
    assert out["result"] == 0
    assert out["after"] == "(Busy:1) [Exception:0 Idle:2]"

    async def at_host() -> str:
        assert nats_site.machine.is1("Busy")
        nats_site.machine.add1("Idle")  # a change at the host reaches the page through NATS
        return str(nats_site.machine.string_all())

    assert nats_site.call(at_host()) == "(Idle:3) [Busy:2 Exception:0]"
    assert page.evaluate("window.idleAgain.then(() => far.stringAll())") == (
        "(Idle:3) [Busy:2 Exception:0]"
    )
