"""The RPC client: a connection that is itself a state machine, and the mirrors it keeps in sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from .._machine import Machine
from .._result import Result
from .._schema import State
from .._states_base import StatesBase
from .._waiter import Waiter
from . import _protocol as p
from ._netmachine import NetMachine
from ._transport import Connector, Transport, TransportClosed, default_connector

log = logging.getLogger("asyncmachine.rpc")


class ClientStates(StatesBase):
    """The connection's states: apps wait on ``Ready`` and react to ``Disconnected``."""

    Start: str
    Connecting: str
    Connected: str
    Ready: str
    Retrying: str
    Disconnected: str
    ErrNetwork: str
    ErrAuth: str
    ErrRpc: str


ss = ClientStates()

CLIENT_SCHEMA: dict[str, State] = {
    ss.Exception: State(multi=True),
    ss.Start: State(),
    ss.Connecting: State(require=(ss.Start,), remove=(ss.Connected, ss.Disconnected)),
    ss.Connected: State(require=(ss.Start,), remove=(ss.Connecting, ss.Disconnected)),
    ss.Ready: State(require=(ss.Connected,)),
    ss.Retrying: State(require=(ss.Start,), remove=(ss.Connecting, ss.Connected)),
    ss.Disconnected: State(auto=True, remove=(ss.Connecting, ss.Connected)),
    ss.ErrNetwork: State(multi=True, require=(ss.Exception,)),
    ss.ErrAuth: State(require=(ss.Exception,)),
    ss.ErrRpc: State(multi=True, require=(ss.Exception,)),
}


