"""Fixtures of the NATS tests: a real ``nats-server`` (or a cluster) per test, stopped after."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator

import pytest

if sys.platform != "emscripten":
    from nats_support import NatsServer, cluster


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer().start()
    yield server
    server.stop()


@pytest.fixture
def nats_cluster() -> Iterator[list[NatsServer]]:
    nodes = cluster(3)
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
async def closing() -> AsyncIterator[list[object]]:
    """Things with an async ``close()``/``stop()`` to end at teardown (in reverse order)."""
    things: list[object] = []
    yield things
    for thing in reversed(things):
        ender = getattr(thing, "close", None) or thing.stop
        try:
            await ender()
        except Exception:
            pass
