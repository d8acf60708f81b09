"""Recording machines without am-dbg: the stream's messages kept in memory, taken as JSON lines.

The pytest plugin (``asyncmachine.testing``) records the machines of each test this way and
writes them to a session file when the test fails; a page records its own machines the same way
(the JS bridge's ``debug: "record"``), and the plugin collects them.

Recorders watch the core's creation hooks (``on_machine_created``), which see every machine
built while they are added, and every machine passed to ``machine_created``: ``telemetry.debug``
and ``mach_debug_env`` call it for the machines they see (machines made before the hook,
instrumented for am-dbg, are recorded even when ``AM_DBG_ADDR`` is not set). No I/O here.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._schema import schema_to_dict
from .._tracer import CREATION_HOOKS
from ._debug import PROTOCOL_VERSION, DebugTracer, Outbox, encode, now_ms, process_info

if TYPE_CHECKING:
    from .._machine import Machine

RECORD_LIMIT = 100_000
"""Transitions a recorder keeps before it drops the oldest (and counts them)."""


def machine_created(mach: Machine) -> None:
    """Tell the core's creation hooks about a machine built before they were added (an
    instrumented one): hooks must accept the same machine twice."""
    for fn in list(CREATION_HOOKS):
        fn(mach)


class Recorder:
    """Machines recorded into memory; ``lines()`` gives what happened since ``mark()``."""

    def __init__(self, limit: int = RECORD_LIMIT, tab_id: str | None = None) -> None:
        self.outbox = Outbox(limit)
        self.proc = process_info(tab_id)
        self._machines: weakref.WeakSet[Machine] = weakref.WeakSet()
        """Recorded machines, while they live (a machine holds its tracer, not the reverse)."""

    def record(self, mach: Machine) -> None:
        """Start recording ``mach`` (and the submachines made with it); once per machine."""
        if not mach.is_disposed and not self.recorded(mach):
            self._machines.add(mach)
            DebugTracer(mach, self.outbox, log=True)

    def recorded(self, mach: Machine) -> bool:
        return mach in self._machines or any(
            isinstance(t, DebugTracer) and t.outbox is self.outbox for t in mach.tracers()
        )

    def mark(self) -> None:
        """Forget what was recorded so far (the clocks it reached are kept as the start)."""
        self.outbox.take(len(self.outbox) + 1)

    def lines(self, greeting: bool = True) -> list[str]:
        """A ``hello``, every machine's schema with its clock as of the mark (``greeting``),
        then what happened since; the mark moves here."""
        hello = {"kind": "hello", "v": PROTOCOL_VERSION, "proc": self.proc}
        alive = {m.id for m in self._machines} | {
            t.machine.id for m in self._machines for t in _children(m, self.outbox)
        }
        known = [m for m in self.outbox.greeting() if m["id"] in alive] if greeting else []
        return [*map(encode, [hello, *known]), *self.outbox.take(len(self.outbox) + 1)]

    def close(self) -> None:
        for mach in list(self._machines):
            for tracer in mach.tracers():
                if isinstance(tracer, DebugTracer) and tracer.outbox is self.outbox:
                    tracer.close()
        self._machines.clear()


def _children(mach: Machine, outbox: Outbox) -> list[DebugTracer]:
    """The recorded submachines of ``mach`` (their tracers), all the way down."""
    out: list[DebugTracer] = []
    for tracer in mach.tracers():
        if isinstance(tracer, DebugTracer) and tracer.outbox is outbox:
            for child in tracer.children:
                out.append(child)
                out.extend(_children(child.machine, outbox))
    return out


def snapshot_lines(machines: Iterable[Machine]) -> list[str]:
    """Machines that were not recorded, as they are now: schema and clock, no transitions."""
    out: list[str] = []
    for mach in machines:
        if mach.is_disposed:
            continue
        msg: dict[str, Any] = {
            "kind": "schema",
            "id": mach.id,
            "parent": mach.parent_id,
            "tags": [*mach.tags, "snapshot"],
            "names": mach.state_names(),
            "states": schema_to_dict(mach.schema),
            "clock": mach.clock(),
            "t": now_ms(),
        }
        out.append(encode(msg))
    return out


_page: Recorder | None = None


def page_recorder(tab_id: str | None = None) -> Recorder:
    """The recorder of this process (in a page: of this tab), made on first use."""
    global _page
    if _page is None:
        _page = Recorder(tab_id=tab_id)
    return _page
