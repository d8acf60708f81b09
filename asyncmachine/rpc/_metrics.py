"""The RPC server's optional ``/metrics`` route: Prometheus metrics of the machines it serves.

``Server(metrics=True)`` binds a ``MachMetrics`` tracer to the server's own machine and to every
machine it exposes (a machine exposed under two ids is counted once), in a registry of its own,
while the server runs, and answers ``GET /metrics`` on the WebSocket port with the text (or
OpenMetrics) exposition: one scrape target per server process, no second port. Needs
``prometheus-client`` (the ``telemetry`` extra), imported only when asked for.
"""

from __future__ import annotations

import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .._machine import Machine

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ..telemetry.prometheus import MachMetrics

METRICS_PATH = "/metrics"


class ServerMetrics:
    """One registry with the metrics of every served machine, and the route that shows it."""

    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry

            from ..telemetry import prometheus
        except ImportError as err:
            raise ImportError(
                "Server(metrics=True) needs prometheus-client: "
                "pip install 'asyncmachine[telemetry]'"
            ) from err
        self._prometheus = prometheus
        self.registry: CollectorRegistry = CollectorRegistry()
        self._bound: weakref.WeakKeyDictionary[Machine, tuple[MachMetrics, int]] = (
            weakref.WeakKeyDictionary()
        )
        """Per machine, its tracer and how many exposures share it."""

    def track(self, mach: Machine) -> None:
        if mach.is_disposed:
            return
        metrics, uses = self._bound.get(mach, (None, 0))
        if metrics is None or metrics.disposed:
            metrics, uses = self._prometheus.MachMetrics(mach, self.registry), 0
        self._bound[mach] = (metrics, uses + 1)

    def untrack(self, mach: Machine) -> None:
        """One exposure less; the last one unbinds (a disposed machine's series stay until the
        next scrape shows their final values)."""
        entry = self._bound.get(mach)
        if entry is None:
            return
        metrics, uses = entry
        if uses > 1:
            self._bound[mach] = (metrics, uses - 1)
            return
        del self._bound[mach]
        if not mach.is_disposed:
            metrics.close()

    def close(self) -> None:
        """Unbind every tracer (the server is done with its machines)."""
        for mach, (metrics, _) in list(self._bound.items()):
            if not mach.is_disposed:
                metrics.close()
        self._bound.clear()

    def respond(self, request: Request) -> Response | None:
        """The exposition for ``GET /metrics``; ``None`` for any other path."""
        if urlsplit(request.path).path != METRICS_PATH:
            return None
        body, content_type = self._prometheus.exposition(
            self.registry, request.headers.get("Accept", "")
        )
        status = HTTPStatus.OK
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ]
        )
        return Response(status.value, status.phrase, headers, body)
