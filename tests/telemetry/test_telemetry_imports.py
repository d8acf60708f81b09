"""The exporters stay optional and non-blocking: importing ``asyncmachine`` (and the telemetry
package) loads none of their dependencies, and their modules start no thread and never block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import asyncmachine as am

EXPORTERS = ("otel.py", "prometheus.py", "loki.py", "_levels.py", "_logtap.py", "_wait.py")
HEAVY = ("opentelemetry", "prometheus_client", "aiohttp")


@pytest.mark.skipif(sys.platform == "emscripten", reason="needs a subprocess")
def test_import_loads_no_exporter_dependency() -> None:
    code = (
        "import sys, asyncmachine, asyncmachine.telemetry\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exporters_start_no_thread_and_never_block() -> None:
    folder = Path(am.__file__).parent / "telemetry"
    for name in EXPORTERS:
        text = (folder / name).read_text(encoding="utf-8")
        for needle in (
            "time.sleep(",
            "run_until_complete(",
            "asyncio.run(",
            "Thread(",
            "import threading",
        ):
            assert needle not in text, f"telemetry/{name} uses {needle}"
