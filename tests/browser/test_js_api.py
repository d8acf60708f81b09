"""The JS bridge as a page uses it, in Chromium: explanations, state signals, waits that time out
or abort, handler errors with their JS names, args JSON cannot carry, snapshots and persistence,
stores for UI frameworks, React, and a page that brings its own Pyodide."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

Page = Any
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def page(bridge_page: tuple[Page, Any]) -> Page:
    return bridge_page[0]


def test_explain_add_says_why_and_changes_nothing(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}, B: {require: ["A"]}});
        const why = m.explainAdd1("B");
        const both = m.explainAdd(["A", "B"]);
        const res = {why, added: both.added, clock: m.clock()};
        m.dispose();
        return res;
    }"""
    )
    assert out["why"] == {
        "result": 1,
        "target": [],
        "added": [],
        "removed": [],
        "canceledBy": None,
        "rejected": [{"state": "B", "reason": "requires A"}],
    }
    assert out["added"] == ["A", "B"]
    assert out["clock"] == {"A": 0, "B": 0, "Exception": 0}


def test_state_signals_abort_inside_the_transition_that_deactivates_the_state(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({Fetching: {remove: ["Idle"]}, Idle: {remove: ["Fetching"]}});
        const inactive = m.stateSignal("Fetching").aborted;
        let handlerSignal, seenInIdleState, reason;
        let fetchAborted = null;
        m.bind({
            FetchingState(e) {
                handlerSignal = e.signal;
                // a stale request is dropped when Fetching ends
                new Promise((_, reject) => e.signal.addEventListener("abort", () => reject(e.signal.reason)))
                    .catch((err) => { fetchAborted = err.name; });
            },
            IdleState() { seenInIdleState = handlerSignal.aborted; },
        });
        m.add1("Fetching");
        const direct = m.stateSignal("Fetching");
        const before = [handlerSignal.aborted, direct.aborted];
        m.add1("Idle");
        reason = direct.reason;
        await Promise.resolve();
        const res = {inactive, before, seenInIdleState, after: direct.aborted, reason: reason.name,
                     message: reason.message, fetchAborted, resources: m.resources()};
        m.dispose();
        return res;
    }"""
    )
    assert out["inactive"] is True
    assert out["before"] == [False, False]
    assert out["seenInIdleState"] is True  # aborted before the next state's handler ran
    assert out["after"] is True and out["reason"] == "AbortError"
    assert out["message"] == "Fetching is no longer active"
    assert out["fetchAborted"] == "AbortError"
    assert out["resources"] == 1  # the binding; the signals were released


def test_waits_time_out_or_abort_and_release_the_python_waiter(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}, B: {}});
        const name = (p) => p.then(() => "resolved", (e) => `${e.constructor.name}:${e.name}`);
        const timedOut = await name(m.when1("A", {timeout: 20}));
        const controller = new AbortController();
        const aborting = name(m.whenTicks("B", 2, {signal: controller.signal}));
        const pendingBefore = m.resources();
        controller.abort();
        const aborted = await aborting;
        const already = await name(m.whenErr({signal: AbortSignal.abort()}));
        const resolvedInTime = name(m.when1("B", {timeout: 60_000}));
        m.add1("B");
        const resolved = await resolvedInTime;
        let badTimeout;
        try { m.when1("A", {timeout: -1}); } catch (e) { badTimeout = e.name; }
        const res = {timedOut, aborted, already, resolved, pendingBefore, badTimeout,
                     resources: m.resources()};
        m.dispose();
        return res;
    }"""
    )
    assert out["timedOut"] == "DOMException:TimeoutError"
    assert out["aborted"] == "DOMException:AbortError"
    assert out["already"] == "DOMException:AbortError"
    assert out["resolved"] == "resolved"
    assert out["pendingBefore"] == 1
    assert out["badTimeout"] == "TypeError"
    assert out["resources"] == 0  # every given-up waiter was released on the Python side


def test_async_negotiation_handlers_are_refused(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}});
        let refused;
        try { m.bind({ async AEnter() { return false; } }); } catch (e) {
            refused = {name: e.name, error: e instanceof bridge.AsyncMachineError, message: e.message};
        }
        const resources = m.resources();
        // a plain function that returns a Promise cannot decide either
        m.bind({ AEnter() { return Promise.resolve(false); } });
        const result = m.add1("A");
        const res = {refused, resources, result, err: m.err(), active: m.activeStates()};
        m.dispose();
        return res;
    }"""
    )
    assert out["refused"]["name"] == "HandlerError" and out["refused"]["error"] is True
    assert "AEnter is async" in out["refused"]["message"]
    assert out["resources"] == 0
    assert out["result"] == 1
    assert out["err"]["type"] == "HandlerError" and "returned a Promise" in out["err"]["message"]
    assert out["active"] == ["Exception"]


def test_errors_keep_their_js_name(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({Loading: {}, Saving: {}});
        m.bind({
            async LoadingState() { await Promise.resolve(); throw new RangeError("page 9 of 3"); },
        });
        const result = m.add1("Loading");
        await m.whenErr({timeout: 10_000});
        const rejected = m.err();
        m.remove1("Exception");
        m.addErr(new TypeError("not a file"));
        const added = m.err();
        m.addErrState("Saving", "a plain string");
        const plain = m.err();
        const res = {result, rejected, added, plain};
        m.dispose();
        return res;
    }"""
    )
    assert out["result"] == 0
    assert out["rejected"] == {"type": "RangeError", "message": "page 9 of 3"}
    assert out["added"] == {"type": "TypeError", "message": "not a file"}
    assert out["plain"] == {"type": "Error", "message": "a plain string"}


