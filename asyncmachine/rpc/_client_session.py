"""The client side of the protocol without I/O: requests, mirrors, the diff chain, heartbeats.

The adapter (``Client`` on asyncio, the same code under Pyodide) opens a transport, calls
``open(now)``, feeds ``receive(frame, now)`` and ``timer(now)``, sends what ``data_to_send()``
returns and ends the connection when ``close_request`` says so; ``connection_lost()`` when it is
gone. Requests survive reconnects when they may be resent (mutations, with their key); their
answers reach ``Call.on_done``. ``now`` comes from the adapter's clock.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any

from . import _protocol as p
from ._errors import AuthError, ConnectError, DisconnectedError, ProtocolError, RpcError
from ._netmachine import NetMachine
from ._protocol import CloseRequest

log = logging.getLogger("asyncmachine.rpc")

Done = Callable[[dict[str, Any] | None, BaseException | None], None]
"""``on_done(reply, error)``: exactly one of them is ``None``."""


def _ignore(reply: dict[str, Any] | None, error: BaseException | None) -> None:
    return None


class Call:
    """A request waiting for its answer."""

    __slots__ = (
        "deadline",
        "frame",
        "id",
        "lost",
        "machine_id",
        "on_done",
        "resend",
        "sent",
        "size",
    )

    def __init__(self, rid: int, frame: str, machine_id: str, resend: bool, deadline: float):
        self.id = rid
        self.frame = frame
        self.size = p.frame_size(frame)
        self.machine_id = machine_id
        self.resend = resend
        """Sent again after a reconnect (a mutation, made safe by its key)."""
        self.deadline = deadline
        self.sent = False
        """Sent on the current connection."""
        self.lost = False
        """A connection it was sent on went away."""
        self.on_done: Done = _ignore


class ClientSession:
    """One client's protocol state, across its connections."""

    def __init__(
        self,
        client_id: str,
        token: str | None = None,
        *,
        max_frame: int = p.CLIENT_MAX_FRAME,
        request_timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self.token = token
        self.max_frame = max_frame
        self.request_timeout = request_timeout
        self.mirrors: dict[str, NetMachine] = {}
        self.wanted: dict[str, list[str] | None] = {}
        """The states each mirror asked for (``None``: all it may see)."""
        self.calls: dict[int, Call] = {}
        self.connected = False
        """Welcomed on the current connection."""
        self.session_id = ""
        self.heartbeat = 15.0
        self.server_max_frame: int | None = None
        self.server_machines: list[str] = []
        self.close_request: CloseRequest | None = None
        self.wake: Callable[[], None] = _nothing
        """There are frames to send, or a close to do."""
        self.on_welcome: Callable[[], None] = _nothing
        self.on_refused: Callable[[BaseException], None] = _drop
        self.on_payload: Callable[[str, Any, str | None], None] = _no_payload
        self.on_gone: Callable[[NetMachine], None] = _no_mirror
        self._outbox: list[str] = []
        self._next_id = 0
        self._deadlines: list[tuple[float, int]] = []
        self._last_seen = 0.0
        self._open = False

    # ------------------------------------------------------------ the connection

    def open(self, now: float) -> None:
        """A new connection is open: say hello."""
        self._open = True
        self.connected = False
        self.close_request = None
        self._outbox.clear()
        self._last_seen = now
        hello: dict[str, Any] = {
            "t": "hello",
            "v": p.VERSION,
            "cid": self.client_id,
            "max_frame": self.max_frame,
        }
        if self.token is not None:
            hello["token"] = self.token
        self._queue(p.encode(hello))

    def connection_lost(self, code: int, reason: str = "") -> None:
        """The connection is gone. Requests that may be resent wait for the next one; the
        rest fail with ``DisconnectedError``. A frame the server refused as too large (1009) is
        never resent: the largest unanswered one fails with ``ValueError``."""
        self._open = False
        self.connected = False
        self.close_request = None
        self._outbox.clear()
        if code == p.CLOSE_TOO_BIG:
            sent = [call for call in self.calls.values() if call.sent]
            if sent:
                largest = max(sent, key=lambda call: call.size)
                self._finish(
                    largest,
                    error=ValueError(
                        f"the server refused a frame of {largest.size} bytes as too large"
                    ),
                )
        for call in list(self.calls.values()):
            if call.resend:
                call.lost = call.lost or call.sent
                call.sent = False
            else:
                self._finish(call, error=DisconnectedError(f"connection lost ({code} {reason})"))

    def resume(self, on_done: Callable[[str], Done]) -> list[Call]:
        """After ``welcome``: subscribe every mirror again (answers to ``on_done(machine_id)``),
        then resend every unanswered mutation, in order."""
        subs = [self.subscribe(m, on_done(m)) for m in list(self.mirrors)]
        limit = self.server_max_frame
        for call in sorted(self.calls.values(), key=lambda c: c.id):
            if not call.resend or call.sent:
                continue
            if limit is not None and call.size > limit:
                self._finish(
                    call,
                    error=ValueError(
                        f"a frame of {call.size} bytes is over the server's limit of {limit}"
                    ),
                )
                continue
            call.sent = True
            self._queue(call.frame)
        return subs

    # ------------------------------------------------------------ requests

    def request(
        self,
        message: dict[str, Any],
        machine_id: str,
        resend: bool,
        now: float,
        on_done: Done = _ignore,
    ) -> Call:
        """Register a request and send it if connected; its answer goes to ``on_done``. A frame
        over the server's limit raises ``ValueError`` here, and nothing is sent; data JSON
        cannot carry raises ``ValueError`` or ``TypeError``."""
        rid = message["id"] = self._next_id + 1
        frame = p.encode(message)
        limit = self.server_max_frame
        call = Call(rid, frame, machine_id, resend, now + self.request_timeout)
        if limit is not None and call.size > limit:
            raise ValueError(f"a frame of {call.size} bytes is over the server's limit of {limit}")
        self._next_id = rid
        call.on_done = on_done
        self.calls[rid] = call
        heapq.heappush(self._deadlines, (call.deadline, rid))
        if self.connected:
            call.sent = True
            self._queue(frame)
        elif not resend:
            self._finish(call, error=DisconnectedError("not connected"))
        return call

    def subscribe(self, machine_id: str, on_done: Done = _ignore) -> Call:
        message: dict[str, Any] = {"t": "sub", "m": machine_id}
        states = self.wanted.get(machine_id)
        if states is not None:
            message["states"] = states
        net = self.mirrors.get(machine_id)
        if net is not None and net.seq and net.state_names():
            message["seq"] = net.seq  # a server on the same chain may resume with a diff
        return self.request(message, machine_id, False, self._last_seen, on_done)

    def fail_all(self, error: BaseException) -> None:
        """Every pending request fails with ``error`` (the client closed)."""
        for call in list(self.calls.values()):
            self._finish(call, error=error)

    def forget(self, call: Call) -> None:
        """The caller stopped waiting (cancelled): no answer is delivered."""
        self.calls.pop(call.id, None)

    def add_mirror(self, net: NetMachine, states: list[str] | None) -> None:
        self.mirrors[net.id] = net
        self.wanted[net.id] = states

    def drop_mirror(self, machine_id: str) -> NetMachine | None:
        self.wanted.pop(machine_id, None)
        net = self.mirrors.pop(machine_id, None)
        if net is not None:
            net._dispose()
        return net

    def _finish(
        self,
        call: Call,
        reply: dict[str, Any] | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self.calls.pop(call.id, None) is not None:
            call.on_done(reply, error)

    # ------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self.calls:
            heapq.heappop(deadlines)
        soonest = deadlines[0][0] if deadlines else None
        if self.connected:
            dead = self._last_seen + 2 * self.heartbeat
            soonest = dead if soonest is None else min(soonest, dead)
        return soonest

    def timer(self, now: float) -> None:
        """Fail the requests past their deadline; drop a server silent for two heartbeats."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, rid = heapq.heappop(deadlines)
            call = self.calls.get(rid)
            if call is None:
                continue
            waited = f"{self.request_timeout:g} s"
            if call.lost or not self.connected:
                error: BaseException = DisconnectedError(
                    f"no answer in {waited}: the connection was lost"
                    + (" and is not back" if not self.connected else "")
                    + " (a mutation may or may not have run; resend it with the same key)"
                )
            else:
                error = RpcError(p.E_TIMEOUT, f"no answer in {waited}")
            self._finish(call, error=error)
        if self.connected and now - self._last_seen >= 2 * self.heartbeat:
            log.info("client %s: the server is silent: dropping the connection", self.client_id)
            self._close(p.CLOSE_TIMEOUT, "heartbeat timeout", abort=True)

    # ------------------------------------------------------------ output

    def data_to_send(self) -> list[str]:
        frames, self._outbox = self._outbox, []
        return frames

    def _queue(self, frame: str) -> None:
        if not self._open:
            return
        self._outbox.append(frame)
        if len(self._outbox) == 1:
            self.wake()

    def _close(self, code: int, reason: str, abort: bool = False) -> None:
        if self.close_request is None:
            self.close_request = CloseRequest(code, reason, abort)
            self.connected = False
            self.wake()

    # ------------------------------------------------------------ input

    def receive(self, frame: str | bytes, now: float) -> None:
        """One frame from the server. A malformed one ends the connection (1002)."""
        if not self._open or self.close_request is not None:
            return
        self._last_seen = now
        try:
            message = p.decode(frame)
            if self.connected:
                self._dispatch(message)
            else:
                self._handshake(message)
        except ProtocolError as err:
            log.warning("client %s: the server broke the protocol: %s", self.client_id, err.msg)
            self._close(p.CLOSE_PROTOCOL, err.msg[:100])

    def _handshake(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "err":
            code, msg = str(message.get("code")), str(message.get("msg"))
            if code == p.E_AUTH:
                self.on_refused(AuthError(code, msg))
            else:
                self.on_refused(ConnectError("protocol", f"{code}: {msg}"))
            return
        if (
            kind != "welcome"
            or message.get("v") != p.VERSION
            or not p.is_int(message.get("hb_ms"), 1)
            or not p.is_int(message.get("max_frame"), p.MIN_FRAME, 2**62)
            or not isinstance(message.get("sid"), str)
        ):
            self.on_refused(
                ConnectError("protocol", f"unexpected handshake reply {str(message)[:80]}")
            )
            return
        machines = message.get("machines")
        self.session_id = message["sid"]
        self.heartbeat = max(0.01, message["hb_ms"] / 1000)
        self.server_max_frame = message["max_frame"]
        self.server_machines = (
            [m for m in machines if isinstance(m, str)] if isinstance(machines, list) else []
        )
        self.connected = True
        self.on_welcome()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "diff":  # the most frequent frame, and no request waits for it
            machine_id = message.get("m")
            mirror = self.mirrors.get(machine_id) if type(machine_id) is str else None
            if mirror is not None:
                self._chain(mirror, message)
            return
        rid = message.get("id")
        call = self.calls.get(rid) if p.is_int(rid) else None
        machine_id = message.get("m")
        net = self.mirrors.get(machine_id) if isinstance(machine_id, str) else None
        if kind == "res":
            if net is not None:
                diff = message.get("diff")
                if isinstance(diff, dict):
                    self._chain(net, diff)
                elif p.is_int(message.get("qt")):
                    net._see_queue_tick(message["qt"])
        elif kind == "snap":
            if net is not None:
                net._apply_snap(message)
        elif kind == "ping":
            self._queue(p.encode({"t": "pong", "ts": message.get("ts")}))
        elif kind == "payload":
            name = message.get("name")
            self.on_payload(
                str(name), message.get("data"), machine_id if isinstance(machine_id, str) else None
            )
        elif kind == "err" and call is None:
            code, msg = message.get("code"), message.get("msg")
            if code == p.E_UNKNOWN_MACHINE and net is not None:
                log.warning("client %s: machine %s is gone", self.client_id, net.id)
                self.drop_mirror(net.id)
                self.on_gone(net)
            else:
                log.warning("client %s: server error %s: %s", self.client_id, code, msg)
        if call is not None:
            if kind == "err":
                code = str(message.get("code"))
                cls = AuthError if code == p.E_AUTH else RpcError
                self._finish(call, error=cls(code, str(message.get("msg"))))
            else:
                self._finish(call, reply=message)

    def _chain(self, net: NetMachine, body: dict[str, Any]) -> None:
        """Apply a diff that continues the chain; on a gap, one ``sync`` until a snapshot."""
        if net._apply_diff(body) or net._syncing:
            return
        net._syncing = True

        def synced(reply: dict[str, Any] | None, error: BaseException | None) -> None:
            net._syncing = False
            if error is not None:
                log.info("client %s: resync of %s failed: %r", self.client_id, net.id, error)

        self.request({"t": "sync", "m": net.id}, net.id, False, self._last_seen, synced)


def _nothing() -> None:
    return None


def _drop(err: BaseException) -> None:
    return None


def _no_payload(name: str, data: Any, machine_id: str | None) -> None:
    return None


def _no_mirror(net: NetMachine) -> None:
    return None
