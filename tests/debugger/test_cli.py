"""The ``am-dbg`` command in a process of its own, with machines streaming from another process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbg_support import PROCESS, replay

from asyncmachine.debugger import read_session

pytestmark = pytest.mark.skipif(sys.platform == "emscripten", reason="starts processes")


class AmDbg:
    """``python -m asyncmachine.debugger`` on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asyncmachine.debugger", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.out: list[str] = []
        for line in self.proc.stdout:
            self.out.append(line)
            if "inspector at " in line:
                self.url = line.split("inspector at ")[1].strip()
                break
        else:
            raise AssertionError(f"am-dbg did not start: {''.join(self.out)}")
        self.addr = self.url.removeprefix("http://").rstrip("/")

    def info(self) -> dict[str, object]:
        with urllib.request.urlopen(self.url + "api/info") as r:
            return dict(json.loads(r.read()))

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, out
        return "".join(self.out) + out


@pytest.fixture
def am_dbg() -> Iterator[type[AmDbg]]:
    started: list[AmDbg] = []

    def start(*args: str) -> AmDbg:
        dbg = AmDbg(*args)
        started.append(dbg)
        return dbg

    yield start  # type: ignore[misc]
    for dbg in started:
        if dbg.proc.poll() is None:
            dbg.proc.kill()
            dbg.proc.wait()


def test_a_python_process_with_am_dbg_addr_streams_and_the_session_is_exported(
    am_dbg: type[AmDbg], tmp_path: Path
) -> None:
    export = tmp_path / "session.jsonl.gz"
    dbg = am_dbg("--export", str(export), "--max-transitions", "5")
    env = {**os.environ, "AM_DBG_ADDR": dbg.addr}
    subprocess.run([sys.executable, "-c", PROCESS], env=env, check=True, timeout=60)
    assert dbg.info()["machines"] == 1
    out = dbg.stop()
    assert f"wrote 1 machines to {export}" in out
    lines = read_session(export)
    history = replay(lines)["worker"]
    assert len(history) == 5  # the ring's cap
    assert history[-1][1] == {"Exception": 0, "Ready": 8, "Start": 8}
    status = next(json.loads(line) for line in lines if '"status"' in line)
    assert status["connected"] is False and status["proc"]["argv0"] == "-c"

    again = am_dbg("--import", str(export))
    assert again.info()["machines"] == 1
    assert "imported 1 machines" in again.stop()


def test_a_bad_import_stops_am_dbg_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"session","v":1}\n{"kind":"schema"}\n')
    run = subprocess.run(
        [sys.executable, "-m", "asyncmachine.debugger", "--import", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert f"cannot import: {bad}, line 2: schema message without 'id'" in run.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--listen", "nope"], "expected HOST:PORT"),
        (["--max-transitions", "0"], "expected a positive number"),
    ],
)
def test_bad_arguments(args: list[str], error: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "asyncmachine.debugger", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and error in run.stderr


def test_a_busy_port_is_reported(am_dbg: type[AmDbg]) -> None:
    dbg = am_dbg()
    run = subprocess.run(
        [sys.executable, "-m", "asyncmachine.debugger", "--listen", dbg.addr],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1 and f"cannot listen on {dbg.addr}" in run.stderr