def test_args_json_cannot_carry_are_refused_with_the_key_path(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}});
        const seen = [];
        m.subscribe((info) => seen.push(info.added));
        const cyclic = {}; cyclic.self = cyclic;
        const cases = {
            bigint: {id: 1n},
            fn: {user: {onDone() {}}},
            cycle: {user: cyclic},
            date: {user: {when: new Date(0)}},
            map: {m: new Map()},
            set: {list: [1, new Set()]},
            undef: {x: undefined},
            nan: {n: NaN},
            key: {"a b": Infinity},
            klass: {e: new URL("http://x/")},
        };
        const out = {};
        for (const [name, args] of Object.entries(cases)) {
            try { m.add1("A", args); out[name] = "sent"; } catch (e) { out[name] = `${e.name}: ${e.message}`; }
        }
        out.whenArgs = m.whenArgs("A", {d: new Date()}).then(() => "resolved", (e) => e.name);
        out.tick = m.tick("A");
        out.seen = seen;
        return Promise.resolve(out.whenArgs).then((w) => { out.whenArgs = w; m.dispose(); return out; });
    }"""
    )
    assert out["bigint"].startswith("BridgeError: args.id: a BigInt cannot cross")
    assert out["fn"].startswith("BridgeError: args.user.onDone: a function")
    assert out["cycle"].startswith("BridgeError: args.user.self: a cycle")
    assert out["date"].startswith("BridgeError: args.user.when: a Date")
    assert out["map"].startswith("BridgeError: args.m: a Map")
    assert out["set"].startswith("BridgeError: args.list[1]: a Set")
    assert out["undef"].startswith("BridgeError: args.x: undefined")
    assert out["nan"].startswith("BridgeError: args.n: the number NaN")
    assert out["key"].startswith('BridgeError: args["a b"]: the number Infinity')
    assert out["klass"].startswith("BridgeError: args.e: a URL")
    assert out["whenArgs"] == "BridgeError"
    assert out["tick"] == 0 and out["seen"] == []  # nothing was sent


def test_states_option_without_exception_puts_it_last(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({B: {}, A: {}}, {states: ["A", "B"]});
        const names = m.stateNames();
        m.dispose();
        let unknown;
        try { am.machine({A: {}}, {states: ["A", "Nope"]}); } catch (e) { unknown = e.name; }
        return {names, unknown};
    }"""
    )
    assert out == {"names": ["A", "B", "Exception"], "unknown": "SchemaError"}


def test_persist_restores_a_clock_and_refuses_another_schema(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const { persist } = await import("/persist.mjs");
        localStorage.clear();
        const schema = {Selected: {}, Uploading: {require: ["Selected"]}};
        const first = am.machine(schema);
        const stop = persist(first, "upload");
        first.add1("Selected");
        first.add1("Uploading");
        stop();
        first.add1("Exception");  // after stop(): not saved
        const saved = JSON.parse(localStorage.getItem("upload"));
        const again = am.machine(schema);
        persist(again, "upload");
        const restored = again.stringAll();
        const other = am.machine({Selected: {}, Uploading: {}});
        let refused;
        try { persist(other, "upload"); } catch (e) { refused = `${e.name}: ${e.message}`; }
        const kept = localStorage.getItem("upload") === JSON.stringify(again.export());
        const res = {restored, refused, kept, hash: typeof saved.schema_hash, otherClock: other.stringAll()};
        for (const m of [first, again, other]) m.dispose();
        localStorage.clear();
        return res;
    }"""
    )
    assert out["restored"] == "(Selected:1 Uploading:1) [Exception:0]"
    assert out["refused"].startswith("SchemaError: the snapshot belongs to another schema")
    assert out["kept"] is True and out["hash"] == "string"
    assert out["otherClock"] == "() [Exception:0 Selected:0 Uploading:0]"


def test_store_snapshots_change_only_with_watched_ticks(page: Page) -> None:
    out = page.evaluate(
        """() => {
        const m = am.machine({A: {}, B: {}});
        const store = m.store(["A"]);
        let calls = 0;
        const first = store.getSnapshot();
        const unsubscribe = store.subscribe(() => calls++);
        m.add1("B");
        const sameAfterB = store.getSnapshot() === first;
        m.add1("A");
        const next = store.getSnapshot();
        unsubscribe();
        let unknown;
        try { m.store(["Nope"]); } catch (e) { unknown = e.name; }
        const res = {calls, sameAfterB, changed: next !== first, next, stable: store.getSnapshot() === next,
                     frozen: Object.isFrozen(next), unknown, resources: m.resources()};
        m.dispose();
        return res;
    }"""
    )
    assert out["calls"] == 1 and out["sameAfterB"] is True and out["changed"] is True
    assert out["next"] == {"clock": {"A": 1}, "active": ["A"]}
    assert out["stable"] is True and out["frozen"] is True
    assert out["unknown"] == "StateMissingError"
    assert out["resources"] == 0


@pytest.fixture(scope="module")
def react_app() -> str:
    """The React test app bundled by esbuild from npm's react (nothing from a CDN)."""
    out = ROOT / "build" / "test-react" / "react-app.mjs"
    subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "esbuild"),
            str(Path(__file__).with_name("react_app.mjs")),
            "--bundle",
            "--format=esm",
            "--log-level=warning",
            "--define:process.env.NODE_ENV='production'",
            f"--outfile={out}",
        ],
        check=True,
        cwd=ROOT,
    )
    return "/react-app.mjs"


