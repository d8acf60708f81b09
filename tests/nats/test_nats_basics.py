"""Hosting, gateways and direct clients on one real nats-server, in this process."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("needs nats-server and sockets", allow_module_level=True)

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from nats_support import NatsServer, free_port

import asyncmachine as am
from asyncmachine import rpc

SCHEMA: am.Schema = {
    "A": am.State(),
    "B": am.State(require=("A",)),
    "C": am.State(remove=("A",)),
    "Multi": am.State(multi=True),
}


async def test_direct_client_mirrors_and_mutates(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    mach = am.Machine(SCHEMA, id="orders")
    host = await rpc.nats.expose(mach, nats_server.url)
    closing.append(host)
    net = await rpc.nats.connect(nats_server.url, "orders")
    closing.append(net)
    assert net.state_names() == mach.state_names()
    assert await net.add1("B") == am.Canceled  # requires A, resolved at the host
    assert await net.add(["A", "B"]) == am.Executed
    assert net.is1("B") and mach.is1("B")
    assert list(net.time()) == list(mach.time())
    mach.add1("C")  # a change made at the host reaches the mirror
    await asyncio.wait_for(net.when1("C"), 5)
    assert list(net.time()) == list(mach.time())
    assert await net.can_add1("B") == am.Canceled


async def test_second_host_of_an_id_is_refused(nats_server: NatsServer, closing: list[Any]) -> None:
    host = await rpc.nats.expose(am.Machine(SCHEMA, id="one"), nats_server.url)
    closing.append(host)
    with pytest.raises(ValueError, match="already hosted"):
        await rpc.nats.expose(am.Machine(SCHEMA, id="one"), nats_server.url)
    # two at once: exactly one stays
    results = await asyncio.gather(
        rpc.nats.expose(am.Machine(SCHEMA, id="two"), nats_server.url),
        rpc.nats.expose(am.Machine(SCHEMA, id="two"), nats_server.url),
        return_exceptions=True,
    )
    hosts = [r for r in results if isinstance(r, rpc.nats.Host)]
    errors = [r for r in results if isinstance(r, ValueError)]
    closing.extend(hosts)
    assert len(hosts) == 1 and len(errors) == 1, results


async def test_bad_machine_ids_and_unknown_machines(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    with pytest.raises(ValueError, match="subject token"):
        await rpc.nats.expose(am.Machine(SCHEMA, id="a.b"), nats_server.url)
    with pytest.raises(ValueError, match="subject token"):
        await rpc.nats.connect(nats_server.url, "x*")
    with pytest.raises(rpc.RpcError) as err:
        await rpc.nats.connect(nats_server.url, "nobody", request_timeout=3)
    assert err.value.code == "unknown_machine"


async def test_gateways_serve_a_machine_hosted_elsewhere(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    mach = am.Machine(SCHEMA, id="shared")
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    gateways = []
    for _ in range(2):
        server = rpc.Server(nats=nats_server.url)
        await server.start()
        closing.append(server)
        gateways.append(server)
    clients = []
    for server in gateways:
        client = await rpc.Client(server.url).connect()
        closing.append(client)
        clients.append(client)
    a = await clients[0].machine("shared")
    b = await clients[1].machine("shared")
    assert await a.add1("A") == am.Executed
    assert a.is1("A")  # read your writes, through the host
    await asyncio.wait_for(b.when1("A"), 5)
    assert await b.add1("Multi") == am.Executed
    for net in (a, b):
        await asyncio.wait_for(_until(net, lambda n=net: list(n.time()) == list(mach.time())), 5)
    assert a.seq == b.seq  # one chain: the host's


async def test_policies_apply_at_the_gateway(nats_server: NatsServer, closing: list[Any]) -> None:
    mach = am.Machine(SCHEMA, id="guarded")
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    viewer = rpc.Principal("viewer", default=rpc.Policy(write=False))
    limited = rpc.Principal("limited", default=rpc.Policy(states=["A"], read_states=["A", "B"]))
    auth = rpc.tokens({"v": viewer, "l": limited})
    server = rpc.Server(nats=nats_server.url, authenticate=auth)
    await server.start()
    closing.append(server)
    with pytest.raises(rpc.AuthError):
        await rpc.Client(server.url, token="nope").connect()
    view = await rpc.Client(server.url, token="v").connect()
    closing.append(view)
    net = await view.machine("guarded")
    with pytest.raises(rpc.RpcError) as err:
        await net.add1("A")
    assert err.value.code == "forbidden"
    lim = await rpc.Client(server.url, token="l").connect()
    closing.append(lim)
    small = await lim.machine("guarded")
    assert small.state_names() == ["A", "B"]
    assert await small.add1("A") == am.Executed
    with pytest.raises(rpc.RpcError) as err:
        await small.add1("B")  # B is outside its policy: refused by the host's resolution
    assert err.value.code == "forbidden"
    with pytest.raises(am.StateMissingError):
        await small.add1("C")  # not even visible
    assert mach.is1("A") and not mach.is1("B")
    assert await small.can_add1("B") == am.Canceled
    x = await small.explain_add1("B")
    assert x.canceled_by == "policy"
    assert await net.can_add1("B") == am.Canceled  # a viewer cannot mutate: canceled


async def test_resume_on_another_gateway_without_a_snapshot(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    mach, first, second = await _host_and_two_gateways(nats_server, closing, "resumed")
    client = await rpc.Client(first.url).connect()
    closing.append(client)
    net = await client.machine("resumed")
    await net.add1("A")
    seq = net.seq
    frames: list[dict[str, Any]] = []
    other = await rpc.Client(second.url).connect()  # the second gateway follows it too
    closing.append(other)
    await other.machine("resumed")
    mach.add1("Multi")  # a change while the client moves
    await asyncio.wait_for(_until(net, lambda: net.seq != seq), 5)
    seq = net.seq
    mach.add1("Multi")
    # move: the client's next connection goes to the second gateway
    client.url = second.url
    original = client.session.receive

    def spy(frame: str | bytes, now: float) -> None:
        frames.append(rpc._protocol.decode(frame))
        original(frame, now)

    client.session.receive = spy  # type: ignore[method-assign]
    await first.stop()
    await asyncio.wait_for(client.mach.when1("Connected"), 10)
    await asyncio.wait_for(client.mach.when1("Ready"), 10)
    await asyncio.wait_for(_until(net, lambda: list(net.time()) == list(mach.time())), 5)
    kinds = [f["t"] for f in frames]
    assert "snap" not in kinds, kinds  # resumed with a diff
    assert net.seq > seq


async def _host_and_two_gateways(
    nats_server: NatsServer, closing: list[Any], machine_id: str
) -> tuple[am.Machine, rpc.Server, rpc.Server]:
    mach = am.Machine(SCHEMA, id=machine_id)
    closing.append(await rpc.nats.expose(mach, nats_server.url))
    first = rpc.Server(nats=nats_server.url)
    second = rpc.Server(nats=nats_server.url)
    for server in (first, second):
        await server.start()
        closing.append(server)
    return mach, first, second


async def _until(net: Any, check: Any) -> None:
    """Wait until ``check()`` holds, re-checking on every change of the mirror."""
    if check():
        return
    done = asyncio.get_running_loop().create_future()

    def listener(*_: Any) -> None:
        if check() and not done.done():
            done.set_result(None)

    remove = net.on_update(listener)
    try:
        if not check():
            await done
    finally:
        remove()


async def test_gateways_list_hosted_machines_within_two_seconds(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    server = rpc.Server(nats=nats_server.url)
    await server.start()
    closing.append(server)
    loop = asyncio.get_running_loop()
    exposed_at = loop.time()
    closing.append(await rpc.nats.expose(am.Machine(SCHEMA, id="listed"), nats_server.url))
    while "listed" not in server.hub.visible(rpc.Principal("anyone")):  # the contract: 2 s
        assert loop.time() - exposed_at < 2.0
        await asyncio.sleep(0.02)
    client = await rpc.Client(server.url).connect()
    closing.append(client)
    assert "listed" in client.server_machines
    net = await client.machine("listed")
    assert set(net.state_names()) == {"A", "B", "C", "Multi", "Exception"}


def test_import_asyncmachine_rpc_leaves_nats_out() -> None:
    code = (
        "import sys, asyncmachine, asyncmachine.rpc\n"
        "assert 'nats' not in sys.modules and 'asyncmachine.rpc.nats' not in sys.modules\n"
        "from asyncmachine import rpc\n"
        "assert rpc.nats.expose and 'nats' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_subject_permissions_lock_a_reader_out_of_mutations(
    tmp_path: Any, closing: list[Any]
) -> None:
    """The permissions of docs/scale-out.md, on a real nats-server: hosts, gateways and a
    reader that can mirror but not mutate."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "scale-out.md").read_text()
    config = doc[doc.index("authorization {") :]
    config = config[: config.index("```")]
    path = tmp_path / "nats.conf"
    path.write_text(config)
    server = NatsServer(config=str(path)).start()
    closing.append(_Stopper(server))
    url = f"nats://127.0.0.1:{server.port}"
    mach = am.Machine(SCHEMA, id="locked")
    closing.append(await rpc.nats.expose(mach, url, user="host", password="h-secret"))
    gateway = rpc.Server(nats=url, nats_options={"user": "gateway", "password": "g-secret"})
    await gateway.start()
    closing.append(gateway)
    client = await rpc.Client(gateway.url).connect()
    closing.append(client)
    net = await client.machine("locked")
    assert await net.add1("A") == am.Executed  # a gateway may mutate
    reader = await rpc.nats.connect(
        url, "locked", user="reader", password="r-secret", request_timeout=1.0
    )
    closing.append(reader)
    assert reader.is1("A")  # a reader mirrors
    with pytest.raises(rpc.RpcError):
        await reader.add1("C")  # but NATS refuses its mutation
    assert not mach.is1("C")
    with pytest.raises(rpc.AuthError):
        await rpc.nats.connect(url, "locked", user="reader", password="wrong")
    with pytest.raises(rpc.ConnectError):
        await rpc.nats.expose(mach, f"nats://127.0.0.1:{free_port()}", connect_wait=0.5)


class _Stopper:
    def __init__(self, server: NatsServer) -> None:
        self.server = server

    async def stop(self) -> None:
        self.server.stop()


async def test_resume_on_a_gateway_that_never_followed_the_machine(
    nats_server: NatsServer, closing: list[Any]
) -> None:
    """A fresh gateway asks the host for the clock at the client's seq (``since``) and resumes
    the client with a diff, too."""
    mach, first, second = await _host_and_two_gateways(nats_server, closing, "fresh")
    client = await rpc.Client(first.url, backoff=0.05).connect()
    closing.append(client)
    net = await client.machine("fresh")
    await net.add1("A")
    assert "fresh" not in second._gateway.machines  # the second one never heard of it
    frames: list[dict[str, Any]] = []
    original = client.session.receive

    def spy(frame: str | bytes, now: float) -> None:
        frames.append(rpc._protocol.decode(frame))
        original(frame, now)

    client.session.receive = spy  # type: ignore[method-assign]
    client.url = second.url
    await first.stop()
    mach.add1("Multi")  # while it moves
    await asyncio.wait_for(_until(net, lambda: list(net.time()) == list(mach.time())), 10)
    assert "snap" not in [f["t"] for f in frames]
