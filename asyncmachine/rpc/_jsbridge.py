"""The JS bridge for remote machines: ``am.connect(url, ...)`` in ``web/asyncmachine.mjs``.

The page drives a :class:`NetMachine` exactly like a local machine; mutations answer later (the
server has to), through ``notify("result", id, envelope)``. ``connection`` exposes the client's
own machine (``Connecting``, ``Ready``, ``Disconnected``, ...) read-only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from .._bridge import (
    Bridge,
    BridgeError,
    MachineBridge,
    Notify,
    dumps,
    error_envelope,
    page_args,
)
from .._result import Result
from ._client import Client
from ._netmachine import NetMachine


class NetBridge(Bridge):
    """A remote machine for the page: local reads and waits, mutations through the server."""

    def __init__(self, client: Client, net: NetMachine, notify: Notify) -> None:
        super().__init__(net, notify)
        self.client = client
        self.net = net
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_updates = net.on_update(self._updated)
        self._stop_payloads = client.on_payload(self._payload)
        self._methods.update(
            {
                "add": lambda states, args, rid: self._later(rid, net.add(states, page_args(args))),
                "add1": lambda state, args, rid: self._later(rid, net.add1(state, page_args(args))),
                "remove": lambda states, args, rid: self._later(
                    rid, net.remove(states, page_args(args))
                ),
                "remove1": lambda state, args, rid: self._later(
                    rid, net.remove1(state, page_args(args))
                ),
                "set": lambda states, args, rid: self._later(rid, net.set(states, page_args(args))),
                "toggle": lambda states, args, rid: self._later(
                    rid, net.toggle(states, page_args(args))
                ),
                "toggle1": lambda state, args, rid: self._later(
                    rid, net.toggle1(state, page_args(args))
                ),
                "sync": lambda rid: self._later(rid, net.sync()),
            }
        )

    def connection(self, notify: Notify) -> MachineBridge:
        """The client's connection machine, read-only."""
        return MachineBridge(self.client.mach, notify, writable=False)

    def resources(self) -> int:
        return super().resources() + len(self._tasks)

    def _later(self, rid: str, awaitable: Awaitable[Result | None]) -> None:
        """Run a remote call; its result (or error) reaches the page as a "result" notice."""

        async def run() -> None:
            try:
                result = await awaitable
            except Exception as err:
                payload = error_envelope(err)
            else:
                payload = dumps({"ok": None if result is None else int(result)})
            self.notify("result", str(rid), payload)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _updated(self, activated: list[str], deactivated: list[str]) -> None:
        self.publish({"type": "remote", "added": activated, "removed": deactivated})

    def _payload(self, name: str, data: Any, machine_id: str | None) -> None:
        if machine_id in (None, self.net.id):
            self.notify("payload", name, dumps(data))

    def _dispose(self) -> None:
        """Close the connection; pending waiters and calls end cancelled."""
        self._stop_updates()
        self._stop_payloads()
        for task in list(self._tasks):
            task.cancel()
        self.net._dispose()
        asyncio.get_running_loop().create_task(self.client.close())
        super()._dispose()


async def connect_bridge(url: str, opts_json: str, notify: Notify) -> NetBridge | str:
    """Connect, mirror the machine ``opts.id``, and return its bridge (or an error envelope)."""
    try:
        opts = json.loads(opts_json) if opts_json else {}
        if not isinstance(opts, dict) or not isinstance(opts.get("id"), str):
            raise BridgeError('connect needs {"id": "<machine id>"}')
        client = Client(
            url,
            token=opts.get("token"),
            client_id=opts.get("clientId"),
            request_timeout=float(opts.get("timeout", 10.0)),
            backoff=float(opts.get("backoff", 0.5)),
        )
        try:
            await client.connect()
            net = await client.machine(opts["id"])
        except BaseException:
            await client.close()
            raise
        return NetBridge(client, net, notify)
    except Exception as err:
        return error_envelope(err)
