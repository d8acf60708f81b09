"""The Python half of the JS bridge for remote machines: ``am.connect(url, ...)`` in the page.

The page drives a :class:`NetMachine` exactly like a local machine; mutations and dry runs answer
later (the server has to), through ``notify("result", id, envelope)``. ``connection`` exposes the
client's own machine (``Connecting``, ``Ready``, ``Disconnected``, ...) read-only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..rpc._client import Client
from ..rpc._errors import ConnectError, RemoteError
from ..rpc._netmachine import NetMachine
from ._local import (
    Bridge,
    BridgeError,
    MachineBridge,
    Notify,
    dumps,
    error_envelope,
    explanation,
    page_args,
)
from ._methods import of_kind


def _number(result: Any) -> Any:
    return None if result is None else int(result)


class NetBridge(Bridge):
    """A remote machine for the page: local reads and waits, mutations through the server."""

    def __init__(self, client: Client, net: NetMachine, notify: Notify) -> None:
        super().__init__(net, notify)
        self.client = client
        self.net = net
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_updates = net.on_update(self._updated)
        self._stop_payloads = client.on_payload(self._payload)
        later = self._later

        def call(
            method: Callable[..., Awaitable[Any]], convert: Callable[[Any], Any] = _number
        ) -> Callable[..., None]:
            """A page method ``(params..., args, rid)`` answered later through ``notify``."""

            def start(first: Any, args: Any, rid: str) -> None:
                later(rid, method(first, page_args(args)), convert)

            return start

        for method in of_kind("mutation", "dry_run", "explain"):
            convert = explanation if method.kind == "explain" else _number
            self._methods[method.js] = call(getattr(net, method.py), convert)
        self._methods.update(
            {
                "addErr": lambda name, msg, args, rid: later(
                    rid, net.add_err(_page_error(name, msg), page_args(args)), _number
                ),
                "addErrState": lambda state, name, msg, args, rid: later(
                    rid, net.add_err_state(state, _page_error(name, msg), page_args(args)), _number
                ),
                "sync": lambda rid: later(rid, net.sync(), _number),
            }
        )

    def connection(self, notify: Notify) -> MachineBridge:
        """The client's connection machine, read-only."""
        return MachineBridge(self.client.mach, notify, writable=False)

    def resources(self) -> int:
        return super().resources() + len(self._tasks)

    def _later(self, rid: str, awaitable: Awaitable[Any], convert: Callable[[Any], Any]) -> None:
        """Run a remote call; its result (or error) reaches the page as a "result" notice."""

        async def run() -> None:
            try:
                result = await awaitable
            except Exception as err:
                payload = error_envelope(err)
            else:
                payload = dumps({"ok": convert(result)})
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


def _page_error(name: Any, message: Any) -> RemoteError:
    """An error the page reported: its JS type name (``TypeError``) and message travel."""
    return RemoteError(str(name or "Error"), str(message))


def _connect_error(err: ConnectError) -> str:
    """The page's ``ConnectError``: its message is the reason (``refused``, ``not_found``...)."""
    return dumps({"error": {"type": "ConnectError", "message": err.reason, "detail": err.detail}})


async def connect_bridge(url: str, opts_json: str, notify: Notify) -> NetBridge | str:
    """Connect, mirror the machine ``opts.id`` (only ``opts.states``, when given), and return
    its bridge (or an error envelope)."""
    try:
        opts = json.loads(opts_json) if opts_json else {}
        if not isinstance(opts, dict) or not isinstance(opts.get("id"), str):
            raise BridgeError('connect needs {"id": "<machine id>"}')
        states = opts.get("states")
        if states is not None and (
            not isinstance(states, list) or not all(isinstance(s, str) for s in states)
        ):
            raise BridgeError("states must be a list of state names")
        client = Client(
            url,
            token=opts.get("token"),
            client_id=opts.get("clientId"),
            tab_id=opts.get("tabId"),
            request_timeout=float(opts.get("timeout", 10.0)),
            backoff=float(opts.get("backoff", 0.5)),
        )
        try:
            await client.connect()
            net = await client.machine(opts["id"], states)
        except BaseException:
            await client.close()
            raise
        return NetBridge(client, net, notify)
    except ConnectError as err:
        return _connect_error(err)
    except Exception as err:
        return error_envelope(err)
