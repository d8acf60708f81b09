"""OpenTelemetry traces (and logs) of machines, on the official SDK.

Span model (names and attributes under ``asyncmachine.``; docs/telemetry.md has the details):

- ``mach:<id>``: one span per machine, from the moment the tracer meets it until it is disposed
  (or :meth:`OtelTracer.close`); the parent of everything below. A submachine's span is a child
  of its parent machine's span; a machine's span is a child of the span current when the tracer
  first met it (so machines created inside a request span join its trace).
- ``<State>``: one span per activation, from activation to deactivation, with the ids of the
  transitions that activated and deactivated it and the state's tick; a Multi state activated
  again while active adds a ``reactivated`` event instead.
- ``<type> <called states>`` (``add Foo Bar``; ``!add Exception`` for errors, with the error
  status and an exception event), when ``transitions=True``: one span per transition, with the
  mutation, machine time before and after, the states diff, accepted, auto, queue tick, the args
  when ``args=True``, one event per handler call, and a link to the span that was current when
  the mutation was made (the causing transition's span: a handler's mutation of another machine,
  an auto state, or the caller's own span). While a transition runs its span is the current
  span, so spans and log records made in handlers nest under it, and :func:`trace_meta` hands
  it to RPC.
- A mutation that arrived over RPC with a W3C ``traceparent`` in its source's ``meta`` makes its
  transition span a child of that remote span: a client's transition and the server machine's
  transition share one trace.

Upstream's grouping spans (``N:states``, ``N:transitions``, per-state groups) are left out: the
names and attributes above group the same way without empty spans. Transitions whose called
states are all skipped (by default ``Healthcheck`` and ``Heartbeat``), check-only transitions
(``can_add``) and auto transitions that the relations rejected (nothing to do) make no span.
Spans cost what the SDK makes them cost (tens of microseconds each); a sampler that leaves a
machine's span out (``ParentBased(TraceIdRatioBased(...))``) makes the tracer skip that
machine's span work.

``bind_otel_logs`` sends the machine's log lines as OTel log records, with the Loki exporter's
level map; ``mach_bind_otel_env`` switches both on from the environment.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass, field
from time import time_ns
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger as OtelLogger
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._schema import EXCEPTION
from .._tracer import Tracer
from .._transition import ERR_ARGS_KEY, ErrArgs
from ._levels import Severity
from ._logtap import LogTap, tap_log

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk.trace import TracerProvider

    from .._machine import Machine
    from .._transition import Mutation, Transition

__all__ = [
    "HEALTH_STATES",
    "CountingSpanExporter",
    "OtelLogs",
    "OtelTracer",
    "bind_otel_logs",
    "mach_bind_otel_env",
    "shutdown_env",
    "trace_meta",
]

HEALTH_STATES = ("Healthcheck", "Heartbeat")
"""Skipped unless listed in ``allow_states``: they would flood a trace."""

_PREFIX = "asyncmachine."
_W3C = TraceContextTextMapPropagator()
_log = logging.getLogger("asyncmachine.telemetry")


@dataclass(eq=False)
class _Mach:
    """What the tracer keeps per machine."""

    id: str
    span: Span
    ctx: otel_context.Context
    """The machine span as a context: the parent of its state and transition spans."""
    traced: frozenset[str]
    recording: bool
    """The machine span is sampled: without it, only a remote parent makes spans."""
    states: dict[str, Span] = field(default_factory=dict)
    """Open activation spans."""
    tx: Transition | None = None
    tx_span: Span | None = None
    tx_token: Token[otel_context.Context] | None = None
    applied: bool = False
    causes: dict[int, SpanContext] = field(default_factory=dict)
    """Queued mutation (by ``id()``) -> the span current when it was made."""


class OtelTracer(Tracer):
    """A tracer that turns machines into OpenTelemetry spans (see the module docs).

    ``tracer`` is an OpenTelemetry ``Tracer``; ``None`` uses ``trace.get_tracer("asyncmachine")``
    of the global provider. ``transitions`` adds a span per transition, ``args`` the mutation's
    logged args (``mach.log_args``) as attributes, ``skip_auto`` leaves auto transitions out.
    States are traced when they are in ``allow_states`` or match ``allow_re`` (when either is
    given) and are neither in ``skip_states`` nor match ``skip_re``; the patterns are searched in
    ``"<machine id>:<state>"``.

    Bind it with :meth:`bind` (or ``mach.bind_tracer``, or ``tracers=[...]``); one tracer can
    follow many machines, and follows submachines by itself.
    """

    def __init__(
        self,
        tracer: trace.Tracer | None = None,
        *,
        transitions: bool = True,
        args: bool = False,
        skip_auto: bool = False,
        allow_states: Iterable[str] | None = None,
        allow_re: str | re.Pattern[str] | None = None,
        skip_states: Iterable[str] = HEALTH_STATES,
        skip_re: str | re.Pattern[str] | None = None,
    ) -> None:
        self.tracer = tracer if tracer is not None else trace.get_tracer("asyncmachine")
        self.transitions = transitions
        self.args = args
        self.skip_auto = skip_auto
        self.allow_states = None if allow_states is None else frozenset(allow_states)
        self.allow_re = None if allow_re is None else re.compile(allow_re)
        self.skip_states = frozenset(skip_states)
        self.skip_re = None if skip_re is None else re.compile(skip_re)
        self.exporter: CountingSpanExporter | None = None
        """The exporter ``mach_bind_otel_env`` set up, if it made this tracer."""
        self._machs: dict[str, _Mach] = {}

    # ------------------------------------------------------------------ machines

    def bind(self, mach: Machine) -> OtelTracer:
        """Start following ``mach`` now (its active states get spans at once); returns self."""
        self._meet(mach)
        if self not in mach.tracers():
            mach.bind_tracer(self)
        return self

    def _meet(self, mach: Machine, parent: otel_context.Context | None = None) -> _Mach:
        ms = self._machs.get(mach.id)
        if ms is not None:
            return ms
        attrs: dict[str, Any] = {_PREFIX + "id": mach.id}
        if mach.parent_id:
            attrs[_PREFIX + "parent_id"] = mach.parent_id
        if mach.tags:
            attrs[_PREFIX + "tags"] = mach.tags
        span = self.tracer.start_span(f"mach:{mach.id}", parent, attributes=attrs)
        ctx = trace.set_span_in_context(span, otel_context.Context())
        traced = self._traced(mach)
        ms = self._machs[mach.id] = _Mach(mach.id, span, ctx, traced, span.is_recording())
        for state in mach.active_states():
            if state in ms.traced:
                self._activate(ms, state, mach.tick(state))
        return ms

    def _traced(self, mach: Machine) -> frozenset[str]:
        return frozenset(s for s in mach.state_names() if self._traces(mach.id, s))

    def _traces(self, mach_id: str, state: str) -> bool:
        key = f"{mach_id}:{state}"
        if self.allow_states is not None or self.allow_re is not None:
            allowed = (self.allow_states is not None and state in self.allow_states) or (
                self.allow_re is not None and self.allow_re.search(key) is not None
            )
            if not allowed:
                return False
        return state not in self.skip_states and not (
            self.skip_re is not None and self.skip_re.search(key)
        )

    def close(self) -> None:
        """End every open span of every machine (for a clean shutdown) and forget them."""
        for ms in list(self._machs.values()):
            self._end_machine(ms, disposed=False)
        self._machs.clear()

    def _end_machine(self, ms: _Mach, disposed: bool) -> None:
        if ms.tx_span is not None:
            self._end_tx(ms)
        for span in ms.states.values():
            span.set_attribute(_PREFIX + "disposed", disposed)
            span.end()
        ms.states.clear()
        ms.causes.clear()
        ms.span.set_attribute(_PREFIX + "disposed", disposed)
        ms.span.end()

    # ------------------------------------------------------------------ hooks

    def machine_init(self, mach: Machine) -> None:
        self._meet(mach)

    def new_submachine(self, parent: Machine, child: Machine) -> None:
        self._meet(child, self._meet(parent).ctx)
        if self not in child.tracers():
            child.bind_tracer(self)

    def schema_change(self, mach: Machine, old_schema: dict[str, Any]) -> None:
        self._meet(mach).traced = self._traced(mach)

    def verify_states(self, mach: Machine) -> None:
        self._meet(mach)

    def machine_dispose(self, mach_id: str) -> None:
        ms = self._machs.pop(mach_id, None)
        if ms is not None:
            self._end_machine(ms, disposed=True)

    def mutation_queued(self, mach: Machine, mutation: Mutation) -> None:
        if not self.transitions or mutation.is_check:
            return
        cause = trace.get_current_span().get_span_context()
        if cause.is_valid:
            ms = self._meet(mach)
            if ms.recording:
                ms.causes[id(mutation)] = cause

    def transition_start(self, tx: Transition) -> None:
        mach = tx.machine
        ms = self._machs.get(mach.id) or self._meet(mach)
        ms.tx, ms.applied = tx, False
        mut = tx.mutation
        cause = ms.causes.pop(id(mut), None) if ms.causes else None
        if (
            not self.transitions
            or mut.is_check
            or (mut.is_auto and (self.skip_auto or not tx.is_accepted))
            or ms.traced.isdisjoint(tx.called_states)
        ):
            return  # an auto transition the relations rejected did nothing: no span
        source = mut.source
        remote = None if source is None else _remote_parent(getattr(source, "meta", None))
        if not ms.recording and remote is None:
            return  # an unsampled machine: its spans would not be recorded anyway
        called = tx.called_states
        is_err = EXCEPTION in called
        name = f"{'!' if is_err else ''}{mut.type} {' '.join(called)}"
        attrs: dict[str, Any] = {
            _PREFIX + "id": ms.id,
            _PREFIX + "tx.id": tx.id,
            _PREFIX + "mutation": str(mut.type),
            _PREFIX + "auto": mut.is_auto,
            _PREFIX + "queue_tick": mut.queue_tick,
            _PREFIX + "time_before": sum(mach.time()),
        }
        if source is not None:
            attrs[_PREFIX + "source.id"] = source.mach_id
            attrs[_PREFIX + "source.tx.id"] = source.tx_id
        if self.args and mut.args:
            for key, value in mach.log_args(mut.args).items():
                attrs[f"{_PREFIX}args.{key}"] = value
        links = (Link(cause),) if cause is not None else ()
        parent = ms.ctx if remote is None else remote
        span = self.tracer.start_span(name, parent, attributes=attrs, links=links)
        if is_err:
            err_args = mut.args.get(ERR_ARGS_KEY)
            if isinstance(err_args, ErrArgs):
                span.set_status(Status(StatusCode.ERROR, str(err_args.err)))
                span.record_exception(err_args.err)
        ms.tx_span = span
        ms.tx_token = otel_context.attach(trace.set_span_in_context(span))

    def handler_end(self, tx: Transition, binding_id: str, handler_name: str) -> None:
        ms = self._machs.get(tx.machine.id)
        if ms is not None and ms.tx_span is not None:
            ms.tx_span.add_event(handler_name)

    def transition_finals(self, tx: Transition) -> None:
        ms = self._machs.get(tx.machine.id)
        if ms is None or tx.mutation.is_check:
            return
        ms.applied = True
        if not ms.recording:
            return
        states = ms.states
        for s in tx.exits:
            span = states.pop(s, None)
            if span is not None:
                span.set_attribute(_PREFIX + "tx.end", tx.id)
                span.end()
        if tx.enters:
            mach = tx.machine
            traced = ms.traced
            for s in tx.enters:
                if s in traced:
                    self._activate(ms, s, mach.tick(s), tx.id)

    def _activate(self, ms: _Mach, state: str, tick: int, tx_id: str = "") -> None:
        open_span = ms.states.get(state)
        if open_span is not None:  # a Multi state, activated again
            open_span.add_event("reactivated", {_PREFIX + "tx.id": tx_id, _PREFIX + "tick": tick})
            return
        attrs: dict[str, Any] = {
            _PREFIX + "id": ms.id,
            _PREFIX + "state": state,
            _PREFIX + "tick": tick,
        }
        if tx_id:
            attrs[_PREFIX + "tx.id"] = tx_id
        ms.states[state] = self.tracer.start_span(state, ms.ctx, attributes=attrs)

    def transition_end(self, tx: Transition) -> None:
        ms = self._machs.get(tx.machine.id)
        if ms is None or ms.tx is not tx:
            return
        ms.tx = None
        if ms.applied and not tx.is_accepted:  # a final handler raised: entered states rolled back
            mach = tx.machine
            for s in tx.enters:
                span = ms.states.get(s)
                if span is not None and not mach.is1(s):
                    del ms.states[s]
                    span.set_attribute(_PREFIX + "rolled_back", True)
                    span.end()
        if ms.tx_span is not None:
            self._end_tx(ms, tx)

    def _end_tx(self, ms: _Mach, tx: Transition | None = None) -> None:
        span = ms.tx_span
        assert span is not None
        ms.tx_span = None
        if ms.tx_token is not None:
            otel_context.detach(ms.tx_token)
            ms.tx_token = None
        if tx is not None:
            diff = [f"+{s}" for s in tx.enters] + [f"-{s}" for s in tx.exits]
            span.set_attributes(
                {
                    _PREFIX + "accepted": tx.is_accepted,
                    _PREFIX + "states_diff": " ".join(diff) if ms.applied else "",
                    _PREFIX + "time_after": sum(tx.machine.time()),
                }
            )
        span.end()


def _remote_parent(meta: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context of a remote span carried as W3C trace context in an RPC mutation's meta."""
    if not meta or "traceparent" not in meta:
        return None
    ctx = _W3C.extract(meta)
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def trace_meta() -> dict[str, str]:
    """The current span as W3C trace context (``traceparent``, ``tracestate``), for the ``meta``
    of an RPC mutation: from a handler of a traced machine it is that transition's span.
    Empty when no span is current."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


# ---------------------------------------------------------------------- exporting


class CountingSpanExporter(SpanExporter):
    """Wraps an exporter: counts exported and dropped spans (those of failed exports) and logs
    the first failure of an outage once, and the recovery."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.exported = 0
        self.dropped = 0
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter, counting the outcome."""
        result = self.exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            if self._failing:
                _log.warning("asyncmachine: span exports work again")
            self._failing = False
        else:
            self.dropped += len(spans)
            if not self._failing:
                _log.warning(
                    "asyncmachine: dropping spans, an export failed; counted in .dropped, "
                    "logged once per outage"
                )
            self._failing = True
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.exporter.force_flush(timeout_millis)


# ---------------------------------------------------------------------- logs


class OtelLogs:
    """Machine log lines as OpenTelemetry log records; :meth:`close` stops it."""

    def __init__(self, mach: Machine, logger: OtelLogger) -> None:
        self.machine_id = mach.id
        self.logger = logger
        self._attrs = {_PREFIX + "id": mach.id}
        self._tap: LogTap | None = tap_log(mach, self._sink)
        mach.on_dispose(lambda _id: self.close())

    def _sink(self, body: str, sev: Severity) -> None:
        self.logger.emit(
            timestamp=time_ns(),
            severity_number=SeverityNumber(sev.otel_number),
            severity_text=sev.otel_text,
            body=body,
            attributes=self._attrs,
        )

    def close(self) -> None:
        """Stop sending this machine's lines (its logger and level are put back)."""
        if self._tap is not None:
            self._tap.remove(self._sink)
            self._tap = None


