"""The JS bridge's ``debug`` option, from the Python half (the page's half runs in Chromium)."""

from __future__ import annotations

import json

import pytest

from asyncmachine import telemetry
from asyncmachine._bridge import MachineBridge, new_bridge
from asyncmachine.telemetry._debug_stream import Stream

SCHEMA = json.dumps({"A": {}, "B": {"require": ["A"]}})


def _notify(kind: str, id: str, payload: str) -> None:
    return None


async def test_debug_option_streams_the_machine() -> None:
    bridge = new_bridge(
        SCHEMA, json.dumps({"id": "tab", "debug": "ws://127.0.0.1:9/dbg", "tabId": "t1"}), _notify
    )
    assert isinstance(bridge, MachineBridge)
    tracers = [t for t in bridge.machine.tracers() if isinstance(t, telemetry.DebugTracer)]
    assert len(tracers) == 1
    stream = tracers[0].stream
    assert isinstance(stream, Stream) and stream.proc["tab"] == "t1"
    await stream.close()  # nothing listens there: stop retrying
    tracers[0].close()
    bridge.machine.dispose()


@pytest.mark.parametrize(
    ("debug", "error"),
    [
        (42, "debug must be an am-dbg URL"),
        ("not an address", "am-dbg address must be HOST:PORT"),
    ],
)
def test_bad_debug_option_is_refused_before_the_machine_exists(debug: object, error: str) -> None:
    out = new_bridge(SCHEMA, json.dumps({"debug": debug}), _notify)
    assert isinstance(out, str) and error in json.loads(out)["error"]["message"]


def test_no_debug_option_no_tracer() -> None:
    bridge = new_bridge(SCHEMA, json.dumps({"debug": False}), _notify)
    assert isinstance(bridge, MachineBridge) and bridge.machine.tracers() == []
