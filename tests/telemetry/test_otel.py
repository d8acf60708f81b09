"""OpenTelemetry: the span model on the SDK's in-memory exporter, the OTLP/HTTP payload decoded
with opentelemetry-proto from a real receiver, the logs bridge, trace context for RPC, and an
OTLP backend that is down, slow or failing."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("telemetry exporters need sockets and threads", allow_module_level=True)

import asyncio
import logging
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import StatusCode
from telemetry_backends import TIMEOUT, Receiver, free_port

import asyncmachine as am
from asyncmachine.telemetry import otel

SCHEMA: am.Schema = {
    "A": am.State(),
    "B": am.State(),
    "C": am.State(auto=True, require=("A",)),
    "M": am.State(multi=True),
    "Heartbeat": am.State(),
}

MakeReceiver = Callable[[], Awaitable[Receiver]]


class Spans:
    """An SDK tracer provider whose spans land in memory as they end."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def otel(self, **options: Any) -> otel.OtelTracer:
        return otel.OtelTracer(self.tracer, **options)

    @property
    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [s.name for s in self.finished]

    def one(self, name: str) -> ReadableSpan:
        found = [s for s in self.finished if s.name == name]
        assert len(found) == 1, (name, self.names())
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    s = Spans()
    yield s
    s.provider.shutdown()


