"""The Python half of the JS bridge (``web/asyncmachine.mjs``).

Everything crosses the boundary as JSON text plus one JS callback per machine, so the page holds
just two Pyodide proxies per machine (destroyed on ``dispose()``) and Python holds one JS function
(dropped on ``dispose()``): nothing to leak, and no Pyodide-specific imports here, so the bridge is
tested on CPython with a Python callback in place of the JS one.

``Bridge`` serves reads and waits from any clock (a local machine or a remote mirror);
``MachineBridge`` adds a local machine's mutations, handlers and subscriptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import AsyncMachineError
from ._log import LogLevel
from ._machine import Event, Machine
from ._schema import schema_from_dict
from ._tracer import Tracer
from ._transition import ErrArgs, Transition
from ._view import ClockView
from ._waiter import Waiter

Notify = Callable[[str, str, str], Any]
"""``notify(kind, id, payload_json)``: calls into the page (handlers, waiters, subscribers)."""


class PageError(AsyncMachineError):
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


def error_envelope(err: BaseException) -> str:
    return dumps({"error": {"type": type(err).__name__, "message": str(err)}})


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


class Bridge:
    """Reads and waits of one clock, driven by JSON calls from the page."""

    def __init__(self, view: ClockView, notify: Notify) -> None:
        self.view = view
        self.notify: Notify = notify
        self.subscribers: list[str] = []
        self._waiters: dict[str, Waiter] = {}
        self._methods: dict[str, Callable[..., Any]] = self._reads()

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
            return error_envelope(err)
        return dumps({"ok": result})

    def resources(self) -> int:
        """JS callbacks this bridge still refers to (pending waiters, subscribers, bindings)."""
        return len(self._waiters) + len(self.subscribers)

    def _reads(self) -> dict[str, Callable[..., Any]]:
        v = self.view
        return {
            "id": lambda: v.id,
            "is": lambda states: v.is_(states),
            "is1": lambda state: v.is1(state),
            "not": lambda states: v.not_(states),
            "not1": lambda state: v.not1(state),
            "any": lambda *lists: v.any(*lists),
            "any1": lambda *states: v.any1(*states),
            "has1": lambda state: v.has1(state),
            "tick": lambda state: v.tick(state),
            "clock": lambda states=None: v.clock(states),
            "time": lambda states=None: list(v.time(states)),
            "activeStates": lambda states=None: v.active_states(states),
            "stateNames": v.state_names,
            "string": v.string,
            "stringAll": v.string_all,
            "inspect": lambda states=None: v.inspect(states),
            "queueTick": v.queue_tick,
            "isErr": v.is_err,
            "when": lambda states, wid: self._wait(wid, v.when(states)),
            "when1": lambda state, wid: self._wait(wid, v.when1(state)),
            "whenNot": lambda states, wid: self._wait(wid, v.when_not(states)),
            "whenNot1": lambda state, wid: self._wait(wid, v.when_not1(state)),
            "whenTicks": lambda state, n, wid: self._wait(wid, v.when_ticks(state, n)),
            "whenTime": lambda states, times, wid: self._wait(wid, v.when_time(states, times)),
            "whenTime1": lambda state, tick, wid: self._wait(wid, v.when_time1(state, tick)),
            "whenErr": lambda wid: self._wait(wid, v.when_err()),
            "whenQueue": lambda tick, wid: self._wait(wid, v.when_queue(tick)),
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
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
        self.subscribers.append(str(sub_id))

    def _unsubscribe(self, sub_id: str) -> bool:
        if str(sub_id) not in self.subscribers:
            return False
        self.subscribers.remove(str(sub_id))
        return True

    def publish(self, info: dict[str, Any]) -> None:
        """Send a change to every subscriber, in subscription order."""
        if not self.subscribers:
            return
        v = self.view
        info["activeStates"] = v.active_states()
        info["clock"] = v.clock()
        payload = dumps(info)
        for sub_id in list(self.subscribers):
            self.notify("subscribe", sub_id, payload)

    def _dispose(self) -> None:
        """Pending waiters end cancelled (the subclass disposes the clock), then forget the page."""
        self._waiters.clear()
        self.subscribers.clear()
        self.notify = _disposed_notify


class _Publisher(Tracer):
    """Publishes a local machine's accepted transitions to the bridge's subscribers."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def transition_end(self, tx: Transition) -> None:
        if tx.is_accepted and not tx.mutation.is_check:
            self.bridge.publish(transition_info(tx))


