"""Helpers for the debugger tests: run a machine into an outbox, replay what was streamed."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import asyncmachine as am
from asyncmachine.debugger._steps import explain
from asyncmachine.telemetry._debug import DebugTracer, Outbox

Msg = dict[str, Any]


PROCESS = """
import asyncio, asyncmachine as am
from asyncmachine import telemetry

async def main():
    mach = am.Machine({"Ready": am.State(require=["Start"]), "Start": am.State()}, id="worker")
    tracer = telemetry.mach_debug_env(mach)
    for _ in range(4):
        mach.add(["Start", "Ready"])
        mach.remove1("Start")
    assert await tracer.flush(10), "not sent"

asyncio.run(main())
"""
"""A Python program whose machine streams to ``$AM_DBG_ADDR``: 8 transitions, then it exits."""


def traced(
    schema: dict[str, am.State], limit: int = 1000, **kw: Any
) -> tuple[am.Machine, DebugTracer, Outbox]:
    """A machine streaming into an outbox of its own (no transport)."""
    outbox = Outbox(limit)
    mach = am.Machine(schema, **kw)
    return mach, DebugTracer(mach, outbox), outbox


def taken(outbox: Outbox, count: int = 1_000_000) -> list[Msg]:
    """Messages taken from ``outbox`` (as the transport would), parsed."""
    return [json.loads(line) for line in outbox.take(count)]


def txs(outbox: Outbox) -> list[Msg]:
    """The transition messages waiting in ``outbox`` (taken), with the steps am-dbg adds."""
    states: dict[str, Any] = {}
    clock: dict[str, int] = {}
    out = []
    for msg in taken(outbox):
        if msg["kind"] == "schema":
            states = msg["states"]
            clock.update(msg["clock"])
        elif msg["kind"] == "tx":
            explain(msg, states, clock)
            clock.update(msg["ticks"])
            out.append(msg)
    return out


def replay(lines: Iterable[str | Msg]) -> dict[str, list[tuple[str, dict[str, int]]]]:
    """Per machine, each transition's id with the full clock after it, rebuilt the way the
    inspector does: schema and dropped messages set the clock, transitions change ticks."""
    clocks: dict[str, dict[str, int]] = {}
    out: dict[str, list[tuple[str, dict[str, int]]]] = {}
    for line in lines:
        msg = json.loads(line) if isinstance(line, str) else line
        kind = msg["kind"]
        if kind in ("schema", "dropped"):
            clocks[msg["id"]] = {**clocks.get(msg["id"], {}), **msg["clock"]}
            out.setdefault(msg["id"], [])
        elif kind == "tx":
            clock = clocks[msg["id"]]
            clock.update(msg["ticks"])
            out[msg["id"]].append((msg["tx"], dict(clock)))
    return out


class Feed:
    """An inspector's connection to am-dbg: every message it got, parsed (the session as it
    was at connection time, fetched over HTTP as the page does, then the live lines)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.msgs: list[Msg] = []

    async def start(self, addr: str) -> Feed:
        info = json.loads(await self.ws.recv())
        assert info["kind"] == "server", info
        url = f"http://{addr}/{info['snapshot']}"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
        self.msgs = [info, *(json.loads(line) for line in text.split("\n") if line)]
        return self

    async def until(self, check: Callable[[list[Msg]], bool], timeout: float = 10.0) -> None:
        """Receive until ``check(msgs)`` holds."""
        async with asyncio.timeout(timeout):
            while not check(self.msgs):
                frame = await self.ws.recv()
                self.msgs += [json.loads(line) for line in frame.split("\n")]

    def txs(self, mach_id: str) -> list[Msg]:
        return [m for m in self.msgs if m["kind"] == "tx" and m["id"] == mach_id]

    def last(self, kind: str, mach_id: str) -> Msg:
        return [m for m in self.msgs if m["kind"] == kind and m.get("id") == mach_id][-1]
