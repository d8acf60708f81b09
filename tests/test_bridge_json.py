"""The Python half of the JS bridge, driven the way the page drives it: JSON in, JSON out, one
callback. (The page itself is tested in Chromium, tests/browser.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asyncmachine._bridge import Bridge, new_bridge


class Page:
    """Stands in for the page's ``notify`` callback and records what the bridge sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.answers: dict[str, Any] = {}

    def notify(self, kind: str, id: str, payload: str) -> Any:
        data = json.loads(payload)
        self.calls.append((kind, id, data))
        if kind == "handler":
            return self.answers.get(data["name"])
        return None


def call(bridge: Bridge, method: str, *params: Any) -> Any:
    out = json.loads(bridge.call(method, json.dumps(list(params))))
    if "error" in out:
        raise AssertionError(out["error"])
    return out["ok"]


def error(bridge: Bridge, method: str, params_json: str) -> dict[str, str]:
    out: dict[str, dict[str, str]] = json.loads(bridge.call(method, params_json))
    return out["error"]


def make(schema: dict[str, Any], page: Page, **opts: Any) -> Bridge:
    bridge = new_bridge(json.dumps(schema), json.dumps(opts), page.notify)
    assert isinstance(bridge, Bridge)
    return bridge


def test_mutations_and_reads() -> None:
    page = Page()
    b = make({"A": {}, "B": {"require": ["A"]}}, page, id="m1")
    assert call(b, "id") == "m1"
    assert [call(b, "add1", "B"), call(b, "add1", "A"), call(b, "add", ["B"])] == [1, 0, 0]
    assert call(b, "stringAll") == "(A:1 B:1) [Exception:0]"
    assert call(b, "clock") == {"A": 1, "B": 1, "Exception": 0}
    assert call(b, "is", ["A", "B"]) is True
    assert call(b, "canRemove1", "A") == 0


def test_bad_input_gets_an_error_envelope_and_changes_nothing() -> None:
    page = Page()
    b = make({"A": {}}, page)
    assert error(b, "add1", '["Nope"]')["type"] == "StateMissingError"
    assert error(b, "explode", "[]") == {
        "type": "BridgeError",
        "message": "unknown method 'explode'",
    }
    assert error(b, "add1", "{not json")["type"] == "JSONDecodeError"
    assert error(b, "add1", '{"state": "A"}')["type"] == "BridgeError"
    assert error(b, "add1", '["A", 5]') == {
        "type": "BridgeError",
        "message": "args must be an object",
    }
    assert error(b, "bind", '["b1", "AState"]')["type"] == "BridgeError"
    assert call(b, "stringAll") == "() [A:0 Exception:0]"
    bad = new_bridge('{"A": {"auto": "yes"}}', "{}", page.notify)
    assert isinstance(bad, str) and json.loads(bad)["error"]["type"] == "SchemaError"


def test_handlers_go_through_notify_and_can_cancel() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "bind", "b1", ["AEnter", "AState"])
    page.answers["AEnter"] = False
    assert call(b, "add1", "A", {"x": 1}) == 1
    page.answers["AEnter"] = True
    assert call(b, "add1", "A") == 0
    names = [(kind, id, data["name"]) for kind, id, data in page.calls]
    assert names == [
        ("handler", "b1", "AEnter"),
        ("handler", "b1", "AEnter"),
        ("handler", "b1", "AState"),
    ]
    assert page.calls[0][2]["args"] == {"x": 1}
    call(b, "unbind", "b1")
    assert call(b, "resources") == 0


def test_waiters_report_once_and_dispose_cancels() -> None:
    page = Page()
    b = make({"A": {}, "B": {}}, page)
    call(b, "when1", "A", "w1")
    call(b, "when1", "B", "w2")
    call(b, "add1", "A")
    assert page.calls == [("waiter", "w1", {"cancelled": False})]
    assert call(b, "resources") == 1
    call(b, "dispose")
    assert page.calls[-1] == ("waiter", "w2", {"cancelled": True})
    assert b.resources() == 0


def test_subscribers_see_accepted_transitions_only() -> None:
    page = Page()
    b = make({"A": {}, "B": {"require": ["A"]}}, page)
    call(b, "subscribe", "s1")
    call(b, "add1", "B")  # canceled: not reported
    call(b, "add1", "A")
    call(b, "unsubscribe", "s1")
    call(b, "remove1", "A")
    assert [(kind, data["added"], data["activeStates"]) for kind, _, data in page.calls] == [
        ("subscribe", ["A"], ["A"])
    ]
    assert call(b, "resources") == 0


def test_page_errors_and_exception_args_cross_as_json() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "subscribe", "s1")
    assert call(b, "addErr", "TypeError", "upload failed") == 0
    assert call(b, "err") == {"type": "TypeError", "message": "upload failed"}
    (kind, _, info) = page.calls[-1]
    assert kind == "subscribe" and info["added"] == ["Exception"]
    assert info["args"]["_am__Exception"] == {"type": "TypeError", "message": "upload failed"}