def bind_otel_logs(mach: Machine, logger_provider: LoggerProvider | None = None) -> OtelLogs:
    """Send ``mach``'s log lines to OpenTelemetry (``None``: the global logger provider).

    Severity: ``[error`` lines ERROR; ``EXTERNAL``, ``CHANGES``, ``OPS`` INFO (INFO4, INFO3,
    INFO); ``DECISIONS``, ``EVERYTHING`` DEBUG (DEBUG4, DEBUG). A record made during a traced
    transition carries its span's trace and span ids. The log level is raised to ``CHANGES``
    if lower, as for Loki.
    """
    provider = logger_provider if logger_provider is not None else get_logger_provider()
    return OtelLogs(mach, provider.get_logger("asyncmachine"))


# ---------------------------------------------------------------------- environment

_env_tracers: dict[tuple[str, str], OtelTracer] = {}
_env_providers: list[TracerProvider] = []
_env_log_providers: dict[tuple[str, str], SdkLoggerProvider] = {}


def _on(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no", "off")


def _endpoint(var: str) -> str:
    url = os.environ.get(var, "")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{var} must be an http(s) URL (.../v1/...), got {url!r}")
    return url


def mach_bind_otel_env(mach: Machine) -> OtelTracer | None:
    """Trace ``mach`` when ``AM_OTEL_TRACE`` is set (and not ``0``/``false``); else ``None``.

    The spans go over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (else the SDK's
    default, ``http://localhost:4318/v1/traces``) as the service ``AM_SERVICE``
    (``asyncmachine``), batched by the SDK (``OTEL_BSP_*`` apply). When the application already
    set a global SDK tracer provider, that one is used instead. Options:
    ``AM_OTEL_TRACE_TXS=0`` (no transition spans), ``AM_OTEL_TRACE_ARGS``,
    ``AM_OTEL_TRACE_NOAUTO``, ``AM_OTEL_TRACE_ALLOW_STATES`` / ``_SKIP_STATES`` (comma
    separated), ``AM_OTEL_TRACE_ALLOW_STATES_RE`` / ``_SKIP_STATES_RE``. ``AM_OTEL_LOGS`` also
    sends the log lines (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``). Machines with the same settings
    share one tracer; its open spans end at exit.
    """
    if not _on("AM_OTEL_TRACE"):
        return None
    endpoint = _endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    logs_endpoint = _endpoint("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") if _on("AM_OTEL_LOGS") else ""
    allow_re = os.environ.get("AM_OTEL_TRACE_ALLOW_STATES_RE") or None
    skip_re = os.environ.get("AM_OTEL_TRACE_SKIP_STATES_RE") or None
    for var, pattern in (("_ALLOW_STATES_RE", allow_re), ("_SKIP_STATES_RE", skip_re)):
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"AM_OTEL_TRACE{var} is not a regex: {err}") from None
    service = os.environ.get("AM_SERVICE", "") or "asyncmachine"
    options = "|".join(
        os.environ.get(f"AM_OTEL_TRACE{s}", "")
        for s in ("_TXS", "_ARGS", "_NOAUTO", "_ALLOW_STATES", "_SKIP_STATES")
    )
    key = (service, f"{endpoint}|{options}|{allow_re}|{skip_re}")
    tracer = _env_tracers.get(key)
    if tracer is None:
        allow = _names(os.environ.get("AM_OTEL_TRACE_ALLOW_STATES", ""))
        skip = _names(os.environ.get("AM_OTEL_TRACE_SKIP_STATES", ""))
        otel_tracer, exporter = _env_otel_tracer(service, endpoint)
        tracer = OtelTracer(
            otel_tracer,
            transitions=os.environ.get("AM_OTEL_TRACE_TXS", "1").lower() not in ("0", "false"),
            args=_on("AM_OTEL_TRACE_ARGS"),
            skip_auto=_on("AM_OTEL_TRACE_NOAUTO"),
            allow_states=allow or None,
            allow_re=allow_re,
            skip_states=(*HEALTH_STATES, *skip),
            skip_re=skip_re,
        )
        tracer.exporter = exporter
        if not _env_tracers and not _env_providers:
            atexit.register(shutdown_env)  # runs before the providers' own exit hooks
        _env_tracers[key] = tracer
    tracer.bind(mach)
    if _on("AM_OTEL_LOGS"):
        bind_otel_logs(mach, _env_logger_provider(service, logs_endpoint))
    return tracer


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def _env_otel_tracer(
    service: str, endpoint: str
) -> tuple[trace.Tracer, CountingSpanExporter | None]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the application configured OpenTelemetry
        return current.get_tracer("asyncmachine"), None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), shutdown_on_exit=False
    )
    exporter = CountingSpanExporter(OTLPSpanExporter(endpoint=endpoint or None))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _env_providers.append(provider)
    return provider.get_tracer("asyncmachine"), exporter


def _env_logger_provider(service: str, endpoint: str) -> LoggerProvider:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    current = get_logger_provider()
    if isinstance(current, SdkLoggerProvider):
        return current
    provider = _env_log_providers.get((service, endpoint))
    if provider is None:
        provider = SdkLoggerProvider(
            resource=Resource.create({"service.name": service}), shutdown_on_exit=False
        )
        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint or None))
        )
        _env_log_providers[(service, endpoint)] = provider
    return provider


def shutdown_env() -> None:
    """End the open spans of the tracers ``mach_bind_otel_env`` made, export what is pending and
    shut their providers down. It blocks until the export is done (it runs at exit; from async
    code, run it in a thread)."""
    for tracer in _env_tracers.values():
        tracer.close()
    _env_tracers.clear()
    providers, log_providers = list(_env_providers), list(_env_log_providers.values())
    _env_providers.clear()
    _env_log_providers.clear()
    for provider in providers:
        provider.shutdown()
    for log_provider in log_providers:
        log_provider.shutdown()
