"""The Python half of the JS bridge (``web/asyncmachine.mjs``).

Everything crosses the boundary as JSON text plus one JS callback per machine, so the page holds
just two Pyodide proxies per machine (destroyed on ``dispose()``) and Python holds one JS function
(dropped on ``dispose()``): nothing to leak, and no Pyodide-specific imports here, so the bridge is
tested on CPython with a Python callback in place of the JS one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import AsyncMachineError
from ._log import LogLevel
from ._machine import Machine
from ._schema import schema_from_dict
from ._tracer import Tracer
from ._transition import ErrArgs, Event, Transition
from ._waiter import Waiter

Notify = Callable[[str, str, str], Any]
"""``notify(kind, id, payload_json)``: calls into the page (handlers, waiters, subscribers)."""


class PageError(Exception):
    """An error reported by the page through ``addErr()``."""


class BridgeError(AsyncMachineError):
    """A malformed call from the page (unknown method, wrong parameters)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, ErrArgs):
        return {"type": type(value.err).__name__, "message": str(value.err)}
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def transition_info(tx: Transition) -> dict[str, Any]:
    """What the page sees of a transition."""
    return {
        "type": str(tx.mutation.type),
        "calledStates": tx.called_states,
        "targetStates": tx.target_states,
        "statesBefore": tx.states_before,
        "added": tx.enters,
        "removed": tx.exits,
        "isAuto": tx.is_auto,
        "args": tx.mutation.args,
    }


