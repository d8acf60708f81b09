"""Host and gateway processes of the NATS tests (``procs.py``); the nats-server processes are
``bench.natsproc``'s. Importing this module starts nothing and needs no ``nats-py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.natsproc import NatsServer, cluster, free_port, kill, stop

__all__ = ["NatsServer", "Proc", "cluster", "free_port"]

HERE = Path(__file__).resolve().parent


class Proc:
    """A helper process of ``procs.py`` (a host or a gateway); its first line says it is up."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self, timeout: float = 20.0) -> Proc:
        import json

        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "procs.py"), *self.args],
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env=self.env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"{self.args[0]} process did not start")
        self.info = json.loads(line)
        return self

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def kill(self) -> None:
        kill(self.proc)

    def stop(self) -> None:
        stop(self.proc)