def test_use_machine_renders_only_when_a_watched_state_ticks(page: Page, react_app: str) -> None:
    out = page.evaluate(
        """async (url) => {
        const { mount } = await import(url);
        const m = am.machine({Uploading: {remove: ["Done"]}, Done: {remove: ["Uploading"]}, Hover: {multi: true}});
        const app = await mount(m, ["Uploading", "Done"]);
        const frame = () => new Promise((resolve) => setTimeout(resolve, 0));
        const log = [[app.renders(), app.text()]];
        m.add1("Hover"); m.add1("Hover"); await frame();
        log.push([app.renders(), app.text()]);
        m.add1("Uploading"); await frame();
        log.push([app.renders(), app.text()]);
        m.add1("Done"); await frame();
        log.push([app.renders(), app.text()]);
        app.unmount();
        const res = {log, resources: m.resources()};
        m.dispose();
        return res;
    }""",
        react_app,
    )
    assert out["log"] == [[1, "idle"], [1, "idle"], [2, "Uploading"], [3, "Done"]]
    assert out["resources"] == 0  # unmounting unsubscribed the store


def test_a_page_brings_its_own_pyodide(page: Page) -> None:
    """A page already running Pyodide installs the wheel with micropip and hands it over."""
    out = page.evaluate(
        """async () => {
        const { loadPyodide } = await import("/pyodide/pyodide.mjs");
        const pyodide = await loadPyodide({ indexURL: "/pyodide/" });
        let early;
        try { await bridge.loadAsyncmachine({ pyodide, indexURL: undefined }); } catch (e) { early = e.message; }
        const lock = await (await fetch("/pyodide/pyodide-lock.json")).json();
        const wheel = new URL(`/pyodide/${lock.packages.asyncmachine.file_name}`, location).href;
        await pyodide.loadPackage("micropip");
        await pyodide.pyimport("micropip").install(wheel);
        const own = await bridge.loadAsyncmachine({ pyodide });
        const m = own.machine({A: {}});
        m.add1("A");
        const res = {early, all: m.stringAll(), same: own.pyodide === pyodide};
        m.dispose();
        return res;
    }"""
    )
    assert out["all"] == "(A:1) [Exception:0]" and out["same"] is True
    assert out["early"] is None or "micropip" in out["early"]


def test_reads_of_the_clock(page: Page) -> None:
    out = page.evaluate(
        """async () => {
        const m = am.machine({A: {}, B: {}, C: {}});
        m.add1("B");
        const time = m.time();
        const clock = m.clock();
        const next = m.whenNextActive("B");
        m.remove1("B");
        const stillPending = m.resources();
        m.add1("B");
        await next;
        const res = {
            has: [m.has(["A", "B"]), m.has(["A", "Nope"])],
            switch: [m.switch(["A"], ["C", "B"]), m.switch(["A"])],
            index: [m.index(["A", "C"]), m.index1("Nope")],
            isTime: m.isTime(time), wasTime: m.wasTime(time),
            isClock: m.isClock(clock), wasClock: m.wasClock(clock), stillPending,
        };
        m.dispose();
        return res;
    }"""
    )
    assert out["has"] == [True, False]
    assert out["switch"] == ["B", ""]
    assert out["index"] == [[0, 2], -1]
    assert out["isTime"] is False and out["wasTime"] is True
    assert out["isClock"] is False and out["wasClock"] is True
    assert out["stillPending"] == 1  # whenNextActive waited for the next activation