class MachineBridge(Bridge):
    """A local machine: reads, waits, subscriptions and, when ``writable``, mutations and JS
    handlers."""

    def __init__(self, machine: Machine, notify: Notify, writable: bool = True) -> None:
        super().__init__(machine, notify)
        self.machine = machine
        self._publisher = _Publisher(self)
        self._owned = writable
        if not writable:
            return
        m = machine
        self._methods.update(
            {
                "add": lambda states, args=None: int(m.add(states, page_args(args))),
                "add1": lambda state, args=None: int(m.add1(state, page_args(args))),
                "remove": lambda states, args=None: int(m.remove(states, page_args(args))),
                "remove1": lambda state, args=None: int(m.remove1(state, page_args(args))),
                "set": lambda states, args=None: int(m.set(states, page_args(args))),
                "toggle": lambda states, args=None: int(m.toggle(states, page_args(args))),
                "toggle1": lambda state, args=None: int(m.toggle1(state, page_args(args))),
                "addErr": lambda msg, args=None: int(m.add_err(PageError(msg), page_args(args))),
                "addErrState": lambda state, msg, args=None: int(
                    m.add_err_state(state, PageError(msg), page_args(args))
                ),
                "canAdd": lambda states, args=None: int(m.can_add(states, page_args(args))),
                "canAdd1": lambda state, args=None: int(m.can_add1(state, page_args(args))),
                "canRemove": lambda states, args=None: int(m.can_remove(states, page_args(args))),
                "canRemove1": lambda state, args=None: int(m.can_remove1(state, page_args(args))),
                "err": lambda: None if m.err() is None else _jsonable(m.err()),
                "log": m.log,
                "whenArgs": lambda state, args, wid: self._wait(wid, m.when_args(state, args)),
                "record": self._record,
                "bind": self._bind,
                "unbind": self._unbind,
            }
        )

    @classmethod
    def from_json(cls, schema_json: str, opts_json: str, notify: Notify) -> MachineBridge:
        """A new machine from the page's JSON schema and options."""
        opts = json.loads(opts_json) if opts_json else {}
        if not isinstance(opts, dict):
            raise BridgeError("options must be an object")
        page: list[Notify] = [notify]
        debug_url = _debug_url(opts.get("debug"))

        def logger(level: LogLevel, msg: str) -> None:
            page[0]("log", str(int(level)), dumps(msg))

        machine = Machine(
            schema_from_dict(json.loads(schema_json)),
            id=opts.get("id"),
            log_level=LogLevel(int(opts.get("logLevel", 0))),
            logger=logger if opts.get("log") else None,
            handler_timeout=opts.get("handlerTimeout"),
        )
        if opts.get("states"):
            machine.verify_states(opts["states"])
        tab_id = opts.get("tabId") if isinstance(opts.get("tabId"), str) else None
        if debug_url == "record":
            from .telemetry._recording import page_recorder

            page_recorder(tab_id).record(machine)
        elif debug_url:
            from .telemetry import debug

            debug(machine, debug_url, tab_id=tab_id)
        bridge = cls(machine, notify)
        page[0] = lambda *a: bridge.notify(*a)  # follows the bridge (silenced on dispose)
        return bridge

    def resources(self) -> int:
        return super().resources() + len(self.machine.handlers())

    def _subscribe(self, sub_id: str) -> None:
        if not self.subscribers:
            self.machine.bind_tracer(self._publisher)
        super()._subscribe(sub_id)

    def _unsubscribe(self, sub_id: str) -> bool:
        removed = super()._unsubscribe(sub_id)
        if removed and not self.subscribers:
            self.machine.detach_tracer(self._publisher)
        return removed

    def _bind(self, binding_id: str, names: Sequence[str]) -> str:
        """Bind the page's handlers by name; each call goes through ``notify("handler", ...)``."""
        binding_id = str(binding_id)
        if binding_id in self.machine.handlers():
            raise BridgeError(f"binding {binding_id} already exists")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BridgeError("handler names must be a list of strings")
        handlers = {name: self._handler(binding_id) for name in names}
        return self.machine.bind_handlers(handlers, id=binding_id)

    def _handler(self, binding_id: str) -> Callable[[Event], Any]:
        def handler(e: Event) -> Any:
            info = transition_info(e.transition)
            info["name"] = e.name
            return self.notify("handler", binding_id, dumps(info))

        return handler

    def _record(self, tab_id: str | None = None) -> None:
        """Record this machine in the page (``recording_lines()`` takes what happened)."""
        from .telemetry._recording import page_recorder

        page_recorder(tab_id).record(self.machine)

    def _unbind(self, binding_id: str) -> None:
        self.machine.detach_handlers(str(binding_id))

    def _dispose(self) -> None:
        if self._owned:
            self.machine.dispose()
        elif self.subscribers:
            self.machine.detach_tracer(self._publisher)
        super()._dispose()


