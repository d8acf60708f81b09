"""The asyncio adapter of the client: a connection that is itself a state machine.

The protocol lives in ``ClientSession``; this module opens transports (``websockets`` on CPython,
the browser's ``WebSocket`` in Pyodide), reconnects with backoff and jitter, runs the session's
timer, and turns its answers into awaitable results for ``NetMachine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import asyncmachine as _am

from .._machine import Machine
from .._result import Result
from . import _protocol as p
from ._client_session import Call, ClientSession, Done
from ._errors import (
    AuthError,
    ConnectError,
    DisconnectedError,
    ProtocolError,
    RemoteError,
    RpcError,
)
from ._netmachine import NetMachine, Origin
from ._states import CLIENT_SCHEMA, ClientStates
from ._transport import CLOSE_WAIT, Connector, Transport, TransportClosed, default_connector

log = logging.getLogger("asyncmachine.rpc")

ss = ClientStates()

PayloadHandler = Callable[[str, Any, "str | None"], None]
"""``handler(name, data, machine_id)``."""

MetaHook = Callable[[str, str, list[str]], "Mapping[str, str] | None"]
"""``hook(machine_id, op, states) -> meta``: entries added to a mutation's ``src.meta``."""


class _Link:
    """One connection attempt: the receiver its transport delivers to."""

    def __init__(self, client: Client) -> None:
        self.client = client
        loop = asyncio.get_running_loop()
        self.transport: Transport | None = None
        self.welcome: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.closing = False
        self.wants_reason = not client._was_ready
        """A retry after an outage needs no reason (the browser would spend a request)."""

    def frame_received(self, frame: str | bytes) -> None:
        client = self.client
        if client._link is self:
            client.session.receive(frame, asyncio.get_running_loop().time())

    def connection_lost(self, code: int, reason: str) -> None:
        if self.closed.done():
            return
        self.closed.set_result((code, reason))
        if not self.welcome.done():
            self.welcome.set_exception(
                ConnectError("protocol", f"closed during the handshake ({code} {reason})")
            )
        if self.client._link is self:
            self.client.session.connection_lost(code, reason)


