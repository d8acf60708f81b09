"""Remote machines in Chromium: pages drive a machine hosted by a Python server through the same
JS API as a local machine (``am.connect``)."""

from __future__ import annotations

import socket
from typing import Any

Page = Any


def connect(page: Page, url: str, name: str) -> None:
    page.evaluate(
        """async ([url, name]) => {
        window[name] = await am.connect(url, {id: "shared", clientId: name});
        await window[name].connection.when1("Ready");
    }""",
        [url, name],
    )


def test_remote_machine_reads_waits_and_mutations(bridge_page: tuple[Page, Any], rpc_server: Any) -> None:
    page, _ = bridge_page
    connect(page, rpc_server.server.url, "remote")
    out = page.evaluate(
        """async () => {
        const m = window.remote;
        const before = m.stringAll();
        const busy = m.when1("Busy");
        const result = await m.add1("Busy");
        await busy;
        const unknown = await m.add1("Nope").then(() => null, (e) => e.name);
        return {remote: m.isRemote, before, result, after: m.stringAll(), unknown,
                connection: m.connection.activeStates().sort(),
                same: (await m.remove1("Busy")) === 0 && m.is1("Idle")};
    }"""
    )
    assert out["remote"] is True
    assert out["before"] == "(Idle:1) [Busy:0 Clicked:0 Exception:0]"
    assert out["result"] == 0
    assert out["after"] == "(Busy:1) [Clicked:0 Exception:0 Idle:2]"
    assert out["unknown"] == "StateMissingError"
    assert out["connection"] == ["Connected", "Ready", "Start"]
    assert out["same"] is True
    assert rpc_server.run(rpc_server.machine.string_all) == "(Idle:3) [Busy:2 Clicked:0 Exception:0]"


def test_two_pages_see_each_others_mutations(
    bridge_page: tuple[Page, Any], second_page: tuple[Page, Any], rpc_server: Any
) -> None:
    page_a, _ = bridge_page
    page_b, _ = second_page
    url = rpc_server.server.url
    connect(page_a, url, "tabA")
    connect(page_b, url, "tabB")
    start = page_b.evaluate("tabB.tick('Clicked')")
    page_b.evaluate("window.seen = []; tabB.subscribe((info) => seen.push(info.added.join())); 0")
    # `; 0`: evaluate() would otherwise wait for the Promise before tab A clicks
    page_b.evaluate("window.clicks = tabB.whenTicks('Clicked', 5); 0")
    for _ in range(3):
        assert page_a.evaluate("tabA.add1('Clicked')") == 0
    page_b.evaluate("clicks")  # awaits the Promise: three Multi activations from tab A
    server_clock = rpc_server.run(rpc_server.machine.clock)
    assert page_b.evaluate("tabB.clock()") == server_clock
    assert page_a.evaluate("tabA.clock()") == server_clock
    assert server_clock["Clicked"] == start + 5
    assert page_b.evaluate("seen").count("Clicked") >= 1
    # a server-side change reaches both tabs
    rpc_server.run(lambda: rpc_server.machine.add1("Busy"))
    for page, name in ((page_a, "tabA"), (page_b, "tabB")):
        page.evaluate(f"{name}.when1('Busy')")
        assert page.evaluate(f"{name}.is1('Busy')") is True


def test_dispose_closes_the_connection(bridge_page: tuple[Page, Any], rpc_server: Any) -> None:
    page, _ = bridge_page
    connect(page, rpc_server.server.url, "gone")
    sessions = rpc_server.run(lambda: len(rpc_server.server.sessions))
    out = page.evaluate(
        """async () => {
        const pending = gone.when1("Exception").then(() => "resolved", (e) => e.name);
        gone.dispose();
        let after;
        try { gone.is1("Idle"); } catch (e) { after = e.name; }
        return {pending: await pending, after, disposed: gone.isDisposed};
    }"""
    )
    assert out == {"pending": "CancelledError", "after": "DisposedError", "disposed": True}
    page.wait_for_timeout(200)
    assert rpc_server.run(lambda: len(rpc_server.server.sessions)) == sessions - 1


