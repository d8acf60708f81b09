"""The am-dbg stream, I/O-free half: a tracer that turns transitions into messages in an outbox.

The hooks only append a small record to a bounded outbox, so a transition never waits for the
network: when the outbox is full the oldest record goes and is counted. Records become JSON-ready
messages when the transport takes them (``Outbox.take``), off the transition's path. The
transport (``_debug_stream``) decides when and where they go. No asyncio and no sockets here, so
the same tracer runs in CPython and in Pyodide, and is tested without a server.

Messages (all carry ``kind``; the format is documented in docs/debugger.md):
``hello`` (per connection), ``schema`` (on attach and whenever the schema or the state order
changes, with the full clock), ``tx`` (per transition: the ticks it changed, the handlers that
ran, and for a canceled one the target it had; am-dbg derives the resolution steps from these,
the schema and the clock, in its own process), ``dropped`` (records lost to a full outbox, with
the full clock after them), ``dispose``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._log import LogLevel
from .._schema import schema_to_dict
from .._tracer import Tracer
from .._transition import ERR_ARGS_KEY, ErrArgs, Transition
from ._levels import Severity, log_level
from ._logtap import LogTap, tap_log

if TYPE_CHECKING:
    from .._machine import Machine

PROTOCOL_VERSION = 1
DEFAULT_OUTBOX = 10_000
"""Records an outbox holds before it drops the oldest."""

Message = dict[str, Any]

# a transition record: (tracer, machine id, tx id, wall time, type, called, ticks, queue tick,
# queue length, accepted, auto, applied, target, handlers, source, args, error, log lines); a
# tuple because the hook builds one per transition
_Rec = tuple[Any, ...]
_MACH, _TICKS = 1, 6


_time = time.time


def now_ms() -> float:
    return round(_time() * 1000, 3)


def process_info(tab_id: str | None = None) -> dict[str, Any]:
    """Who is streaming: shown by the inspector to group machines by process or browser tab."""
    pyodide = sys.platform == "emscripten"
    info: dict[str, Any] = {
        "id": f"{random.getrandbits(48):012x}",
        "runtime": "pyodide" if pyodide else sys.implementation.name,
        "python": platform.python_version(),
        "pid": 0 if pyodide else os.getpid(),
        "host": "" if pyodide else platform.node(),
        "argv0": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
    }
    if tab_id:
        info["tab"] = tab_id
    return info


class _Gap:
    """Records of one machine dropped since the last ``dropped`` notice."""

    __slots__ = ("count", "ticks")

    def __init__(self) -> None:
        self.count = 0
        self.ticks: dict[str, int] = {}


class Outbox:
    """Records waiting for the transport, bounded; shared by the tracers of one stream.

    When full, the oldest transition record goes (schema and dispose messages never do). Its ticks
    are kept, so the ``dropped`` notice sent in its place carries the exact clock after the gap,
    and a new connection starts with each machine's schema and the clock as of the first record
    still waiting, whatever was lost before.
    """

    def __init__(self, limit: int = DEFAULT_OUTBOX) -> None:
        if limit < 1:
            raise ValueError(f"outbox limit must be at least 1, got {limit}")
        self.limit = limit
        self._items: deque[_Rec | Message] = deque()
        self._schemas: dict[str, Message] = {}
        """The last schema message taken for sending, per machine."""
        self._clocks: dict[str, dict[str, int]] = {}
        """Per machine, the clock after the last message taken."""
        self._gaps: dict[str, _Gap] = {}
        self.dropped_total = 0
        """Records dropped since the outbox was made (reported in every ``hello``)."""
        self.sent_total = 0
        self.on_ready: Callable[[], None] | None = None
        """Called when the outbox goes from empty to not empty, and on every push while
        ``wanted`` (the transport could not start yet): it wakes the transport up."""
        self.wanted = False

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: _Rec | Message) -> None:
        items = self._items
        if len(items) >= self.limit:
            oldest = items[0]
            if type(oldest) is tuple:  # the common case, inline: a full outbox drops each time
                items.popleft()
                gap = self._gaps.get(oldest[_MACH])
                if gap is None:
                    gap = self._gaps[oldest[_MACH]] = _Gap()
                gap.count += 1
                gap.ticks.update(oldest[_TICKS])
                self.dropped_total += 1
            else:
                self._drop_after_messages()
        items.append(item)
        if (len(items) == 1 or self.wanted) and self.on_ready is not None:
            self.on_ready()

    def _drop_after_messages(self) -> None:
        """Schema and dispose messages stay: drop the first transition after them."""
        items = self._items
        kept: list[Message] = []
        while items and not isinstance(items[0], tuple):
            kept.append(items.popleft())  # type: ignore[arg-type]
        if items:
            rec = items.popleft()
            assert isinstance(rec, tuple)
            gap = self._gaps.get(rec[_MACH])
            if gap is None:
                gap = self._gaps[rec[_MACH]] = _Gap()
            gap.count += 1
            gap.ticks.update(rec[_TICKS])
            self.dropped_total += 1
        items.extendleft(reversed(kept))

    def set_schema(self, msg: Message) -> None:
        """Queue a schema message (once sent, new connections start with it)."""
        self.push(msg)

    def greeting(self) -> list[Message]:
        """What a new connection starts with: the schemas sent so far, each with the clock as of
        the first record still waiting (machines not sent yet come in order)."""
        out = []
        for mach_id, schema in self._schemas.items():
            gap = self._gaps.get(mach_id)
            clock: dict[str, int] = {**schema["clock"], **self._clocks.get(mach_id, {})}
            out.append({**schema, "clock": {**clock, **gap.ticks} if gap else clock})
        return out

    def take(self, max_count: int) -> list[str]:
        """Up to ``max_count`` messages as JSON lines, oldest first; a ``dropped`` notice goes
        right before the first message of a machine that lost records."""
        out: list[str] = []
        items = self._items
        clocks = self._clocks
        gaps = self._gaps
        while items and len(out) < max_count:
            item = items.popleft()
            if isinstance(item, tuple):
                mach_id = item[_MACH]
                if gaps and mach_id in gaps:
                    out.append(self._notice(mach_id))
                clocks[mach_id].update(item[_TICKS])
                out.append(item[0].tx_line(item))
                continue
            mach_id = item["id"]
            kind = item["kind"]
            if kind == "schema":
                clocks[mach_id] = dict(item["clock"])
                self._schemas[mach_id] = item
            elif kind == "dispose":
                if mach_id in gaps:
                    out.append(self._notice(mach_id))
                self._schemas.pop(mach_id, None)
                clocks.pop(mach_id, None)
            out.append(encode(item))
        if gaps:
            # machines whose every waiting record was dropped: the notice goes now
            waiting = {item[_MACH] for item in items if isinstance(item, tuple)}
            for mach_id in list(gaps):
                if mach_id not in waiting and mach_id in self._schemas:
                    out.append(self._notice(mach_id))
        self.sent_total += len(out)
        return out

    def lost(self, batch: list[str]) -> None:
        """A batch that never reached am-dbg (the connection broke): its transitions count as
        dropped, its dispose messages go back to the front."""
        for line in reversed(batch):
            msg = json.loads(line)
            kind = msg["kind"]
            if kind in ("tx", "dropped"):
                gap = self._gaps.get(msg["id"])
                if gap is None:
                    gap = self._gaps[msg["id"]] = _Gap()
                count = 1 if kind == "tx" else msg["count"]
                gap.count += count
                if kind == "tx":
                    self.dropped_total += 1
            elif kind == "dispose":
                self._items.appendleft(msg)

    def _notice(self, mach_id: str) -> str:
        gap = self._gaps.pop(mach_id)
        clock = self._clocks[mach_id]
        clock.update(gap.ticks)
        msg = {"kind": "dropped", "id": mach_id, "count": gap.count, "clock": clock, "t": now_ms()}
        return encode(msg)


def schema_message(mach: Machine) -> Message:
    return {
        "kind": "schema",
        "id": mach.id,
        "parent": mach.parent_id,
        "tags": mach.tags,
        "names": mach.state_names(),
        "states": schema_to_dict(mach.schema),
        "clock": mach.clock(),
        "t": now_ms(),
    }


class Sender(Protocol):
    """The transport side of a stream, as a tracer sees it."""

    async def flush(self, timeout: float = 5.0) -> bool: ...

    async def close(self) -> None: ...


class DebugTracer(Tracer):
    """Streams one machine (and the submachines made with it as parent) to an am-dbg outbox.

    Bound by ``telemetry.debug(mach)``. ``log``: include the machine's log lines in each
    transition (when it logs at all: at least ``CHANGES`` then, like the other exporters);
    ``checks``: also stream ``can_add``/``can_remove`` dry runs.
    """

    def __init__(
        self, mach: Machine, outbox: Outbox, *, log: bool = True, checks: bool = False
    ) -> None:
        self.machine = mach
        self.outbox = outbox
        self.checks = checks
        self.stream: Sender | None = None
        """Set by ``telemetry.debug()``: what ``flush()`` waits for."""
        self._handlers: list[str] | None = None
        self._lines: list[tuple[int, str]] | None = None
        self._json_head = f'{{"kind":"tx","id":{encode(mach.id)},'
        self._json_names: dict[str, str] = {}
        self._json_lists: dict[tuple[str, ...], str] = {}
        self.children: list[DebugTracer] = []
        """Tracers of the submachines made with this machine as parent."""
        self._closed = False
        self._tap: LogTap | None = None
        outbox.set_schema(schema_message(mach))
        mach.bind_tracer(self)
        if log:
            self._tap_log()

    # ---- log lines

    def _tap_log(self) -> None:
        """Copy the machine's log lines into its transitions (they still reach its logger)."""
        if self.machine.log_level > LogLevel.NOTHING:
            self._tap = tap_log(self.machine, self._log_line)

    def _log_line(self, body: str, severity: Severity) -> None:
        lines = self._lines
        if lines is None:
            lines = self._lines = []
        lines.append((log_level(severity), body))

    # ---- hooks (each one cheap: they run inside the machine's transitions)

    def handler_end(self, tx: Transition, binding_id: str, handler_name: str) -> None:
        if self._handlers is None:
            self._handlers = [handler_name]
        else:
            self._handlers.append(handler_name)

    def transition_end(self, tx: Transition) -> None:
        handlers, self._handlers = self._handlers, None
        mut = tx.mutation
        if mut.is_check and not self.checks:
            return
        lines, self._lines = self._lines, None
        mach = self.machine
        accepted = tx.is_accepted
        # a canceled one may have moved the clock all the same: a final handler raised and
        # what it entered was rolled back (rare: compare the clocks only then)
        applied = accepted or tx.time_before != mach.time()
        ticks = {}
        if applied:
            # after a rollback (a final handler raised) too: the clock moved
            tick = mach.tick
            for s in tx.exits:
                ticks[s] = tick(s)
            for s in tx.enters:
                ticks[s] = tick(s)
        args = mut.args
        error = source = None
        if args:
            err = args.get(ERR_ARGS_KEY)
            if isinstance(err, ErrArgs):
                error = {"type": type(err.err).__name__, "message": str(err.err)}
                if mut.source is None and err.panic is not None:
                    # raised by a handler: the transition it interrupted caused this one
                    ptx = err.panic.transition
                    source = {"mach": mach.id, "tx": ptx.id, "handler": err.panic.handler}
            args = mach.log_args(args)
        self.outbox.push(
            (
                self,
                mach.id,
                tx.id,
                _time(),
                mut.type.value,
                tx.called_states,
                ticks,
                mut.queue_tick,
                mach.queue_len(),
                accepted,
                mut.is_auto,
                applied,
                tx.target_states,
                handlers,
                source or mut.source,
                args,
                error,
                lines,
            )
        )

    def verify_states(self, mach: Machine) -> None:
        self._schema_changed()

    def schema_change(self, mach: Machine, old_schema: dict[str, Any]) -> None:
        self._schema_changed()

    def _schema_changed(self) -> None:
        self.outbox.set_schema(schema_message(self.machine))

    def new_submachine(self, parent: Machine, child: Machine) -> None:
        if not any(isinstance(t, DebugTracer) for t in child.tracers()):
            self.children.append(DebugTracer(child, self.outbox, checks=self.checks))

    def machine_dispose(self, mach_id: str) -> None:
        self.outbox.push({"kind": "dispose", "id": mach_id, "t": now_ms()})
        self._closed = True

    # ---- building messages (called by the transport, outside transitions)

    def tx_line(self, rec: _Rec) -> str:
        """The ``tx`` message of a record, as a JSON line (written out directly: this is the
        stream's per-transition cost; ``tests/debugger`` checks it against ``json``)."""
        (
            _,
            _,
            tx_id,
            t,
            mtype,
            called,
            ticks,
            qt,
            queue_len,
            accepted,
            auto,
            applied,
            target,
            handlers,
            source,
            args,
            error,
            lines,
        ) = rec
        names = self._json_names
        ticks_json = ",".join([f"{_name(names, s)}:{tick}" for s, tick in ticks.items()])
        line = (
            f'{self._json_head}"tx":"{tx_id}","t":{t * 1000:.3f},"type":"{mtype}",'
            f'"called":{self._names_json(called)},"ticks":{{{ticks_json}}},"qt":{qt},'
            f'"accepted":{"true" if accepted else "false"}'
        )
        if queue_len:
            line += f',"queue":{queue_len}'
        if auto:
            line += ',"auto":true'  # both left out when 0 and false: the common case
        more: Message = {}
        if not accepted:
            # what it would have done; an accepted one's is the clock after it
            more["target"] = list(target)
            more["applied"] = applied
        if handlers:
            line += f',"handlers":{self._names_json(handlers)}'
        if source is not None:
            more["source"] = source if isinstance(source, dict) else _source_dict(source)
        if args:
            more["args"] = args
        if error is not None:
            more["error"] = error
        if lines:
            more["log"] = lines
        if more:
            return line + "," + encode(more)[1:]
        return line + "}"

    def _names_json(self, names: list[str]) -> str:
        """A list of state or handler names as JSON; the lists a machine repeats are cached."""
        key = tuple(names)
        out = self._json_lists.get(key)
        if out is None:
            out = "[" + ",".join([_name(self._json_names, n) for n in names]) + "]"
            if len(self._json_lists) < 1024:
                self._json_lists[key] = out
        return out

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything streamed so far was sent (False: not within ``timeout`` s)."""
        return True if self.stream is None else await self.stream.flush(timeout)

    # ---- detaching

    def close(self) -> None:
        """Stop streaming this machine (and its submachines), restoring its logger."""
        if self._closed:
            return
        self._closed = True
        for child in self.children:
            child.close()
        mach = self.machine
        if not mach.is_disposed:
            mach.detach_tracer(self)
            if self._tap is not None:
                self._tap.remove(self._log_line)


def _source_dict(src: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"mach": src.mach_id, "tx": src.tx_id, "time": src.mach_time}
    # filled for mutations that arrived over RPC (the client's machine, its tab, trace context)
    for field, key in (("client_id", "client"), ("tab_id", "tab"), ("meta", "meta")):
        value = getattr(src, field, None)
        if value:
            out[key] = dict(value) if isinstance(value, dict) else value
    return out


encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
"""Compact JSON (ASCII: non-ASCII characters are escaped, which the C encoder does fastest)."""


def _name(cache: dict[str, str], name: str) -> str:
    """A state name as a JSON string, encoded once."""
    out = cache.get(name)
    if out is None:
        out = cache[name] = encode(name)
    return out
