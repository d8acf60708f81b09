"""The one table of a machine's methods the page can call, from which every bridge is built.

``Machine`` and ``NetMachine`` implement each entry under its Python name; the Python half of the
bridge (local and remote) builds its call table from it; ``web/asyncmachine.mjs`` and its
``.d.mts`` spell the JS names (a test checks all four against this table). Adding a method here is
the first step of exposing it to the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["mutation", "dry_run", "explain", "error", "read", "wait", "snapshot"]
"""``mutation``: changes the clock (remote: answered by the server later); ``dry_run``: what a
mutation would return; ``explain``: an ``Explanation``; ``error``: ``add_err*``; ``read``: a
synchronous read of the (local or mirrored) clock; ``wait``: a ``when*`` waiter; ``snapshot``:
``export``/``import_data`` of a local machine's clock."""


@dataclass(frozen=True)
class Method:
    """One method: its Python and JS names, what it does, and the page's positional params."""

    py: str
    js: str
    kind: Kind
    params: tuple[str, ...]
    """The page's parameters before the optional ``args`` (mutations) or waiter id (waits)."""


def _m(py: str, kind: Kind, *params: str, js: str = "") -> Method:
    head, *rest = py.rstrip("_").split("_")
    return Method(py, js or head + "".join(w.title() for w in rest), kind, params)


METHODS: tuple[Method, ...] = (
    _m("add", "mutation", "states"),
    _m("add1", "mutation", "state"),
    _m("remove", "mutation", "states"),
    _m("remove1", "mutation", "state"),
    _m("set", "mutation", "states"),
    _m("toggle", "mutation", "states"),
    _m("toggle1", "mutation", "state"),
    _m("add_err", "error", "error"),
    _m("add_err_state", "error", "state", "error"),
    _m("can_add", "dry_run", "states"),
    _m("can_add1", "dry_run", "state"),
    _m("can_remove", "dry_run", "states"),
    _m("can_remove1", "dry_run", "state"),
    _m("explain_add", "explain", "states"),
    _m("explain_add1", "explain", "state"),
    _m("is_", "read", "states"),
    _m("is1", "read", "state"),
    _m("not_", "read", "states"),
    _m("not1", "read", "state"),
    _m("any", "read", "*lists"),
    _m("any1", "read", "*states"),
    _m("has", "read", "states"),
    _m("has1", "read", "state"),
    _m("switch", "read", "*groups"),
    _m("index", "read", "states"),
    _m("index1", "read", "state"),
    _m("tick", "read", "state"),
    _m("clock", "read", "states?"),
    _m("time", "read", "states?"),
    _m("is_time", "read", "time", "states?"),
    _m("was_time", "read", "time", "states?"),
    _m("is_clock", "read", "clock"),
    _m("was_clock", "read", "clock"),
    _m("active_states", "read", "states?"),
    _m("state_names", "read"),
    _m("string", "read"),
    _m("string_all", "read"),
    _m("inspect", "read", "states?"),
    _m("queue_tick", "read"),
    _m("is_err", "read"),
    _m("when", "wait", "states"),
    _m("when1", "wait", "state"),
    _m("when_not", "wait", "states"),
    _m("when_not1", "wait", "state"),
    _m("when_ticks", "wait", "state", "n"),
    _m("when_next_active", "wait", "state"),
    _m("when_time", "wait", "states", "times"),
    _m("when_time1", "wait", "state", "tick"),
    _m("when_args", "wait", "state", "args"),
    _m("when_err", "wait"),
    _m("when_queue", "wait", "tick"),
    _m("export", "snapshot"),
    _m("import_data", "snapshot", "data", js="importData"),
)
"""Every machine method the page can call, in the order the ``.mjs`` lists them."""

MUTATIONS: tuple[str, ...] = tuple(m.py for m in METHODS if m.kind == "mutation")
"""The Python names of the mutations proper: ``add``, ``add1``, ... ``toggle1``."""


def of_kind(*kinds: Kind) -> tuple[Method, ...]:
    """The table's entries of these kinds, in table order."""
    return tuple(m for m in METHODS if m.kind in kinds)