class Client:
    """Connects to a :class:`Server`, reconnects with backoff and jitter, mirrors machines.

    ``client.mach`` is the connection as a machine (:class:`ClientStates`). Mutations carry an
    idempotency key, so one in flight when the connection drops is sent again after the
    reconnect and still runs only once. Payloads go to ``on_payload`` handlers and, when a
    ``consumer`` machine with a ``ServerPayload`` state is given, to that state's args.
    ``tab_id`` (one random id per browser page) and ``add_mutation_meta`` hooks travel with each
    mutation, as its source.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        tab_id: str | None = None,
        consumer: Machine | None = None,
        connector: Connector | None = None,
        origin: str | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float | None = None,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
        max_retries: int | None = None,
        max_frame: int = p.CLIENT_MAX_FRAME,
    ) -> None:
        self.url = url
        self.client_id = client_id or "c-" + secrets.token_hex(6)
        self.tab_id = tab_id
        self.consumer = consumer
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else request_timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_retries = max_retries
        self.mach = Machine(CLIENT_SCHEMA, id=f"rpc-{self.client_id}")
        self.mach.verify_states(ss.names())
        self.reconnects = 0
        self.session = ClientSession(
            self.client_id, token, max_frame=max_frame, request_timeout=request_timeout
        )
        session = self.session
        session.wake = self._pump
        session.on_payload = self._deliver
        session.on_refused = self._refused
        session.on_welcome = self._welcomed
        self._connector = connector or default_connector(max_frame, origin)
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._payload_handlers: list[PayloadHandler] = []
        self._meta_hooks: list[MetaHook] = []
        self._connecting: list[asyncio.Future[None]] = []
        self._was_ready = False

    # ------------------------------------------------------------ what the session learnt

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def heartbeat(self) -> float:
        return self.session.heartbeat

    @property
    def server_machines(self) -> list[str]:
        return self.session.server_machines

    @property
    def server_max_frame(self) -> int | None:
        """The largest frame the server accepts (from its ``welcome``)."""
        return self.session.server_max_frame

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Start connecting (and reconnecting) in the background."""
        if self._task is not None:
            return
        self.mach.add1(ss.Start)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def connect(self, timeout: float | None = None) -> Client:
        """Start, then wait until ``Ready``. Raises ``AuthError`` for a refused token and
        ``ConnectError`` (with its ``reason``) as soon as the first connection fails; the
        client then stops."""
        await self.start()
        if self.mach.is1(ss.Ready):
            return self
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._connecting.append(waiter)
        limit = timeout if timeout is not None else self.request_timeout
        try:
            await asyncio.wait_for(waiter, limit)
        except TimeoutError:
            raise ConnectError("timeout", f"not connected to {self.url} in {limit:g} s") from None
        finally:
            if waiter in self._connecting:
                self._connecting.remove(waiter)
        return self

    async def machine(self, machine_id: str, states: list[str] | None = None) -> NetMachine:
        """Mirror the server's machine ``machine_id`` (only ``states``, when given): returns
        once its snapshot arrived."""
        if states is not None and (
            isinstance(states, str) or not all(isinstance(s, str) for s in states)
        ):
            raise TypeError("states must be a list of state names")
        session = self.session
        if not session.connected:
            connected = self.mach.when1(ss.Connected)
            await asyncio.wait_for(_wait(connected), self.request_timeout)
        net = session.mirrors.get(machine_id)
        fresh = net is None
        if net is None:
            net = NetMachine(self, machine_id)
        session.add_mirror(net, None if states is None else list(states))
        try:
            await self._call(lambda done: session.subscribe(machine_id, done))
        except BaseException:
            if fresh and not net.state_names():  # never mirrored: forget it
                session.drop_mirror(machine_id)
            raise
        return net

    def on_payload(self, handler: PayloadHandler) -> Callable[[], None]:
        """Call ``handler(name, data, machine_id)`` for every payload; returns the remover."""
        self._payload_handlers.append(handler)
        return lambda: self._payload_handlers.remove(handler)

    def add_mutation_meta(self, hook: MetaHook) -> Callable[[], None]:
        """Call ``hook(machine_id, op, states)`` for every outgoing mutation; the strings it
        returns travel in the mutation's ``src.meta`` (e.g. W3C ``traceparent``). Returns the
        remover."""
        self._meta_hooks.append(hook)
        return lambda: self._meta_hooks.remove(hook)

    async def close(self) -> None:
        """Say bye, close the connection and stop reconnecting; mirrors are disposed."""
        self.mach.remove1(ss.Start)
        link = self._link
        if link is not None and link.transport is not None and not link.closing:
            link.closing = True
            with contextlib.suppress(Exception):
                if self.session.connected:
                    link.transport.send(p.encode({"t": "bye", "reason": "client closed"}))
                link.transport.close(p.CLOSE_NORMAL, "bye")
                await asyncio.wait_for(asyncio.shield(link.closed), CLOSE_WAIT)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for machine_id in list(self.session.mirrors):
            self.session.drop_mirror(machine_id)
        self.session.fail_all(DisconnectedError("client closed"))
        self._settle(DisconnectedError("client closed"))

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ requests (for NetMachine)

    async def _mutate(
        self,
        net: NetMachine,
        op: str,
        states: list[str],
        args: dict[str, Any] | None,
        key: str | None,
        origin: Origin | None,
        err: BaseException | None = None,
    ) -> Result:
        message: dict[str, Any] = {"t": "mut", "m": net.id, "op": op, "states": states}
        if args:
            message["args"] = args
        message["key"] = key if key is not None else secrets.token_hex(8)
        src = self._src(net.id, op, states, origin)
        if src is not None:
            message["src"] = src
        if err is not None:
            name = err.type_name if isinstance(err, RemoteError) else type(err).__name__
            message["err"] = {
                "type": (name or "Error")[: p.MAX_ERR_TYPE],
                "msg": str(err)[: p.MAX_ERR_MSG],
            }
        reply = await self._request(message, net.id, resend=True)
        return _result(reply)

    def _src(
        self, machine_id: str, op: str, states: list[str], origin: Origin | None
    ) -> dict[str, Any] | None:
        """The mutation's ``src``: its source transition, this tab, the meta hooks' entries."""
        fields = origin
        meta: dict[str, str] = {}
        for hook in self._meta_hooks:
            meta.update(hook(machine_id, op, states) or {})
        if fields is None and self.tab_id is None and not meta:
            return None
        src = p.Src(
            *(fields or ("", "", 0)),
            client_id=self.client_id,
            tab_id=self.tab_id,
            meta=p.check_meta(meta) if meta else None,
        )
        return src.to_wire()

    async def _check(
        self, net: NetMachine, op: str, states: list[str], args: dict[str, Any] | None
    ) -> Result:
        return _result(await self._dry_run("check", net, op, states, args))

    async def _explain(
        self, net: NetMachine, op: str, states: list[str], args: dict[str, Any] | None
    ) -> Any:
        return _explanation((await self._dry_run("explain", net, op, states, args)).get("x"))

    async def _dry_run(
        self, kind: str, net: NetMachine, op: str, states: list[str], args: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A ``check`` or ``explain``: changes nothing, so it may be resent after a reconnect."""
        message: dict[str, Any] = {"t": kind, "m": net.id, "op": op, "states": states}
        if args:
            message["args"] = args
        reply: dict[str, Any] = await self._request(message, net.id, resend=True)
        return reply

    async def _sync(self, net: NetMachine) -> None:
        await self._request({"t": "sync", "m": net.id}, net.id, resend=False)

    async def _request(self, message: dict[str, Any], machine_id: str, resend: bool) -> Any:
        def send(on_done: Done) -> Call:
            now = asyncio.get_running_loop().time()
            return self.session.request(message, machine_id, resend, now, on_done)

        return await self._call(send)

    async def _call(self, send: Callable[[Done], Call]) -> dict[str, Any]:
        """Send through ``send(on_done)`` and wait for the answer."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def done(reply: dict[str, Any] | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert reply is not None
                future.set_result(reply)

        call = send(done)
        self._arm()
        try:
            return await future
        finally:
            self.session.forget(call)

    # ------------------------------------------------------------ the session's callbacks

    def _pump(self) -> None:
        """Send what the session queued; end the connection when it asks."""
        session = self.session
        link = self._link
        frames = session.data_to_send()
        transport = link.transport if link is not None else None
        if transport is None or link is None:
            return
        try:
            for frame in frames:
                transport.send(frame)
        except TransportClosed:
            pass  # the connection is going: what may be resent waits for the next one
        request = session.close_request
        if request is not None and not link.closing:
            link.closing = True
            if request.abort:
                transport.abort()
            else:
                transport.close(request.code, request.reason)

    def _welcomed(self) -> None:
        link = self._link
        if link is not None and not link.welcome.done():
            link.welcome.set_result(None)

    def _refused(self, err: BaseException) -> None:
        link = self._link
        if link is not None and not link.welcome.done():
            link.welcome.set_exception(err)

    def _deliver(self, name: str, data: Any, machine_id: str | None) -> None:
        for handler in list(self._payload_handlers):
            try:
                handler(name, data, machine_id)
            except Exception as err:
                self.mach.add_err(err)
        consumer = self.consumer
        if consumer is not None and consumer.has1("ServerPayload"):
            consumer.add1("ServerPayload", {"name": name, "data": data, "machine": machine_id})

    def _arm(self) -> None:
        """Schedule the session's next deadline (heartbeat, request timeouts)."""
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.timer(asyncio.get_running_loop().time())
        self._arm()

    def _settle(self, err: BaseException | None = None) -> None:
        """Answer ``connect()``: ready, or failed with ``err``."""
        waiters, self._connecting = self._connecting, []
        for waiter in waiters:
            if waiter.done():
                continue
            if err is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(err)

    # ------------------------------------------------------------ the connection loop

    async def _run(self) -> None:
        attempt = 0
        mach = self.mach
        loop = asyncio.get_running_loop()
        while mach.is1(ss.Start):
            mach.add1(ss.Connecting)
            link = self._link = _Link(self)
            try:
                try:
                    async with asyncio.timeout(self.connect_timeout):
                        link.transport = await self._connector(self.url, link)
                        self.session.open(loop.time())
                        await link.welcome
                except TimeoutError:
                    raise ConnectError(
                        "timeout", f"no answer from {self.url} in {self.connect_timeout:g} s"
                    ) from None
                mach.add1(ss.Connected)
                self._arm()
                await self._resume()
                mach.remove([ss.ErrNetwork, ss.Exception])
                mach.add1(ss.Ready)
                self._was_ready = True
                attempt = 0
                self._settle()
                code, reason = await link.closed
                log.info("client %s: connection closed (%d %s)", self.client_id, code, reason)
            except AuthError as err:
                mach.add_err_state(ss.ErrAuth, err)
                mach.remove1(ss.Start)
                self._settle(err)
            except ConnectError as err:
                log.info("client %s: %s", self.client_id, err)
                mach.add_err_state(ss.ErrNetwork, err)
                if self._connecting and not self._was_ready:
                    mach.remove1(ss.Start)
                    self._settle(err)
            except RpcError as err:
                mach.add_err_state(ss.ErrRpc, err)
            except Exception as err:  # network, protocol, or a custom transport's failure
                if mach.is1(ss.Start):
                    log.info("client %s: connection lost: %r", self.client_id, err)
                    mach.add_err_state(ss.ErrNetwork, err)
            finally:
                self._end(link)
            if not mach.is1(ss.Start):
                break
            if self.max_retries is not None and attempt >= self.max_retries:
                mach.remove1(ss.Start)
                self._settle(ConnectError("refused", f"gave up after {attempt + 1} attempts"))
                break
            delay = min(self.backoff_max, self.backoff * 2**attempt) * random.uniform(0.8, 1.2)
            attempt += 1
            self.reconnects += 1
            mach.add1(ss.Retrying)
            try:
                await asyncio.sleep(delay)
            finally:
                mach.remove1(ss.Retrying)

    def _end(self, link: _Link) -> None:
        """The attempt is over: drop its transport, let the session forget the connection."""
        mach = self.mach
        mach.remove([ss.Connected, ss.Connecting])
        if not link.closed.done():
            if link.transport is not None:
                link.transport.abort()
            link.connection_lost(1006, "abandoned")
        if link.welcome.done() and not link.welcome.cancelled():
            link.welcome.exception()  # retrieved: whoever awaited it has seen it
        if self._link is link:
            self._link = None

    async def _resume(self) -> None:
        """Subscribe every mirror again (a machine that is gone is dropped), resend what waits."""
        loop = asyncio.get_running_loop()
        answers: dict[str, asyncio.Future[dict[str, Any]]] = {}

        def answer(machine_id: str) -> Done:
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            answers[machine_id] = future

            def done(reply: dict[str, Any] | None, error: BaseException | None) -> None:
                if not future.done():
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(reply or {})

            return done

        self.session.resume(answer)
        self._arm()
        for machine_id, future in answers.items():
            try:
                await future
            except RpcError as err:
                if err.code not in (p.E_UNKNOWN_MACHINE, p.E_UNKNOWN_STATE):
                    raise
                log.warning("client %s: machine %s is gone (%s)", self.client_id, machine_id, err)
                self.session.drop_mirror(machine_id)


def _result(reply: dict[str, Any]) -> Result:
    r = reply.get("r")
    if not p.is_int(r):
        raise ProtocolError(p.E_BAD_MESSAGE, "a result without an integer r")
    return Result(r)


def _explanation(x: Any) -> Any:
    """The server's explanation as an ``am.Explanation``."""
    cls = getattr(_am, "Explanation", None)
    if cls is None or not isinstance(x, dict):
        raise RpcError(p.E_UNSUPPORTED, "this client cannot read explanations")
    return cls(
        result=Result(int(x["result"])),
        target=list(x["target"]),
        added=list(x["added"]),
        removed=list(x["removed"]),
        canceled_by=x.get("canceled_by"),
        rejected=[(str(s), str(why)) for s, why in x["rejected"]],
    )


async def _wait(waiter: Any) -> None:
    await waiter