def test_a_handler_that_threw_in_the_page_activates_exception_with_its_js_name() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "bind", "b1", ["AState"])
    page.answers["AState"] = json.dumps({"error": {"type": "RangeError", "message": "too big"}})
    assert call(b, "add1", "A") == 1  # as in Python: a final handler that raises cancels
    assert call(b, "err") == {"type": "RangeError", "message": "too big"}
    assert call(b, "is1", "Exception") is True


def test_async_negotiation_handlers_are_refused_at_bind() -> None:
    page = Page()
    b = make({"A": {}}, page)
    err = error(b, "bind", json.dumps(["b1", ["AEnter", "AState"], ["AEnter"]]))
    assert err["type"] == "HandlerError" and "AEnter is async" in err["message"]
    assert call(b, "resources") == 0
    call(b, "bind", "b2", ["AState"], ["AState"])  # an async final handler is fine


async def test_a_promise_from_a_negotiation_handler_is_an_error_not_a_yes() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "bind", "b1", ["AEnter"])
    page.answers["AEnter"] = asyncio.get_running_loop().create_future()
    page.answers["AEnter"].set_result(None)
    assert call(b, "add1", "A") == 1
    assert call(b, "err")["type"] == "HandlerError"


async def test_an_async_final_handler_that_rejects_activates_exception() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "bind", "b1", ["AState"], ["AState"])
    rejected: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    page.answers["AState"] = rejected
    assert call(b, "add1", "A") == 0
    assert call(b, "is1", "Exception") is False
    exception = b.machine.when1("Exception")  # type: ignore[attr-defined]
    rejected.set_result(json.dumps({"error": {"type": "AbortError", "message": "gone"}}))
    await asyncio.wait_for(exception, 5)
    assert call(b, "err") == {"type": "AbortError", "message": "gone"}


def test_state_signals_abort_inside_the_deactivating_transition() -> None:
    page = Page()
    b = make({"A": {}, "B": {"remove": ["A"]}}, page)
    assert call(b, "stateSignal", "A", None, "g0") is False  # inactive: aborted at once
    call(b, "add1", "A")
    assert call(b, "stateSignal", "A", 0, "g1") is False  # a tick that is over
    assert call(b, "stateSignal", "A", 1, "g2") is True
    assert call(b, "stateSignal", "A", None, "g3") is True
    call(b, "releaseSignal", "g3")
    assert call(b, "resources") == 1
    call(b, "subscribe", "s1")
    call(b, "add1", "B")
    assert [(k, i) for k, i, _ in page.calls] == [("signal", "g2"), ("subscribe", "s1")]
    call(b, "unsubscribe", "s1")
    assert call(b, "resources") == 0


def test_a_waiter_given_up_by_the_page_is_released() -> None:
    page = Page()
    b = make({"A": {}}, page)
    call(b, "when1", "A", "w1")
    assert call(b, "resources") == 1
    assert call(b, "cancelWait", "w1") is True
    assert call(b, "cancelWait", "w1") is False
    assert call(b, "resources") == 0
    call(b, "add1", "A")
    assert page.calls == []


def test_states_without_exception_get_it_last() -> None:
    page = Page()
    b = make({"B": {}, "A": {}}, page, states=["A", "B"])
    assert call(b, "stateNames") == ["A", "B", "Exception"]
    bad = new_bridge('{"A": {}}', json.dumps({"states": ["A", "Nope"]}), page.notify)
    assert isinstance(bad, str) and json.loads(bad)["error"]["type"] == "SchemaError"


def test_explain_add_locally() -> None:
    page = Page()
    b = make({"A": {}, "B": {"require": ["A"]}}, page)
    assert call(b, "explainAdd1", "B") == {
        "result": 1,
        "target": [],
        "added": [],
        "removed": [],
        "canceledBy": None,
        "rejected": [{"state": "B", "reason": "requires A"}],
    }
    assert call(b, "explainAdd", ["A", "B"])["added"] == ["A", "B"]


def test_export_restores_into_the_same_schema_only() -> None:
    page = Page()
    b = make({"A": {}, "B": {}}, page)
    call(b, "add1", "A")
    call(b, "add1", "B")
    snapshot = call(b, "export")
    other = make({"A": {}, "B": {}}, page)
    call(other, "importData", snapshot)
    assert call(other, "clock") == {"A": 1, "B": 1, "Exception": 0}
    foreign = make({"A": {}, "B": {"require": ["A"]}}, page)
    err = error(foreign, "importData", json.dumps([snapshot]))
    assert err["type"] == "SchemaError" and "another schema" in err["message"]
    assert call(foreign, "clock") == {"A": 0, "B": 0, "Exception": 0}
    assert error(foreign, "importData", '["nope"]')["type"] == "BridgeError"
