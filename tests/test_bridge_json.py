"""The Python half of the JS bridge, driven the way the page drives it: JSON in, JSON out, one
callback. (The page itself is tested in Chromium, tests/browser.)"""

from __future__ import annotations

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
    assert call(b, "addErr", "upload failed") == 0
    assert call(b, "err") == {"type": "PageError", "message": "upload failed"}
    (kind, _, info) = page.calls[-1]
    assert kind == "subscribe" and info["added"] == ["Exception"]
    assert info["args"]["_am__Exception"] == {"type": "PageError", "message": "upload failed"}
