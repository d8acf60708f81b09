"""Supervisors found through NATS (the discovery seam of worker pools)."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("needs nats-server", allow_module_level=True)

from typing import Any

from nats_support import NatsServer

from asyncmachine import rpc


async def test_supervisors_of_a_kind_announce_and_withdraw(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    sup_a = rpc.nats.NatsDiscovery(nats_server.url)
    sup_b = rpc.nats.NatsDiscovery(nats_server.url)
    client = rpc.nats.NatsDiscovery(nats_server.url, timeout=0.5)
    closing += [sup_a, sup_b, client]
    assert await client.supervisors("hash") == []  # nobody yet: empty after the timeout
    await sup_a.announce("hash", "s1", "ws://127.0.0.1:1001")
    await sup_b.announce("hash", "s2", "ws://127.0.0.1:1002")
    await sup_b.announce("resize", "s3", "ws://127.0.0.1:1003")
    assert sorted(await client.supervisors("hash")) == [
        "ws://127.0.0.1:1001",
        "ws://127.0.0.1:1002",
    ]
    assert await client.supervisors("resize") == ["ws://127.0.0.1:1003"]
    await sup_a.withdraw("hash", "s1")
    assert await client.supervisors("hash") == ["ws://127.0.0.1:1002"]
    await sup_b.close()
    assert await client.supervisors("hash") == []


async def test_a_kind_must_be_a_subject_token(nats_server: NatsServer, closing: list[Any]) -> None:
    discovery = rpc.nats.NatsDiscovery(nats_server.url)
    closing.append(discovery)
    with pytest.raises(ValueError, match="subject token"):
        await discovery.supervisors("a.b")
    with pytest.raises(ValueError, match="subject token"):
        await discovery.announce("bad kind", "s1", "ws://x")