class _Subscribers(Tracer):
    """Reports every accepted transition to the page's ``subscribe()`` callbacks, in order."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.ids: list[str] = []

    def transition_end(self, tx: Transition) -> None:
        if not tx.is_accepted or tx.mutation.is_check:
            return
        mach = self.bridge.machine
        info = transition_info(tx)
        info["activeStates"] = mach.active_states()
        info["clock"] = mach.clock()
        payload = dumps(info)
        for sub_id in list(self.ids):
            self.bridge.notify("subscribe", sub_id, payload)


class Bridge:
    """One machine, driven by JSON calls from the page."""

    def __init__(self, schema_json: str, opts_json: str, notify: Notify) -> None:
        opts = json.loads(opts_json) if opts_json else {}
        schema = schema_from_dict(json.loads(schema_json))
        self.notify: Notify = notify
        logger = None
        if opts.get("log"):

            def logger(level: LogLevel, msg: str) -> None:
                notify("log", str(int(level)), dumps(msg))

        self.machine = Machine(
            schema,
            id=opts.get("id"),
            log_level=LogLevel(int(opts.get("logLevel", 0))),
            logger=logger,
            handler_timeout=opts.get("handlerTimeout"),
        )
        if opts.get("states"):
            self.machine.verify_states(opts["states"])
        self._subscribers = _Subscribers(self)
        self._waiters: dict[str, Waiter] = {}
        self._methods: dict[str, Callable[..., Any]] = self._table()

    # -------------------------------------------------------------- the page's entry point

    def call(self, method: str, params_json: str) -> str:
        """Run ``method`` with JSON params; answer ``{"ok": value}`` or ``{"error": {...}}``."""
        try:
            fn = self._methods.get(method)
            if fn is None:
                raise BridgeError(f"unknown method {method!r}")
            params = json.loads(params_json) if params_json else []
            if not isinstance(params, list):
                raise BridgeError("params must be a JSON array")
            result = fn(*params)
        except Exception as err:
            return dumps({"error": {"type": type(err).__name__, "message": str(err)}})
        return dumps({"ok": result})

    def resources(self) -> int:
        """JS callbacks this bridge still refers to (pending waiters, subscribers, bindings)."""
        return len(self._waiters) + len(self._subscribers.ids) + len(self.machine.handlers())

    # -------------------------------------------------------------- methods

    def _table(self) -> dict[str, Callable[..., Any]]:
        m = self.machine
        return {
            "id": lambda: m.id,
            "add": lambda states, args=None: int(m.add(states, _args(args))),
            "add1": lambda state, args=None: int(m.add1(state, _args(args))),
            "remove": lambda states, args=None: int(m.remove(states, _args(args))),
            "remove1": lambda state, args=None: int(m.remove1(state, _args(args))),
            "set": lambda states, args=None: int(m.set(states, _args(args))),
            "toggle": lambda states, args=None: int(m.toggle(states, _args(args))),
            "toggle1": lambda state, args=None: int(m.toggle1(state, _args(args))),
            "addErr": lambda message, args=None: int(m.add_err(PageError(message), _args(args))),
            "addErrState": lambda state, message, args=None: int(
                m.add_err_state(state, PageError(message), _args(args))
            ),
            "canAdd": lambda states, args=None: int(m.can_add(states, _args(args))),
            "canAdd1": lambda state, args=None: int(m.can_add1(state, _args(args))),
            "canRemove": lambda states, args=None: int(m.can_remove(states, _args(args))),
            "canRemove1": lambda state, args=None: int(m.can_remove1(state, _args(args))),
            "is": lambda states: m.is_(states),
            "is1": lambda state: m.is1(state),
            "not": lambda states: m.not_(states),
            "not1": lambda state: m.not1(state),
            "any": lambda *lists: m.any(*lists),
            "any1": lambda *states: m.any1(*states),
            "has1": lambda state: m.has1(state),
            "tick": lambda state: m.tick(state),
            "clock": lambda states=None: m.clock(states),
            "time": lambda states=None: list(m.time(states)),
            "activeStates": lambda states=None: m.active_states(states),
            "stateNames": m.state_names,
            "string": m.string,
            "stringAll": m.string_all,
            "inspect": lambda states=None: m.inspect(states),
            "queueTick": m.queue_tick,
            "isErr": m.is_err,
            "err": lambda: None if m.err() is None else _jsonable(m.err()),
            "isDisposed": lambda: m.is_disposed,
            "log": m.log,
            "when": lambda states, wid: self._wait(wid, m.when(states)),
            "when1": lambda state, wid: self._wait(wid, m.when1(state)),
            "whenNot": lambda states, wid: self._wait(wid, m.when_not(states)),
            "whenNot1": lambda state, wid: self._wait(wid, m.when_not1(state)),
            "whenTicks": lambda state, n, wid: self._wait(wid, m.when_ticks(state, n)),
            "whenTime": lambda states, times, wid: self._wait(wid, m.when_time(states, times)),
            "whenTime1": lambda state, tick, wid: self._wait(wid, m.when_time1(state, tick)),
            "whenArgs": lambda state, args, wid: self._wait(wid, m.when_args(state, args)),
            "whenErr": lambda wid: self._wait(wid, m.when_err()),
            "whenQueue": lambda tick, wid: self._wait(wid, m.when_queue(tick)),
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "bind": self._bind,
            "unbind": self._unbind,
            "resources": self.resources,
            "dispose": self._dispose,
        }

    def _wait(self, waiter_id: str, waiter: Waiter) -> None:
        """Report the waiter's end to the page (at once if it already ended)."""
        waiter_id = str(waiter_id)
        if waiter_id in self._waiters:
            raise BridgeError(f"waiter {waiter_id} already exists")
        self._waiters[waiter_id] = waiter

        def done(w: Waiter) -> None:
            if self._waiters.pop(waiter_id, None) is not None:
                self.notify("waiter", waiter_id, dumps({"cancelled": w.cancelled()}))

        waiter.add_done_callback(done)

    def _subscribe(self, sub_id: str) -> None:
        subs = self._subscribers
        if not subs.ids:
            self.machine.bind_tracer(subs)
        subs.ids.append(str(sub_id))

    def _unsubscribe(self, sub_id: str) -> bool:
        subs = self._subscribers
        if str(sub_id) not in subs.ids:
            return False
        subs.ids.remove(str(sub_id))
        if not subs.ids:
            self.machine.detach_tracer(subs)
        return True

    def _bind(self, binding_id: str, names: Sequence[str]) -> str:
        """Bind the page's handlers by name; each call goes through ``notify("handler", ...)``."""
        binding_id = str(binding_id)
        if binding_id in self.machine.handlers():
            raise BridgeError(f"binding {binding_id} already exists")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BridgeError("handler names must be a list of strings")
        handlers = {name: self._handler(binding_id, name) for name in names}
        return self.machine.bind_handlers(handlers, id=binding_id)

    def _handler(self, binding_id: str, name: str) -> Callable[[Event], Any]:
        notify = self.notify

        def handler(e: Event) -> Any:
            info = transition_info(e.transition)
            info["name"] = e.name
            return notify("handler", binding_id, dumps(info))

        return handler

    def _unbind(self, binding_id: str) -> None:
        self.machine.detach_handlers(str(binding_id))

    def _dispose(self) -> None:
        """Dispose the machine (pending waiters end cancelled), then forget the page."""
        self.machine.dispose()
        self._waiters.clear()
        self._subscribers.ids.clear()
        self.notify = _disposed_notify


def new_bridge(schema_json: str, opts_json: str, notify: Notify) -> Bridge | str:
    """A bridge, or the JSON error envelope when the schema or options are invalid."""
    try:
        return Bridge(schema_json, opts_json, notify)
    except Exception as err:
        return dumps({"error": {"type": type(err).__name__, "message": str(err)}})


def _args(args: Any) -> dict[str, Any] | None:
    if args is None:
        return None
    if not isinstance(args, dict):
        raise BridgeError("args must be an object")
    return args


def _disposed_notify(kind: str, id: str, payload: str) -> None:
    return None