def test_dry_runs_and_errors_are_promises_answered_by_the_server(
    bridge_page: tuple[Page, Any], rpc_server: Any
) -> None:
    page, _ = bridge_page
    connect(page, rpc_server.server.url, "dry")
    rpc_server.run(lambda: rpc_server.machine.remove1("Busy"))  # earlier tests may have added it
    before = rpc_server.run(rpc_server.machine.clock)
    out = page.evaluate(
        """async () => {
        const m = window.dry;
        const pending = m.canAdd1("Busy");
        const explained = await m.explainAdd1("Busy").then((x) => x.added, (e) => e.message);
        return {
            promise: pending instanceof Promise,
            canAdd1: await pending,
            canAdd: await m.canAdd(["Busy", "Clicked"]),
            canRemove1: await m.canRemove1("Idle"),
            explained,
            missing: await m.canAdd1("Nope").then(() => null, (e) => e.name),
        };
    }"""
    )
    assert out == {
        "promise": True,
        "canAdd1": 0,
        "canAdd": 0,
        "canRemove1": 0,
        "explained": ["Busy"],
        "missing": "StateMissingError",
    }
    assert rpc_server.run(rpc_server.machine.clock) == before  # dry runs change nothing
    result = page.evaluate("dry.addErrState('Busy', new TypeError('from the page'))")
    assert result == 0
    err = rpc_server.run(rpc_server.machine.err)
    assert (err.type_name, err.message) == ("TypeError", "from the page")
    rpc_server.run(lambda: rpc_server.machine.remove(["Exception", "Busy"]))


def test_a_page_mirrors_only_the_states_it_asks_for(
    bridge_page: tuple[Page, Any], rpc_server: Any
) -> None:
    page, _ = bridge_page
    out = page.evaluate(
        """async (url) => {
        const m = await am.connect(url, {id: "shared", states: ["Clicked"]});
        const names = m.stateNames();
        const clicked = await m.add1("Clicked");
        const busy = await m.add1("Busy").then(() => null, (e) => e.name);
        const result = {names, clicked, tick: m.tick("Clicked"), busy};
        m.dispose();
        return result;
    }""",
        rpc_server.server.url,
    )
    ticks = rpc_server.run(lambda: rpc_server.machine.tick("Clicked"))
    assert out == {"names": ["Clicked"], "clicked": 0, "tick": ticks, "busy": "StateMissingError"}


def test_connect_errors_say_why(browser: Any, site_url: str, rpc_server: Any) -> None:
    """A fresh tab: the browser reports each failed socket on its console, expectedly."""
    from asyncmachine import rpc

    async def start(**options: Any) -> Any:
        server = rpc.Server([rpc_server.machine], **options)
        await server.start()
        return server

    strict = rpc_server.call(start(path="/rpc", allowed_origins=["https://elsewhere.example"]))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"ws://127.0.0.1:{closed.getsockname()[1]}/rpc"
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{site_url}/bridge.html")
            page.wait_for_function("document.getElementById('status').textContent === 'ready'")
            reasons = page.evaluate(
                """async (urls) => {
                const out = {};
                for (const [name, url] of Object.entries(urls)) {
                    out[name] = await am.connect(url, {id: "shared", timeout: 30}).then(
                        (m) => { m.dispose(); return "connected"; },
                        (e) => [e.name, e.message, e instanceof bridge.ConnectError]);
                }
                return out;
            }""",
                {
                    "refused": refused,
                    "not_found": f"ws://127.0.0.1:{strict.port}/nope",
                    "forbidden_origin": strict.url,
                    "garbage": "ws://[not-a-host/",
                },
            )
        finally:
            context.close()
            rpc_server.call(strict.stop())
    assert reasons == {
        "refused": ["ConnectError", "refused", True],
        "not_found": ["ConnectError", "not_found", True],
        "forbidden_origin": ["ConnectError", "forbidden_origin", True],
        "garbage": ["ConnectError", "protocol", True],
    }
