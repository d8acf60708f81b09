"""Fixtures with real backends for the telemetry tests (see ``telemetry_backends``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from telemetry_backends import (
    Prometheus,
    Receiver,
    Request,
    free_port,
    start_process,
    stop_process,
)

if TYPE_CHECKING:
    from aiohttp import web


@pytest.fixture
def prom_server(tmp_path: Path) -> Iterator[Callable[[list[str]], Prometheus]]:
    """``prom_server([host:port, ...])``: Debian's Prometheus scraping them every 100 ms."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str]) -> Prometheus:
        n = len(procs)
        config = tmp_path / f"prometheus{n}.yml"
        config.write_text(
            "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n"
            "scrape_configs:\n  - job_name: am\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        port = free_port()
        argv = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / f'prometheus{n}-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        url = f"http://127.0.0.1:{port}"
        procs.append(start_process(argv, f"{url}/-/ready", tmp_path / f"prometheus{n}.log"))
        return Prometheus(url)

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """The base URL of Debian's Prometheus Pushgateway, running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    proc = start_process(argv, f"{url}/-/ready", tmp_path / "pushgateway.log")
    yield url
    stop_process(proc)


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[], Awaitable[Receiver]]]:
    """``await receiver()``: a started :class:`Receiver` (any path, any method)."""
    from aiohttp import web

    runners: list[web.AppRunner] = []

    async def start() -> Receiver:
        rec: Receiver

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if rec.delay:
                await asyncio.sleep(rec.delay)
            rec.requests.append(Request(request.method, request.path, dict(request.headers), body))
            rec.requested.set()
            return web.Response(status=rec.status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        rec = Receiver(f"http://127.0.0.1:{runner.addresses[0][1]}")
        return rec

    yield start
    for runner in runners:
        await runner.cleanup()