def sid(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def links(span: ReadableSpan) -> list[int]:
    return [link.context.span_id for link in span.links]


def attr(span: ReadableSpan, key: str) -> Any:
    """An attribute under ``asyncmachine.``; KeyError when missing."""
    return (span.attributes or {})["asyncmachine." + key]


def of(spans: Spans, name: str, mach_id: str) -> ReadableSpan:
    """The one span called ``name`` of the machine ``mach_id``."""
    (span,) = [s for s in spans.finished if s.name == name and attr(s, "id") == mach_id]
    return span


# ---------------------------------------------------------------------- the span model


def test_activation_spans_under_the_machine_span(spans: Spans) -> None:
    mach = am.Machine(SCHEMA, id="m1")
    spans.otel(transitions=False).bind(mach)
    mach.add1("A")
    assert spans.names() == []  # A is active, the machine alive: nothing ended yet
    mach.remove1("A")
    span_a = spans.one("A")
    assert span_a.attributes is not None
    assert span_a.attributes["asyncmachine.state"] == "A"
    assert span_a.attributes["asyncmachine.tick"] == 1
    assert span_a.attributes["asyncmachine.id"] == "m1"
    mach.add1("A")
    mach.dispose()
    mach_span = spans.one("mach:m1")
    assert mach_span.parent is None
    second = [s for s in spans.finished if s.name == "A"][1]
    assert second.attributes is not None and second.attributes["asyncmachine.disposed"] is True
    assert {parent_id(s) for s in spans.finished if s.name == "A"} == {sid(mach_span)}
    assert spans.names().count("C") == 2  # the auto state follows A
    assert "Heartbeat" not in spans.names()


def test_states_active_at_bind_get_spans_at_once(spans: Spans) -> None:
    mach = am.Machine(SCHEMA)
    mach.add1("B")
    tracer = spans.otel()
    tracer.bind(mach)
    tracer.bind(mach)  # binding twice changes nothing
    assert mach.tracers() == [tracer]
    mach.remove1("B")
    assert spans.one("B").attributes == {
        "asyncmachine.id": mach.id,
        "asyncmachine.state": "B",
        "asyncmachine.tick": 1,
        "asyncmachine.tx.end": attr(spans.one("remove B"), "tx.id"),
    }


def test_multi_reactivation_is_an_event(spans: Spans) -> None:
    mach = am.Machine(SCHEMA)
    spans.otel().bind(mach)
    mach.add1("M")
    mach.add1("M")
    mach.add1("M")
    mach.remove1("M")
    span_m = spans.one("M")
    assert [e.name for e in span_m.events] == ["reactivated", "reactivated"]
    ticks = [(e.attributes or {})["asyncmachine.tick"] for e in span_m.events]
    assert ticks == [3, 5]


class Handlers:
    def AEnter(self, e: am.Event) -> bool:
        return e.args.get("ok", True) is True

    def AState(self, e: am.Event) -> None: ...

    def BExit(self, e: am.Event) -> None: ...


def test_transition_spans(spans: Spans) -> None:
    mach = am.Machine(SCHEMA, id="tx")
    mach.bind_handlers(Handlers())
    spans.otel().bind(mach)
    assert mach.add1("A", {"ok": False}) == am.Canceled
    mach.add1("A")
    mach.set(["B"])

    canceled, add_a, auto_c, set_b = [s for s in spans.finished if s.name[0] in "as"][:4]
    assert [canceled.name, add_a.name, auto_c.name, set_b.name] == [
        "add A",
        "add A",
        "add C",
        "set B",
    ]
    assert canceled.attributes is not None and canceled.attributes["asyncmachine.accepted"] is False
    assert canceled.attributes["asyncmachine.states_diff"] == ""
    assert [e.name for e in canceled.events] == ["AEnter"]
    attrs = add_a.attributes
    assert attrs is not None
    assert attrs["asyncmachine.id"] == "tx"
    assert attrs["asyncmachine.mutation"] == "add"
    assert attrs["asyncmachine.accepted"] is True
    assert attrs["asyncmachine.auto"] is False
    assert attrs["asyncmachine.states_diff"] == "+A"
    assert (attrs["asyncmachine.time_before"], attrs["asyncmachine.time_after"]) == (0, 1)
    assert [e.name for e in add_a.events] == ["AEnter", "AState"]
    assert auto_c.attributes is not None and auto_c.attributes["asyncmachine.auto"] is True
    assert links(auto_c) == [sid(add_a)]  # the auto transition was caused by `add A`
    assert set_b.attributes is not None
    assert set_b.attributes["asyncmachine.states_diff"] == "+B -A -C"

    span_a, span_c = spans.one("A"), spans.one("C")
    assert attr(span_a, "tx.id") == attr(add_a, "tx.id")  # activated by
    assert attr(span_c, "tx.id") == attr(auto_c, "tx.id")
    assert attr(span_a, "tx.end") == attr(set_b, "tx.id")  # deactivated by
    assert attr(span_c, "tx.end") == attr(set_b, "tx.id")
    assert links(span_a) == links(set_b) == []
    mach_id = sid(spans.one("mach:tx")) if "mach:tx" in spans.names() else None
    assert mach_id is None  # still alive
    assert {parent_id(s) for s in (canceled, add_a, auto_c, set_b, span_a)} == {parent_id(add_a)}


def test_exception_span(spans: Spans) -> None:
    mach = am.Machine(SCHEMA)
    spans.otel().bind(mach)
    mach.add_err(ValueError("boom"))
    span = spans.one("!add Exception")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "boom"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"


def test_rolled_back_activation_ends_its_span(spans: Spans) -> None:
    class Raising:
        def BState(self, e: am.Event) -> None:
            raise RuntimeError("no")

    mach = am.Machine(SCHEMA)
    mach.bind_handlers(Raising())
    spans.otel().bind(mach)
    mach.add1("B")
    span_b = spans.one("B")
    assert span_b.attributes is not None and span_b.attributes["asyncmachine.rolled_back"] is True
    assert mach.not1("B")
    assert attr(spans.one("add B"), "accepted") is False


def test_causes_across_machines(spans: Spans) -> None:
    """A handler's mutation of another machine links that machine's transition to its cause,
    whether the other machine runs it at once (idle) or later (queued), and through ev_add."""
    tracer = spans.otel()
    m1, m2 = am.Machine(SCHEMA, id="one"), am.Machine(SCHEMA, id="two")

    class One:
        def AState(self, e: am.Event) -> None:
            m2.add1("A")  # m2 is idle: it runs inside this handler
            m2.ev_add1(e, "B")  # ... and this one too, with an explicit source

    class Two:
        def AState(self, e: am.Event) -> None:
            m1.add1("B")  # m1 is busy: queued, runs after `add A` on m1

    m1.bind_handlers(One())
    m2.bind_handlers(Two())
    tracer.bind(m1)
    tracer.bind(m2)
    m1.add1("A")
    one_a, two_a = of(spans, "add A", "one"), of(spans, "add A", "two")
    assert links(two_a) == [sid(one_a)]
    two_b = of(spans, "add B", "two")
    assert links(two_b) == [sid(one_a)]
    assert attr(two_b, "source.id") == "one"
    assert attr(two_b, "source.tx.id") == attr(one_a, "tx.id")
    one_b = of(spans, "add B", "one")
    assert links(one_b) == [sid(two_a)]
    assert one_a.context is not None and two_a.context is not None
    assert one_a.context.trace_id != two_a.context.trace_id  # a machine per trace, linked


def test_callers_span_is_the_cause(spans: Spans) -> None:
    mach = am.Machine(SCHEMA)
    spans.otel().bind(mach)
    with spans.tracer.start_as_current_span("request"):
        mach.add1("B")
    assert links(spans.one("add B")) == [sid(spans.one("request"))]


def test_machine_span_joins_the_current_trace(spans: Spans) -> None:
    with spans.tracer.start_as_current_span("request"):
        mach = am.Machine(SCHEMA, id="joined")
        spans.otel().bind(mach)
    mach.dispose()
    assert parent_id(spans.one("mach:joined")) == sid(spans.one("request"))


def test_handlers_run_inside_the_transition_span(spans: Spans) -> None:
    seen: dict[str, Any] = {}

    class Nesting:
        def AState(self, e: am.Event) -> None:
            with spans.tracer.start_as_current_span("work"):
                pass
            seen["meta"] = otel.trace_meta()

    mach = am.Machine(SCHEMA)
    mach.bind_handlers(Nesting())
    spans.otel().bind(mach)
    assert otel.trace_meta() == {}  # no current span outside
    mach.add1("A")
    add_a = spans.one("add A")
    assert parent_id(spans.one("work")) == sid(add_a)
    assert add_a.context is not None
    ctx = add_a.context
    traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert seen["meta"]["traceparent"] == traceparent
    assert trace.get_current_span().get_span_context().is_valid is False  # detached again


class FromRpc(am.Tracer):
    """Gives mutations of ``state`` the source an RPC server sets for a client's mutation that
    carries W3C trace context (``MutationSource(..., meta={"traceparent": ...})``; the RPC
    ``meta`` field is not in the core yet, so the shape is built here)."""

    def __init__(self, state: str, traceparent: str) -> None:
        self.state = state
        self.traceparent = traceparent

    def mutation_queued(self, mach: am.Machine, mutation: am.Mutation) -> None:
        if mutation.called == [self.state]:
            mutation.source = SimpleNamespace(  # type: ignore[assignment]
                mach_id="browser-tab",
                tx_id="t1",
                mach_time=3,
                meta={"traceparent": self.traceparent},
            )


def test_remote_parent_from_mutation_meta(spans: Spans) -> None:
    """A mutation whose source carries W3C trace context in ``meta`` (as the RPC server will set
    it: ``MutationSource(..., meta={"traceparent": ...})``) is a child of that remote span."""
    remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    mach = am.Machine(SCHEMA, tracers=[FromRpc("A", remote)])
    spans.otel().bind(mach)
    mach.add1("A")
    add_a = spans.one("add A")
    assert add_a.context is not None and add_a.parent is not None
    assert f"{add_a.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{add_a.parent.span_id:016x}" == "b7ad6b7169203331"
    assert add_a.parent.is_remote
    mach.add1("B")  # no meta: under the machine span again
    assert parent_id(spans.one("add B")) != parent_id(add_a)


def test_unsampled_machines_make_no_spans_but_remote_traces_go_on() -> None:
    """With a parent-based sampler that drops machine spans, a machine costs little and records
    nothing, except a transition whose mutation arrived with a sampled remote parent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    mach = am.Machine(SCHEMA, tracers=[FromRpc("B", remote)])
    otel.OtelTracer(provider.get_tracer("t")).bind(mach)
    mach.add1("A")
    mach.remove1("A")
    assert exporter.get_finished_spans() == ()
    mach.add1("B")
    (span,) = exporter.get_finished_spans()
    assert span.name == "add B"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    provider.shutdown()


def test_options(spans: Spans) -> None:
    mach = am.Machine(SCHEMA)
    mach.set_args_mapper(am.new_log_args_mapper())
    spans.otel(transitions=False).bind(mach)
    mach.add1("A")
    assert not [n for n in spans.names() if " " in n]

    spans.exporter.clear()
    mach = am.Machine(SCHEMA)
    spans.otel(skip_auto=True).bind(mach)
    mach.add1("A", {"name": "secret"})
    mach.add1("Heartbeat")
    mach.remove(["A", "Heartbeat"])
    assert spans.names() == ["add A", "A", "C", "remove A Heartbeat"]  # no "add C", no health
    assert "asyncmachine.args.name" not in (spans.one("add A").attributes or {})

    spans.exporter.clear()
    mach = am.Machine(SCHEMA)
    mach.set_args_mapper(am.new_log_args_mapper())
    spans.otel(args=True, allow_states=["A", "Heartbeat"], skip_re=r":Heartbeat$").bind(mach)
    mach.add1("A", {"name": "shown"})
    mach.add1("B")
    mach.remove(["A", "B"])
    assert spans.names() == ["add A", "A", "remove A B"]  # B and C are not allowed
    assert attr(spans.one("add A"), "args.name") == "shown"

    spans.exporter.clear()
    mach = am.Machine(SCHEMA, id="re-test")
    spans.otel(allow_re=r"^re-test:(A|M)$", skip_states=()).bind(mach)
    mach.add(["A", "M", "Heartbeat"])
    mach.remove(["A", "M", "Heartbeat"])
    assert sorted(n for n in spans.names() if " " not in n) == ["A", "M"]


def test_submachines_are_followed(spans: Spans) -> None:
    parent = am.Machine(SCHEMA, id="parent")
    tracer = spans.otel()
    tracer.bind(parent)
    child = am.Machine(SCHEMA, id="child", parent=parent)
    assert tracer in child.tracers()
    child.add1("B")
    child.dispose()
    parent.dispose()
    assert parent_id(spans.one("mach:child")) == sid(spans.one("mach:parent"))
    add_b = spans.one("add B")
    assert parent_id(add_b) == sid(spans.one("mach:child"))


def test_constructor_tracers_and_close(spans: Spans) -> None:
    tracer = spans.otel()
    mach = am.Machine(SCHEMA, id="ctor", tracers=[tracer])
    mach.add1("B")
    assert "mach:ctor" not in spans.names()
    tracer.close()
    assert sorted(spans.names()) == ["B", "add B", "mach:ctor"]
    assert attr(spans.one("B"), "disposed") is False


def test_unbound_machines_stay_untouched(spans: Spans) -> None:
    spans.otel().bind(am.Machine(SCHEMA))
    other = am.Machine(SCHEMA)
    other.add1("A")
    assert other.tracers() == []
    assert spans.names() == []


# ---------------------------------------------------------------------- logs


@pytest.fixture
def log_records() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_logs_bridge(
    spans: Spans, log_records: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = log_records
    own: list[str] = []
    mach = am.Machine(SCHEMA, logger=lambda lv, m: own.append(m), log_id=False)
    mach.bind_handlers(am.ExceptionHandler())
    spans.otel().bind(mach)
    logs = otel.bind_otel_logs(mach, provider)
    mach.add1("B")
    mach.log("note")
    mach.add_err(ValueError("boom"))
    records = [r.log_record for r in exporter.get_finished_logs()]
    got = [(r.body, r.severity_text, r.severity_number) for r in records]
    assert got == [
        ("[state] +B", "INFO", SeverityNumber.INFO3),
        ("[exter] note", "INFO", SeverityNumber.INFO4),
        ("[state] +Exception", "INFO", SeverityNumber.INFO3),
        ("[error] boom", "ERROR", SeverityNumber.ERROR),
    ]
    assert all(r.attributes == {"asyncmachine.id": mach.id} for r in records)
    add_b = spans.one("add B")
    assert add_b.context is not None
    assert (records[0].trace_id, records[0].span_id) == (add_b.context.trace_id, sid(add_b))
    assert own == []  # the user's logger at NOTHING still gets nothing
    logs.close()
    mach.add1("A")
    assert len(exporter.get_finished_logs()) == 4
    assert mach.log_level == am.LogLevel.NOTHING


def test_logs_debug_levels(log_records: tuple[LoggerProvider, InMemoryLogRecordExporter]) -> None:
    provider, exporter = log_records
    mach = am.Machine(SCHEMA, log_level=am.LogLevel.EVERYTHING, logger=lambda lv, m: None)
    otel.bind_otel_logs(mach, provider)
    mach.add1("A")
    texts = {r.log_record.severity_text for r in exporter.get_finished_logs()}
    assert texts == {"INFO", "DEBUG"}


# ---------------------------------------------------------------------- environment, OTLP


@pytest.fixture
async def env(
    monkeypatch: pytest.MonkeyPatch, receiver: MakeReceiver
) -> AsyncIterator[pytest.MonkeyPatch]:
    """AM_*/OTEL_* variables via ``env.setenv``; what ``mach_bind_otel_env`` made is shut down
    (before the receivers stop: its last export still reaches them)."""
    for var in ("AM_OTEL_TRACE", "AM_OTEL_LOGS", "AM_SERVICE", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "20")
    yield monkeypatch
    await asyncio.to_thread(otel.shutdown_env)


def decode_spans(rec: Receiver) -> tuple[dict[str, Any], list[Any]]:
    """The resource attributes and spans of every OTLP/HTTP trace export received."""
    resource: dict[str, Any] = {}
    out = []
    for req in rec.requests:
        assert req.path == "/v1/traces"
        assert req.headers["Content-Type"] == "application/x-protobuf"
        msg = ExportTraceServiceRequest.FromString(req.body)
        for rs in msg.resource_spans:
            resource.update({a.key: a.value.string_value for a in rs.resource.attributes})
            for ss in rs.scope_spans:
                out.extend(ss.spans)
    return resource, out


async def test_env_off_and_bad_values(env: pytest.MonkeyPatch) -> None:
    mach = am.Machine(SCHEMA)
    assert otel.mach_bind_otel_env(mach) is None
    env.setenv("AM_OTEL_TRACE", "0")
    assert otel.mach_bind_otel_env(mach) is None
    env.setenv("AM_OTEL_TRACE", "1")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "127.0.0.1:4318")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http"):
        otel.mach_bind_otel_env(mach)
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    env.setenv("AM_OTEL_TRACE_SKIP_STATES_RE", "(")
    with pytest.raises(ValueError, match="AM_OTEL_TRACE_SKIP_STATES_RE is not a regex"):
        otel.mach_bind_otel_env(mach)
    assert mach.tracers() == []


async def test_otlp_http_on_the_wire(env: pytest.MonkeyPatch, receiver: MakeReceiver) -> None:
    rec = await receiver()
    env.setenv("AM_OTEL_TRACE", "1")
    env.setenv("AM_SERVICE", "uploads")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{rec.url}/v1/traces")
    env.setenv("AM_OTEL_TRACE_SKIP_STATES", "B")
    mach = am.Machine(SCHEMA, id="wire")
    tracer = otel.mach_bind_otel_env(mach)
    assert tracer is not None and tracer.exporter is not None
    assert otel.mach_bind_otel_env(am.Machine(SCHEMA)) is tracer  # shared by same settings
    mach.add1("A")
    mach.add1("B")
    mach.remove1("A")
    await rec.wait_for(lambda: len(decode_spans(rec)[1]) >= 5)  # add A, C, A, add B, remove A
    mach.dispose()
    await asyncio.to_thread(otel.shutdown_env)
    resource, wire = decode_spans(rec)
    assert resource["service.name"] == "uploads"
    by_name = {s.name: s for s in wire}
    other = next(n for n in by_name if n.startswith("mach:") and n != "mach:wire")
    assert set(by_name) == {"add A", "add C", "C", "A", "remove A", "mach:wire", other}
    mach_span = by_name["mach:wire"]
    assert by_name["A"].parent_span_id == mach_span.span_id
    assert [link.span_id for link in by_name["add C"].links] == [by_name["add A"].span_id]
    attrs = {a.key: a.value for a in by_name["add A"].attributes}
    assert attrs["asyncmachine.id"].string_value == "wire"
    assert attrs["asyncmachine.accepted"].bool_value is True
    assert [e.name for e in by_name["remove A"].events] == []
    assert tracer.exporter.exported == len(wire)
    assert tracer.exporter.dropped == 0


async def test_otlp_logs_on_the_wire(env: pytest.MonkeyPatch, receiver: MakeReceiver) -> None:
    rec = await receiver()
    env.setenv("AM_OTEL_TRACE", "1")
    env.setenv("AM_OTEL_LOGS", "1")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{rec.url}/v1/traces")
    env.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", f"{rec.url}/v1/logs")
    mach = am.Machine(SCHEMA)
    otel.mach_bind_otel_env(mach)
    mach.add1("B")

    def logs() -> list[Any]:
        out: list[Any] = []
        for req in rec.requests:
            if req.path == "/v1/logs":
                msg = ExportLogsServiceRequest.FromString(req.body)
                for rl in msg.resource_logs:
                    out.extend(r for sl in rl.scope_logs for r in sl.log_records)
        return out

    await rec.wait_for(lambda: len(logs()) >= 1)
    (record,) = logs()
    assert record.body.string_value == "[state] +B"
    assert record.severity_text == "INFO"
    assert record.severity_number == 11
    assert {a.key: a.value.string_value for a in record.attributes} == {"asyncmachine.id": mach.id}
    assert len(record.trace_id) == 16 and any(record.trace_id)  # inside the `add B` span


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", ["down", "500", "slow"])
async def test_otlp_faults_keep_machines_running(
    fault: str,
    env: pytest.MonkeyPatch,
    receiver: MakeReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = await receiver()
    url = rec.url
    if fault == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif fault == "500":
        rec.status = 500  # retryable: the SDK retries until its timeout, then gives up
    else:
        rec.delay = 2.0
    env.setenv("AM_OTEL_TRACE", "1")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/v1/traces")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.2")
    env.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    env.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
    caplog.set_level(logging.WARNING, "asyncmachine.telemetry")
    mach = am.Machine(SCHEMA)
    tracer = otel.mach_bind_otel_env(mach)
    assert tracer is not None and tracer.exporter is not None
    exporter = tracer.exporter

    tracemalloc.start()
    try:
        for _ in range(200):  # warm up: caches, the SDK's queue at its bound
            mach.toggle1("B")
        base = tracemalloc.get_traced_memory()[0]
        async with asyncio.timeout(TIMEOUT):
            while exporter.dropped < 32:
                for _ in range(500):  # 1000 spans a round, far beyond the queue's 64
                    assert mach.toggle1("B") == am.Executed
                await asyncio.sleep(0.01)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 2_000_000, f"memory grew by {grown} bytes with the backend {fault}"
    assert exporter.exported == 0
    ours = [r.getMessage() for r in caplog.records if r.name == "asyncmachine.telemetry"]
    assert len(ours) == 1 and "dropping spans" in ours[0]
