"""``bench/dbg.py``'s stream benchmark runs (tiny sizes, no timing asserted)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "emscripten", reason="needs sockets")


async def test_stream_overhead_runs(dbg: Any) -> None:
    from bench.dbg import QUICK, stream_overhead

    rows = await stream_overhead(QUICK, dbg.addr)
    assert [(r["workload"], r["mode"]) for r in rows] == [
        ("W1", "sync"),
        ("W1", "yielding"),
        ("W3", "sync"),
        ("W3", "yielding"),
    ]
    assert all(r["ratio"] > 0 for r in rows)
    assert dbg.session.machines  # the streamed reps reached am-dbg
