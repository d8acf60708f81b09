"""The JS bridge in headless Chromium: a page loads the self-hosted dist and drives machines."""

from __future__ import annotations

from typing import Any

import pytest

Page = Any


@pytest.fixture
def page(bridge_page: tuple[Page, Any]) -> Page:
    return bridge_page[0]


def test_loads_offline_from_the_dist(bridge_page: tuple[Page, Any]) -> None:
    page, watch = bridge_page
    assert page.evaluate("am.version") == "0.1.0"
    assert page.evaluate("typeof window.readyMs") == "number"
    assert watch.blocked == []


def test_machine_from_json_schema(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({Foo: {}, Bar: {require: ["Foo"]}, Baz: {auto: true, require: ["Bar"]}});
        const r = [m.add1("Bar"), m.add1("Foo"), m.add1("Bar")];
        const res = {results: r, all: m.stringAll(), active: m.activeStates(), tick: m.tick("Baz"),
                     clock: m.clock(), is: m.is(["Foo", "Bar"]), any1: m.any1("Nope", "Foo"),
                     can: m.canAdd1("Bar"), not1: m.not1("Baz")};
        m.dispose();
        return res;
    }"""
    )
    assert out["results"] == [1, 0, 0]
    assert out["all"] == "(Bar:1 Baz:1 Foo:1) [Exception:0]"
    assert sorted(out["active"]) == ["Bar", "Baz", "Foo"]
    assert out["tick"] == 1
    assert out["clock"] == {"Bar": 1, "Baz": 1, "Exception": 0, "Foo": 1}
    assert out["is"] is True and out["any1"] is True and out["can"] == 0 and out["not1"] is False


def test_js_handlers_negotiate_and_cancel(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({Idle: {remove: ["Busy"]}, Busy: {remove: ["Idle"]}});
        const calls = [];
        const unbind = m.bind({
            BusyEnter(e) { calls.push(e.name + ":" + e.calledStates.join()); return e.args.allowed === true; },
            BusyState(e) { calls.push(e.name + ":" + (e.machine === m)); },
            IdleExit(e) { calls.push(e.name); },
            AnyEnter(e) { calls.push("AnyEnter"); },
        });
        m.add1("Idle");
        const canceled = m.add1("Busy", {allowed: false});
        const executed = m.add1("Busy", {allowed: true});
        unbind();
        const res = {canceled, executed, calls, all: m.stringAll(), resources: m.resources()};
        m.dispose();
        return res;
    }"""
    )
    assert out["canceled"] == 1 and out["executed"] == 0
    assert out["calls"] == [
        "AnyEnter",
        "IdleExit",
        "BusyEnter:Busy",
        "IdleExit",
        "BusyEnter:Busy",
        "AnyEnter",
        "BusyState:true",
    ]
    assert out["all"] == "(Busy:1) [Exception:0 Idle:2]"
    assert out["resources"] == 0


def test_when1_resolves_after_a_later_mutation(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}, B: {}});
        let resolved = false;
        const p = m.when1("B").then(() => { resolved = true; });
        await new Promise((r) => setTimeout(r, 10));
        const before = resolved;
        setTimeout(() => m.add1("B"), 5);
        await p;
        const ticks = await Promise.all([m.whenTicks("A", 2), (m.add1("A"), m.remove1("A"))]);
        const res = {before, after: resolved, all: m.stringAll()};
        m.dispose();
        return res;
    }"""
    )
    assert out == {"before": False, "after": True, "all": "(B:1) [A:2 Exception:0]"}


def test_subscribe_callbacks_in_order_and_unsubscribe(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}, B: {remove: ["A"]}, C: {auto: true, require: ["B"]}});
        const seen = [];
        const unsubscribe = m.subscribe((info) => seen.push(
            `${info.type}${info.isAuto ? "*" : ""} +${info.added.join(",")} -${info.removed.join(",")} ` +
            `${info.activeStates.slice().sort().join(",")}`));
        m.add1("A");
        m.add1("B");
        m.add1("Missing" in {} ? "A" : "B");
        m.canAdd1("A");
        unsubscribe();
        m.remove1("B");
        const res = {seen, resources: m.resources()};
        m.dispose();
        return res;
    }"""
    )
    assert out["seen"] == [
        "add +A - A",
        "add +B -A B",
        "add* +C - B,C",
        "add + - B,C",
    ]
    assert out["resources"] == 0


def test_python_errors_become_js_errors(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}});
        const errors = [];
        for (const call of [() => m.add1("Nope"), () => m.not1("Nope"), () => m.tick(["bad"])]) {
            try { call(); errors.push(null); }
            catch (e) { errors.push([e instanceof Error, e instanceof bridge.AsyncMachineError, e.name,
                                     e.message]); }
        }
        let badSchema;
        try { am.machine({A: {auto: "yes"}}); } catch (e) { badSchema = [e.name, e.message]; }
        m.dispose();
        let disposed;
        try { m.add1("A"); } catch (e) { disposed = e.name; }
        return {errors, badSchema, disposed};
    }"""
    )
    err = ["StateMissingError", "missing states: Nope not defined in schema"]
    for got in out["errors"][:2]:
        assert got[:3] == [True, True, err[0]] and got[3].startswith(err[1])
    assert out["errors"][2][:3] == [True, True, "TypeError"]
    assert out["badSchema"][0] == "SchemaError" and "auto must be a bool" in out["badSchema"][1]
    assert out["disposed"] == "DisposedError"


def test_when1_promise_rejects_for_unknown_state_and_on_dispose(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}});
        const unknown = await m.when1("Nope").then(() => "resolved", (e) => e.name);
        const pending = m.when1("A").then(() => "resolved", (e) => e.name);
        m.dispose();
        return {unknown, pending: await pending};
    }"""
    )
    assert out == {"unknown": "StateMissingError", "pending": "CancelledError"}


def test_js_handler_exception_becomes_exception_state(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}});
        m.bind({ AState() { throw new TypeError("broken handler"); } });
        const result = m.add1("A");
        await m.whenErr();
        const res = {result, all: m.stringAll(), err: m.err()};
        m.dispose();
        return res;
    }"""
    )
    assert out["result"] == 1
    assert out["all"] == "(Exception:1) [A:2]"
    assert out["err"] == {"type": "TypeError", "message": "broken handler"}


def test_no_proxy_leaks(page: Page) -> None:
    """Subscriptions, bindings and waiters release their callbacks; dispose destroys proxies."""
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}, B: {}});
        for (let i = 0; i < 200; i++) {
            const unsubscribe = m.subscribe(() => {});
            const unbind = m.bind({ AState() {} });
            const waiting = m.when1("B");
            m.add1("B"); await waiting; m.remove1("B");
            m.toggle1("A");
            unsubscribe(); unbind();
        }
        const resources = m.resources();
        m.dispose();
        return {resources, disposed: m.isDisposed, after: m.resources()};
    }"""
    )
    assert out == {"resources": 0, "disposed": True, "after": 0}