class RpcError(Exception):
    """The server answered a request with an error (``code`` is the protocol's error code)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class AuthError(RpcError):
    """The server refused the token."""


class DisconnectedError(ConnectionError):
    """The connection dropped before the server answered."""


PayloadHandler = Callable[[str, Any, "str | None"], None]
"""``handler(name, data, machine_id)``."""


class _Request:
    __slots__ = ("future", "machine", "message", "retry")

    def __init__(self, message: dict[str, Any], machine: NetMachine | None, retry: bool) -> None:
        self.message = message
        self.machine = machine
        self.retry = retry
        self.future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()


class Client:
    """Connects to a :class:`Server`, reconnects with backoff and jitter, mirrors machines.

    ``client.mach`` is the connection as a machine (:class:`ClientStates`). Mutations carry an
    idempotency key, so one in flight when the connection drops is sent again after the
    reconnect and still runs only once. Payloads go to ``on_payload`` handlers and, when a
    ``consumer`` machine with a ``ServerPayload`` state is given, to that state's args.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        consumer: Machine | None = None,
        connector: Connector | None = None,
        request_timeout: float = 10.0,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
        max_retries: int | None = None,
        max_frame: int = 16 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.token = token
        self.client_id = client_id or "c-" + secrets.token_hex(6)
        self.consumer = consumer
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_retries = max_retries
        self.mach = Machine(CLIENT_SCHEMA, id=f"rpc-{self.client_id}")
        self.mach.verify_states(ss.names())
        self.server_machines: list[str] = []
        self.session_id = ""
        self.heartbeat = 15.0
        self.reconnects = 0
        self._connector = connector or default_connector(max_frame)
        self._machines: dict[str, NetMachine] = {}
        self._requests: dict[int, _Request] = {}
        self._next_id = 0
        self._transport: Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._payload_handlers: list[PayloadHandler] = []
        self._last_seen = 0.0

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Start connecting (and reconnecting) in the background."""
        if self._task is not None:
            return
        self.mach.add1(ss.Start)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def connect(self, timeout: float | None = None) -> Client:
        """Start, then wait until ``Ready``; raises ``AuthError`` when the token is refused."""
        await self.start()
        ready = self.mach.when1(ss.Ready)
        refused = self.mach.when1(ss.ErrAuth)
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(_: Waiter) -> None:
            if not settled.done():
                settled.set_result(None)

        ready.add_done_callback(done)
        refused.add_done_callback(done)
        try:
            await asyncio.wait_for(
                settled, timeout if timeout is not None else self.request_timeout
            )
        except TimeoutError:
            pass
        finally:
            ready.remove_done_callback(done)
            refused.remove_done_callback(done)
        if self.mach.is1(ss.ErrAuth):
            raise AuthError(p.E_AUTH, "authentication refused")
        if not self.mach.is1(ss.Ready):
            raise TimeoutError(f"not connected to {self.url} in time")
        return self

    async def machine(self, machine_id: str) -> NetMachine:
        """Mirror the server's machine ``machine_id``: returns once its snapshot arrived."""
        net = self._machines.get(machine_id)
        if net is None:
            net = self._machines[machine_id] = NetMachine(self, machine_id)
        try:
            if self.mach.is1(ss.Connected):
                await self._request({"t": "sub", "m": machine_id}, net, retry=False)
            else:
                await asyncio.wait_for(_await(self.mach.when1(ss.Ready)), self.request_timeout)
        except BaseException:
            if not net.state_names():  # never mirrored: forget it, or reconnects would retry it
                self._forget(machine_id)
            raise
        return net

    def _forget(self, machine_id: str) -> None:
        net = self._machines.pop(machine_id, None)
        if net is not None:
            net._dispose()

    def on_payload(self, handler: PayloadHandler) -> Callable[[], None]:
        """Call ``handler(name, data, machine_id)`` for every payload; returns the remover."""
        self._payload_handlers.append(handler)
        return lambda: self._payload_handlers.remove(handler)

    async def close(self) -> None:
        """Say bye, close the connection and stop reconnecting; mirrors are disposed."""
        self.mach.remove1(ss.Start)
        transport = self._transport
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.send(p.encode({"t": "bye", "reason": "client closed"}))
                await transport.close(p.CLOSE_NORMAL, "bye")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for net in self._machines.values():
            net._dispose()
        self._fail_requests(DisconnectedError("client closed"), keep_retries=False)

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ requests

    async def _mutate(
        self,
        net: NetMachine,
        op: str,
        states: list[str],
        args: dict[str, Any] | None,
        key: str | None,
    ) -> Result:
        message: dict[str, Any] = {"t": "mut", "m": net.id, "op": op, "states": states}
        if args:
            message["args"] = args
        message["key"] = key or secrets.token_hex(8)
        reply = await self._request(message, net, retry=True)
        return Result(int(reply["r"]))

    async def _sync(self, net: NetMachine) -> None:
        await self._request({"t": "sync", "m": net.id}, net, retry=False)

    async def _request(
        self, message: dict[str, Any], net: NetMachine | None, retry: bool
    ) -> dict[str, Any]:
        """Send a request and wait for its answer. A ``retry`` request survives a reconnect."""
        self._next_id += 1
        rid = message["id"] = self._next_id
        request = _Request(message, net, retry)
        self._requests[rid] = request
        try:
            if self._transport is not None and self.mach.is1(ss.Connected):
                try:
                    await self._send(message)
                except (TransportClosed, OSError) as err:
                    if not retry:
                        raise DisconnectedError(str(err)) from None
                    # the connection is going away: the reconnect resends it
            elif not retry:
                raise DisconnectedError(f"not connected to {self.url}")
            return await asyncio.wait_for(request.future, self.request_timeout)
        finally:
            self._requests.pop(rid, None)

    async def _send(self, message: dict[str, Any]) -> None:
        transport = self._transport
        if transport is None:
            raise DisconnectedError(f"not connected to {self.url}")
        await transport.send(p.encode(message))

    def _fail_requests(self, err: Exception, keep_retries: bool) -> None:
        for request in list(self._requests.values()):
            if keep_retries and request.retry:
                continue
            if not request.future.done():
                request.future.set_exception(err)

    # ------------------------------------------------------------ the connection loop

    async def _run(self) -> None:
        attempt = 0
        mach = self.mach
        while mach.is1(ss.Start):
            mach.add1(ss.Connecting)
            transport: Transport | None = None
            try:
                transport = await asyncio.wait_for(self._connector(self.url), self.request_timeout)
                await self._handshake(transport)
                self._transport = transport
                mach.add1(ss.Connected)
                reader = asyncio.get_running_loop().create_task(self._read(transport))
                try:
                    await self._resume()
                    mach.remove([ss.ErrNetwork, ss.Exception])
                    mach.add1(ss.Ready)
                    attempt = 0
                    await reader
                finally:
                    reader.cancel()
                    with contextlib.suppress(BaseException):
                        await reader
            except AuthError as err:
                mach.add_err_state(ss.ErrAuth, err)
                mach.remove1(ss.Start)
            except RpcError as err:
                mach.add_err_state(ss.ErrRpc, err)
            except Exception as err:  # network, protocol, or a custom transport's failure
                if mach.is1(ss.Start):
                    log.info("client %s: connection lost: %r", self.client_id, err)
                    mach.add_err_state(ss.ErrNetwork, err)
            finally:
                self._transport = None
                mach.remove([ss.Connected, ss.Connecting])
                self._fail_requests(DisconnectedError("connection lost"), keep_retries=True)
                if transport is not None:
                    with contextlib.suppress(Exception):
                        await transport.close(p.CLOSE_GOING_AWAY, "reconnecting")
            if not mach.is1(ss.Start):
                break
            if self.max_retries is not None and attempt >= self.max_retries:
                mach.remove1(ss.Start)
                break
            delay = min(self.backoff_max, self.backoff * 2**attempt) * random.uniform(0.8, 1.2)
            attempt += 1
            self.reconnects += 1
            mach.add1(ss.Retrying)
            try:
                await asyncio.sleep(delay)
            finally:
                mach.remove1(ss.Retrying)

    async def _handshake(self, transport: Transport) -> None:
        hello: dict[str, Any] = {"t": "hello", "v": p.VERSION, "cid": self.client_id}
        if self.token is not None:
            hello["token"] = self.token
        await transport.send(p.encode(hello))
        reply = p.decode(await asyncio.wait_for(transport.recv(), self.request_timeout))
        if reply["t"] == "err":
            cls = AuthError if reply.get("code") == p.E_AUTH else RpcError
            raise cls(str(reply.get("code")), str(reply.get("msg")))
        if reply["t"] != "welcome" or reply.get("v") != p.VERSION:
            raise RpcError(p.E_VERSION, f"unexpected handshake reply {reply['t']!r}")
        self.session_id = str(reply.get("sid", ""))
        self.heartbeat = max(0.05, int(reply.get("hb_ms", 15000)) / 1000)
        machines = reply.get("machines")
        self.server_machines = (
            [m for m in machines if isinstance(m, str)] if isinstance(machines, list) else []
        )

    async def _resume(self) -> None:
        """After (re)connecting: resubscribe every mirror, then resend retryable requests."""
        ids = list(self._machines)
        subscribe = [
            self._request({"t": "sub", "m": machine_id}, self._machines[machine_id], retry=False)
            for machine_id in ids
        ]
        for machine_id, result in zip(
            ids, await asyncio.gather(*subscribe, return_exceptions=True), strict=True
        ):
            if isinstance(result, RpcError) and result.code == p.E_UNKNOWN_MACHINE:
                log.warning("client %s: machine %s is gone", self.client_id, machine_id)
                self._forget(machine_id)
            elif isinstance(result, BaseException):
                raise result
        for request in list(self._requests.values()):
            if request.retry and not request.future.done():
                await self._send(request.message)

    async def _read(self, transport: Transport) -> None:
        """Dispatch frames until the connection closes (or goes quiet for two heartbeats)."""
        self._last_seen = time.monotonic()
        watchdog = asyncio.get_running_loop().create_task(self._watchdog(transport))
        try:
            while True:
                frame = await transport.recv()
                self._last_seen = time.monotonic()
                self._dispatch(p.decode(frame))
        except TransportClosed as err:
            raise DisconnectedError(str(err)) from None
        finally:
            watchdog.cancel()

    async def _watchdog(self, transport: Transport) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if time.monotonic() - self._last_seen > 2 * self.heartbeat:
                log.info("client %s: server silent; closing", self.client_id)
                await transport.close(p.CLOSE_TIMEOUT, "heartbeat timeout")
                return

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        rid = message.get("id")
        request = self._requests.get(rid) if isinstance(rid, int) else None
        machine_id = message.get("m")
        net = self._machines.get(machine_id) if isinstance(machine_id, str) else None
        if kind == "snap":
            if net is not None:
                net._apply_snap(message)
        elif kind == "diff":
            if net is not None and not net._apply_diff(message) and not net._syncing:
                net._syncing = True
                self._background(self._resync(net))
        elif kind == "payload":
            self._deliver(message)
        elif kind == "ping":
            self._background(self._send({"t": "pong", "ts": message.get("ts")}))
        elif kind == "err" and request is None and message.get("code") == p.E_UNKNOWN_MACHINE:
            if net is not None:
                log.warning("client %s: machine %s is gone", self.client_id, net.id)
                self._forget(net.id)
        elif kind == "err" and request is None:
            log.warning(
                "client %s: server error %s: %s",
                self.client_id,
                message.get("code"),
                message.get("msg"),
            )
        if request is not None and not request.future.done():
            if kind == "err":
                request.future.set_exception(
                    RpcError(str(message.get("code")), str(message.get("msg")))
                )
            else:
                request.future.set_result(message)

    async def _resync(self, net: NetMachine) -> None:
        """Recover from a gap in the diff chain with one snapshot."""
        try:
            await self._request({"t": "sync", "m": net.id}, net, retry=False)
        finally:
            net._syncing = False

    def _deliver(self, message: dict[str, Any]) -> None:
        name, data, machine_id = str(message.get("name")), message.get("data"), message.get("m")
        for handler in list(self._payload_handlers):
            try:
                handler(name, data, machine_id)
            except Exception as err:
                self.mach.add_err(err)
        consumer = self.consumer
        if consumer is not None and consumer.has1("ServerPayload"):
            consumer.add1("ServerPayload", {"name": name, "data": data, "machine": machine_id})

    def _background(self, coro: Any) -> None:
        """Fire and forget, logging (not raising) a failure."""
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("background request failed: %r", task.exception())


async def _await(waiter: Waiter) -> None:
    await waiter
