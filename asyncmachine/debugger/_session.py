"""What am-dbg holds: every machine it has heard of, with the last N transitions of each.

Lines are stored as they arrived (checked, not re-encoded), so a session file and the inspector's
feed are the very lines the machines sent. Each machine keeps the schema and the clock as of its
oldest stored line: when the ring drops a transition, its ticks are folded into that clock, so
what remains still replays to exact clocks. No I/O here: the server and the session files feed it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._messages import PROTOCOL_VERSION, Message, MessageError, dumps, parse
from ._steps import explain

DEFAULT_MAX_TRANSITIONS = 100_000

Listener = Callable[[list[str]], None]
"""Receives the lines to show, in order (the inspector's feed)."""


@dataclass
class MachineLog:
    """One machine as am-dbg knows it."""

    id: str
    head: Message
    """The schema message in effect at the oldest stored line, with the clock as of then."""
    ring: deque[str]
    states: dict[str, Any] = field(default_factory=dict)
    """The latest schema (JSON form), for deriving the steps of new transitions."""
    clock: dict[str, int] = field(default_factory=dict)
    """The clock after the newest line."""
    proc: dict[str, Any] | None = None
    connected: bool = False
    disposed: bool = False
    conn: int | None = None
    """The connection that last sent this machine's schema."""
    received: int = 0
    """Lines received for this machine, kept or not."""
    evicted: int = 0

    def status(self) -> Message:
        msg: Message = {
            "kind": "status",
            "id": self.id,
            "connected": self.connected,
            "disposed": self.disposed,
            "evicted": self.evicted,
        }
        if self.proc is not None:
            msg["proc"] = self.proc
        return msg


@dataclass
class Conn:
    """A machine connection (one process or browser tab)."""

    num: int
    peer: str = ""
    proc: dict[str, Any] | None = None
    machines: set[str] = field(default_factory=set)
    renames: dict[str, str] = field(default_factory=dict)
    """Machine ids this connection shares with a machine of another live process, and the
    names they are kept under here (``upload@3f2a1b``)."""
    rejected: int = 0
    dropped: int = 0


class Session:
    """The machines and their transitions, capped at ``max_transitions`` lines per machine."""

    def __init__(self, max_transitions: int = DEFAULT_MAX_TRANSITIONS) -> None:
        if max_transitions < 1:
            raise ValueError(f"max transitions must be at least 1, got {max_transitions}")
        self.max_transitions = max_transitions
        self.machines: dict[str, MachineLog] = {}
        self.listeners: list[Listener] = []
        self._conns = 0

    # ---- connections

    def connect(self, peer: str = "") -> Conn:
        self._conns += 1
        return Conn(self._conns, peer)

    def disconnect(self, conn: Conn) -> None:
        """The process went away: its machines stay, marked disconnected."""
        out = []
        for mach_id in sorted(conn.machines):
            mach = self.machines.get(mach_id)
            if mach is not None and mach.conn == conn.num and mach.connected:
                mach.connected = False
                out.append(dumps(mach.status()))
        self._emit(out)

    # ---- receiving

    def receive(self, conn: Conn, frame: str) -> list[str]:
        """Store the lines of one frame; returns the errors of the lines it rejected."""
        errors: list[str] = []
        out: list[str] = []
        for n, line in enumerate(frame.split("\n"), 1):
            if not line.strip():
                continue
            try:
                self._receive_line(conn, line, out)
            except MessageError as err:
                conn.rejected += 1
                errors.append(f"line {n}: {err}")
        self._emit(out)
        return errors

    def _receive_line(self, conn: Conn, line: str, out: list[str]) -> None:
        msg = parse(line)
        kind = msg["kind"]
        if kind == "hello":
            conn.proc = msg.get("proc") or {}
            conn.dropped = msg.get("dropped", 0)
            return
        if kind == "schema":
            self._claim(conn, msg)
        mach_id = str(msg["id"])
        mach_id = conn.renames.get(mach_id, mach_id)
        if mach_id != msg["id"] or msg.get("parent") in conn.renames:
            msg["id"] = mach_id
            if msg.get("parent") in conn.renames:
                msg["parent"] = conn.renames[msg["parent"]]
            line = dumps(msg)
        mach = self.machines.get(mach_id)
        if kind == "schema":
            if mach is None:
                mach = self.machines[mach_id] = MachineLog(
                    mach_id, msg, deque(maxlen=self.max_transitions)
                )
                out.append(line)
            else:
                self._append(mach, line, out)
                mach.disposed = False
            mach.states = msg["states"]
            mach.clock.update(msg["clock"])
            mach.received += 1
            conn.machines.add(mach_id)
            mach.conn = conn.num
            if conn.proc is not None:
                mach.proc = conn.proc
            if not mach.connected:
                mach.connected = True
            out.append(dumps(mach.status()))
            return
        if mach is None:
            raise MessageError(f"{kind} for machine {mach_id!r}, whose schema was not sent")
        mach.received += 1
        if kind == "tx":
            if "steps" not in msg:
                explain(msg, mach.states, mach.clock)
                # kept: the steps; the states before and after are the clocks the lines replay to
                del msg["before"]
                if msg["accepted"]:
                    del msg["target"]
                line = dumps(msg)
            mach.clock.update(msg["ticks"])
        elif kind == "dropped":
            mach.clock.update(msg["clock"])
        self._append(mach, line, out)
        if kind == "dispose":
            mach.disposed = True
            out.append(dumps(mach.status()))

    def _claim(self, conn: Conn, msg: Message) -> None:
        """Two live processes with a machine of the same id (a page open in two tabs) stay two
        machines: the later one is renamed ``id@tab``; a disconnected one is continued."""
        mach_id = msg["id"]
        if mach_id in conn.renames:
            return
        mach = self.machines.get(mach_id)
        if mach is None or not mach.connected or mach.conn == conn.num:
            return
        proc = conn.proc or {}
        tag = str(proc.get("tab") or (f"pid{proc['pid']}" if proc.get("pid") else conn.num))
        new = f"{mach_id}@{tag[:6]}"
        n = 2
        while new in self.machines and self.machines[new].conn != conn.num:
            new = f"{mach_id}@{tag[:6]}-{n}"
            n += 1
        conn.renames[mach_id] = new

    def _append(self, mach: MachineLog, line: str, out: list[str]) -> None:
        ring = mach.ring
        if len(ring) == ring.maxlen:
            self._evict(mach, ring.popleft())
        ring.append(line)
        out.append(line)

    def _evict(self, mach: MachineLog, line: str) -> None:
        """Fold the oldest line into the machine's head schema and clock."""
        mach.evicted += 1
        msg = json.loads(line)
        kind = msg["kind"]
        if kind == "tx":
            mach.head["clock"].update(msg["ticks"])
        elif kind == "schema":
            mach.head = msg
        elif kind == "dropped":
            mach.head["clock"] = dict(msg["clock"])

    # ---- the inspector's feed

    def _emit(self, lines: list[str]) -> None:
        if lines:
            for listener in list(self.listeners):
                listener(lines)

    def subscribe(self, listener: Listener) -> list[str]:
        """Start feeding ``listener``; returns everything so far (the same as an export)."""
        snapshot = list(self.lines())
        self.listeners.append(listener)
        return snapshot

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    # ---- export and import

    def header(self) -> Message:
        return {"kind": "session", "v": PROTOCOL_VERSION, "max": self.max_transitions}

    def lines(self) -> Iterator[str]:
        """The session as JSON lines: a header, then each machine's schema, its stored lines
        and its status (the format of session files)."""
        yield dumps(self.header())
        for mach in self.machines.values():
            yield dumps(mach.head)
            yield from mach.ring
            yield dumps(mach.status())

    def load(self, lines: Iterable[str], source: str = "session") -> int:
        """Add the machines of a session file; all or nothing. Returns how many were added.

        Raises ``MessageError`` naming the first bad line; the session is then unchanged.
        """
        staged = Session(self.max_transitions)
        conn = staged.connect(source)
        seen_header = False
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                msg = parse(line, ("session", "status", "schema", "tx", "dropped", "dispose"))
                kind = msg["kind"]
                if kind == "session":
                    seen_header = True
                elif kind == "status":
                    mach = staged.machines.get(msg["id"])
                    if mach is None:
                        raise MessageError(f"status of {msg['id']!r} before its schema")
                    mach.proc = msg.get("proc")
                    mach.disposed = bool(msg.get("disposed"))
                else:
                    staged._receive_line(conn, line, [])
            except MessageError as err:
                raise MessageError(f"{source}, line {n}: {err}") from None
        if not seen_header and not staged.machines:
            raise MessageError(f"{source}: no machines in it")
        added = 0
        out: list[str] = []
        for mach in staged.machines.values():
            mach.connected = False
            mach.conn = None
            mine = self.machines.get(mach.id)
            if mine is None:
                self.machines[mach.id] = mach
                mach.ring = deque(mach.ring, maxlen=self.max_transitions)
                added += 1
                out.append(dumps(mach.head))
                out.extend(mach.ring)
            else:
                # the same machine, seen before: its file part continues the timeline
                for line in (dumps(mach.head), *mach.ring):
                    self._append(mine, line, out)
            out.append(dumps(self.machines[mach.id].status()))
        self._emit(out)
        return added

    def clear(self) -> list[str]:
        """Forget the disconnected machines; returns their ids."""
        gone = [m.id for m in self.machines.values() if not m.connected]
        for mach_id in gone:
            del self.machines[mach_id]
        return gone