def new_bridge(schema_json: str, opts_json: str, notify: Notify) -> MachineBridge | str:
    """A local machine's bridge, or the JSON error envelope when the schema or options are bad."""
    try:
        return MachineBridge.from_json(schema_json, opts_json, notify)
    except Exception as err:
        return error_envelope(err)


def recording_lines(greeting: bool = False) -> str:
    """What the page's recorded machines did since the last call, as JSON lines (for test
    tools); ``greeting`` first repeats every machine's schema with its clock as of then."""
    from .telemetry._recording import page_recorder

    lines = page_recorder().lines(greeting=greeting)
    _page_session().receive(_PAGE_CONN[0], "\n".join(lines))
    return "\n".join(lines)


def session_lines() -> str:
    """Everything the page's recorded machines did, as a session file's lines (what the
    inspector opens), resolution steps included."""
    from .telemetry._recording import page_recorder

    session = _page_session()
    session.receive(_PAGE_CONN[0], "\n".join(page_recorder().lines(greeting=False)))
    return "\n".join(session.lines())


_PAGE_SESSION: list[Any] = []
_PAGE_CONN: list[Any] = []


def _page_session() -> Any:
    """The page's own am-dbg session store, fed from its recorder."""
    if not _PAGE_SESSION:
        from .debugger import Session

        session = Session()
        _PAGE_SESSION.append(session)
        _PAGE_CONN.append(session.connect("page"))
    return _PAGE_SESSION[0]


def page_args(args: Any) -> dict[str, Any] | None:
    """Mutation args from the page: an object, or nothing."""
    if args is None:
        return None
    if not isinstance(args, dict):
        raise BridgeError("args must be an object")
    return args


def _disposed_notify(kind: str, id: str, payload: str) -> None:
    return None


def _debug_url(where: object) -> str:
    """The ``debug`` option, checked before the machine exists: an am-dbg URL, ``true`` for the
    default address, ``"record"`` (kept in the page for test tools), or nothing."""
    if where is None or where is False:
        return ""
    if where is True:
        where = "1"
    if not isinstance(where, str):
        raise BridgeError('debug must be an am-dbg URL (ws://HOST:PORT/dbg), true or "record"')
    if where == "record":
        return where
    from .telemetry._debug_stream import dbg_url

    return dbg_url(where)
