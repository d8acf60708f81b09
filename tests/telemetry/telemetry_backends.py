"""Real backends for the telemetry tests, all on 127.0.0.1 and stopped at teardown.

- Debian's Prometheus server and Pushgateway, started as processes (see ``conftest``);
- :class:`Receiver`: an HTTP server recording each request, which can answer slowly or with an
  error status (the Loki push API and OTLP/HTTP are checked through it).

Importing this module needs none of the telemetry extras (the Pyodide run collects the
conftest that imports it); the test modules skip themselves where subprocesses and sockets are
not available.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 10.0
"""Upper bound for anything a test waits on: a broken feature fails instead of hanging."""


def free_port() -> int:
    """A port nothing listens on right now (for servers that cannot be given port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bytes(resp.read())


async def http_get(url: str) -> bytes:
    """GET ``url`` without blocking the loop (the machine under test keeps running)."""
    return await asyncio.to_thread(_http_get, url)


def start_process(argv: list[str], ready_url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a server process and wait until ``ready_url`` answers 200."""
    exe = shutil.which(argv[0])
    if exe is None:
        pytest.fail(f"{argv[0]} is not installed: run `make prometheus`")
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, *argv[1:]], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{argv[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            _http_get(ready_url)
            return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)  # an external process: nothing to wait on but its port
    stop_process(proc)
    pytest.fail(f"{argv[0]} not ready after {TIMEOUT}s: {log.read_text()[-2000:]}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Prometheus:
    """A running Prometheus server: ``query`` its HTTP API."""

    url: str

    async def query(self, promql: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": promql})
        data = json.loads(await http_get(f"{self.url}/api/v1/query?{q}"))
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    async def poll(
        self, promql: str, done: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        """Query until ``done(result)``: Prometheus scrapes on its own schedule."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                result = await self.query(promql)
                if done(result):
                    return result
                await asyncio.sleep(0.1)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording requests; set ``status``/``delay`` to misbehave."""

    url: str
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    requested: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after every request is recorded."""

    async def wait_for(self, pred: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Wait until ``pred()`` holds, checking again after each request."""
        async with asyncio.timeout(timeout):
            while not pred():
                self.requested.clear()
                await self.requested.wait()
