"""One table of machine methods (``asyncmachine._bridge.METHODS``) for every place that lists
them: ``Machine``, ``NetMachine``, both halves of the bridge and its type declarations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import asyncmachine as am
from asyncmachine._bridge import METHODS, MUTATIONS, MachineBridge, new_bridge
from asyncmachine.rpc import NetMachine

WEB = Path(__file__).resolve().parents[1] / "web"
PAGE_ONLY = {
    "bind",
    "subscribe",
    "store",
    "stateSignal",
    "onPayload",
    "sync",
    "err",
    "log",
    "resources",
    "dispose",
}
"""Methods of the page's machines that are not machine methods of the table (bindings,
subscriptions, signals, the remote connection, the bridge's own bookkeeping)."""
REMOTE = {"mutation", "dry_run", "explain", "error"}
"""Kinds a ``NetMachine`` implements by asking its server."""


def _class_methods(source: str, header: str) -> set[str]:
    """Method names declared in the class that starts at ``header`` (two-space indented)."""
    body = source[source.index(header) :]
    body = body[: body.index("\n}\n")]
    return set(re.findall(r"^  (?!constructor)([a-z]\w*)\(", body, re.M))


def test_machine_and_net_machine_implement_the_table() -> None:
    for method in METHODS:
        assert callable(getattr(am.Machine, method.py, None)), method.py
        if method.kind in REMOTE:
            assert callable(getattr(NetMachine, method.py, None)), method.py
    assert MUTATIONS == ("add", "add1", "remove", "remove1", "set", "toggle", "toggle1")


def test_js_names_are_the_camel_case_python_names() -> None:
    js = {m.py: m.js for m in METHODS}
    assert js["is_"] == "is" and js["add_err_state"] == "addErrState"
    assert js["when_not1"] == "whenNot1" and js["import_data"] == "importData"
    assert len(set(js.values())) == len(METHODS)


@pytest.mark.parametrize(
    ("file", "header"),
    [
        ("asyncmachine.mjs", "export class AsyncMachine {"),
        ("asyncmachine.d.mts", "export declare class AsyncMachine<"),
    ],
)
def test_the_page_machine_has_exactly_the_table_and_the_page_only_methods(
    file: str, header: str
) -> None:
    declared = _class_methods((WEB / file).read_text(encoding="utf-8"), header)
    table = {m.js for m in METHODS}
    assert declared - table - PAGE_ONLY == set(), f"{file}: not in the table"
    assert table - declared == set(), f"{file}: missing"
    assert PAGE_ONLY - declared == set(), f"{file}: page-only methods missing"


def test_the_python_half_serves_every_local_method() -> None:
    bridge = new_bridge(json.dumps({"A": {}}), "{}", lambda *a: None)
    assert isinstance(bridge, MachineBridge)
    served = set(bridge._methods)
    assert {m.js for m in METHODS} - served == set()
    assert {"err", "log", "bind", "subscribe", "stateSignal", "dispose"} <= served


def test_transition_types_in_the_declarations_are_the_bridges() -> None:
    """``TransitionInfo.type``: a local transition's mutation type, or ``"remote"`` for a change
    a remote machine's mirror received (``_remote.py`` publishes it)."""
    dts = (WEB / "asyncmachine.d.mts").read_text(encoding="utf-8")
    declared = re.search(r"interface TransitionInfo<[^{]*\{\s*type: ([^;]+);", dts)
    assert declared is not None
    kinds = set(re.findall(r'"(\w+)"', declared.group(1)))
    local = {str(t) for t in am.MutationType if t is not am.MutationType.EVAL}
    assert kinds == local | {"remote"}
    remote = Path(am.__file__).parent / "_bridge" / "_remote.py"
    assert '"type": "remote"' in remote.read_text(encoding="utf-8")
