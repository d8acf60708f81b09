"""The Python half of the JS bridge for local machines (``am.machine(schema)`` in the page).

Everything crosses the boundary as JSON text plus one JS callback per machine, so the page holds
just two Pyodide proxies per machine (destroyed on ``dispose()``) and Python holds one JS function
(dropped on ``dispose()``): nothing to leak, and no Pyodide-specific imports here, so the bridge is
tested on CPython with a Python callback in place of the JS one.

``Bridge`` serves reads and waits from any clock (a local machine or a remote mirror);
``MachineBridge`` adds a local machine's mutations, handlers, signals and subscriptions. Both
build their call tables from :data:`METHODS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .._ctx import Ctx
from .._errors import AsyncMachineError, HandlerError, SchemaError
from .._handlers import is_final
from .._log import LogLevel
from .._machine import Event, Machine
from .._schema import EXCEPTION, State, schema_from_dict, schema_to_dict
from .._tracer import Tracer
from .._transition import ErrArgs, Explanation, Transition
from .._view import ClockView
from .._waiter import Waiter
from ._methods import Method, of_kind

Notify = Callable[[str, str, str], Any]
"""``notify(kind, id, payload_json)``: calls into the page (handlers, waiters, subscribers)."""


class JsError(AsyncMachineError):
    """An error from the page (``addErr()``, a handler that threw or whose Promise rejected):
    only its JS ``name`` (``type_name``, what ``m.err().type`` shows) and message cross over."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"JsError({self.type_name}: {self}))"


class BridgeError(AsyncMachineError):
    """A malformed call from the page (unknown method, wrong parameters)."""


def err_info(err: BaseException) -> dict[str, str]:
    """An error as the page reads it: its type name (the JS name for page errors) and message."""
    return {"type": str(getattr(err, "type_name", type(err).__name__)), "message": str(err)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, ErrArgs):
        return err_info(value.err)
    if isinstance(value, BaseException):
        return err_info(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def error_envelope(err: BaseException) -> str:
    return dumps({"error": err_info(err)})


def explanation(x: Explanation) -> dict[str, Any]:
    """An ``am.Explanation`` as the page reads it (camelCase)."""
    return {
        "result": int(x.result),
        "target": list(x.target),
        "added": list(x.added),
        "removed": list(x.removed),
        "canceledBy": x.canceled_by,
        "rejected": [{"state": state, "reason": reason} for state, reason in x.rejected],
    }


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


def _read(view: ClockView, method: Method) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(view, method.py)
    if method.py == "time":
        return lambda states=None: list(fn(states))
    return fn


class Bridge:
    """Reads and waits of one clock, driven by JSON calls from the page."""

    def __init__(self, view: ClockView, notify: Notify) -> None:
        self.view = view
        self.notify: Notify = notify
        self.subscribers: list[str] = []
        self._waiters: dict[str, Waiter] = {}
        self._methods: dict[str, Callable[..., Any]] = {
            "id": lambda: view.id,
            "cancelWait": self._cancel_wait,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "resources": self.resources,
            "dispose": self._dispose,
        }
        for m in of_kind("read", "wait"):
            if hasattr(view, m.py):
                self._methods[m.js] = _read(view, m) if m.kind == "read" else self._waits(m)

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

    def _waits(self, method: Method) -> Callable[..., None]:
        """A page wait ``(params..., waiter_id)``."""
        when: Callable[..., Waiter] = getattr(self.view, method.py)

        def wait(*params: Any) -> None:
            *given, wid = params
            self._wait(wid, when(*given))

        return wait

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

    def _cancel_wait(self, waiter_id: str) -> bool:
        """The page gave up on a waiter (timeout, abort): forget it without telling the page."""
        waiter = self._waiters.pop(str(waiter_id), None)
        if waiter is None:
            return False
        waiter._cancel()  # unlinks it from the clock's subscriptions
        return True

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
    """A local machine: reads, waits, subscriptions and, when ``writable``, mutations, JS
    handlers and state signals."""

    def __init__(self, machine: Machine, notify: Notify, writable: bool = True) -> None:
        super().__init__(machine, notify)
        self.machine = machine
        self._publisher = _Publisher(self)
        self._owned = writable
        self._signals: dict[str, tuple[Ctx, Callable[[Ctx], None]]] = {}
        if not writable:
            return
        m = machine
        for method in of_kind("mutation", "dry_run", "explain"):
            self._methods[method.js] = _local_call(m, method)
        self._methods.update(
            {
                "addErr": lambda name, msg, args=None: int(
                    m.add_err(JsError(str(name), str(msg)), page_args(args))
                ),
                "addErrState": lambda state, name, msg, args=None: int(
                    m.add_err_state(state, JsError(str(name), str(msg)), page_args(args))
                ),
                "err": self._err,
                "export": self._export,
                "importData": self._import_data,
                "log": m.log,
                "stateSignal": self._state_signal,
                "releaseSignal": self._release_signal,
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
            machine.verify_states(_with_exception(opts["states"]))
        tab_id = opts.get("tabId") if isinstance(opts.get("tabId"), str) else None
        if debug_url == "record":
            from ..telemetry._recording import page_recorder

            page_recorder(tab_id).record(machine)
        elif debug_url:
            from ..telemetry import debug

            debug(machine, debug_url, tab_id=tab_id)
        bridge = cls(machine, notify)
        page[0] = lambda *a: bridge.notify(*a)  # follows the bridge (silenced on dispose)
        return bridge

    def resources(self) -> int:
        return super().resources() + len(self.machine.handlers()) + len(self._signals)

    def _subscribe(self, sub_id: str) -> None:
        if not self.subscribers:
            self.machine.bind_tracer(self._publisher)
        super()._subscribe(sub_id)

    def _unsubscribe(self, sub_id: str) -> bool:
        removed = super()._unsubscribe(sub_id)
        if removed and not self.subscribers:
            self.machine.detach_tracer(self._publisher)
        return removed

    def _err(self) -> dict[str, str] | None:
        err = self.machine.err()
        return None if err is None else err_info(err)

    def _export(self) -> dict[str, Any]:
        """The clock as plain data, with the hash of the schema it belongs to."""
        return {**self.machine.export(), "schema_hash": schema_hash(self.machine.schema)}

    def _import_data(self, data: Any, check_id: bool = False) -> None:
        """Restore an ``export()``; a snapshot of another schema is refused, changing nothing.
        Ids are not compared unless asked: page machines get a new id on every load."""
        if not isinstance(data, dict):
            raise BridgeError("importData needs an object made by export()")
        theirs, ours = data.get("schema_hash"), schema_hash(self.machine.schema)
        if theirs != ours:
            raise SchemaError(
                f"the snapshot belongs to another schema (hash {theirs!r}, this machine's is "
                f"{ours!r})"
            )
        self.machine.import_data(data, check_id=bool(check_id))

    def _state_signal(self, state: str, tick: int | None, signal_id: str) -> bool:
        """Abort the page's signal ``signal_id`` when ``state`` deactivates, inside that
        transition. False (abort now) if it is inactive, or ``tick`` is not its current tick."""
        m = self.machine
        if not m.is1(state) or (tick is not None and m.tick(state) != tick):
            return False
        signal_id = str(signal_id)
        if signal_id in self._signals:
            raise BridgeError(f"signal {signal_id} already exists")
        ctx = m.new_state_ctx(state)

        def aborted(_ctx: Ctx) -> None:
            if self._signals.pop(signal_id, None) is not None:
                self.notify("signal", signal_id, "null")

        ctx.add_done_callback(aborted)
        self._signals[signal_id] = (ctx, aborted)
        return True

    def _release_signal(self, signal_id: str) -> None:
        """The page no longer needs ``signal_id`` (its listeners are gone)."""
        entry = self._signals.pop(str(signal_id), None)
        if entry is not None:
            entry[0].remove_done_callback(entry[1])

    def _bind(
        self, binding_id: str, names: Sequence[str], async_names: Sequence[str] | None = None
    ) -> str:
        """Bind the page's handlers by name; each call goes through ``notify("handler", ...)``.
        ``async_names`` are ``async`` functions: allowed for final handlers only, like in Python."""
        binding_id = str(binding_id)
        if binding_id in self.machine.handlers():
            raise BridgeError(f"binding {binding_id} already exists")
        async_names = [] if async_names is None else async_names
        for given in (names, async_names):
            if not isinstance(given, list) or not all(isinstance(n, str) for n in given):
                raise BridgeError("handler names must be a list of strings")
        for name in async_names:
            if not is_final(name):
                raise HandlerError(
                    f"negotiation handler {name} is async; negotiation must decide synchronously "
                    "(start async work from a final handler: *State or *End)"
                )
        handlers = {name: self._handler(binding_id, name) for name in names}
        return self.machine.bind_handlers(handlers, id=binding_id)

    def _handler(self, binding_id: str, name: str) -> Callable[[Event], Any]:
        """A Python handler calling the page's. The page answers its handler's return value, an
        error envelope (it threw) or a Promise of ``null`` or an envelope (an async handler)."""
        final = is_final(name)
        m = self.machine
        # FooState's e.signal follows Foo (bind_handlers refuses names of missing states)
        state = name[: -len("State")] if name.endswith("State") else ""
        state = state if state and m.has1(state) else ""

        def handler(e: Event) -> Any:
            info = transition_info(e.transition)
            info["name"] = e.name
            if state:
                info["signal"] = {"state": state, "tick": m.tick(state)}
            ret = self.notify("handler", binding_id, dumps(info))
            if isinstance(ret, str):
                raise _page_error(ret)
            if ret is None or isinstance(ret, bool):
                return ret
            if not final:
                raise HandlerError(
                    f"negotiation handler {name} returned a Promise; negotiation must decide "
                    "synchronously (return true or false)"
                )
            ctx = m.new_state_ctx(state) if state else Ctx.background()
            m.fork(ctx, _settled(ret))
            return None

        return handler

    def _record(self, tab_id: str | None = None) -> None:
        """Record this machine in the page (``recording_lines()`` takes what happened)."""
        from ..telemetry._recording import page_recorder

        page_recorder(tab_id).record(self.machine)

    def _unbind(self, binding_id: str) -> None:
        self.machine.detach_handlers(str(binding_id))

    def _dispose(self) -> None:
        self._signals.clear()
        if self._owned:
            self.machine.dispose()
        elif self.subscribers:
            self.machine.detach_tracer(self._publisher)
        super()._dispose()


def schema_hash(schema: Mapping[str, State]) -> str:
    """A short hash of a schema's JSON form: snapshots carry it so they restore into the same
    schema only."""
    text = json.dumps(schema_to_dict(schema), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _local_call(m: Machine, method: Method) -> Callable[..., Any]:
    """A local mutation, dry run or explanation: ``(first, args=None)``, answered at once."""
    fn: Callable[..., Any] = getattr(m, method.py)
    if method.kind == "explain":
        return lambda first, args=None: explanation(fn(first, page_args(args)))
    return lambda first, args=None: int(fn(first, page_args(args)))


async def _settled(promise: Awaitable[Any]) -> None:
    """Wait for an async page handler; its rejection (an error envelope) raises here, so the
    machine's task runner activates ``Exception`` with it."""
    out = await promise
    if isinstance(out, str):
        raise _page_error(out)


def _page_error(envelope: str) -> JsError:
    """The error of a page handler, from its ``{"error": {"type", "message"}}`` envelope."""
    try:
        error = json.loads(envelope)["error"]
        return JsError(str(error["type"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return JsError("Error", envelope)


def _with_exception(names: Any) -> list[str]:
    """The page's ``states`` order: ``Exception`` is always a state, so a list without it gets it
    last (XState users list only their own states)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BridgeError("states must be a list of state names")
    return names if EXCEPTION in names else [*names, EXCEPTION]


def new_bridge(schema_json: str, opts_json: str, notify: Notify) -> MachineBridge | str:
    """A local machine's bridge, or the JSON error envelope when the schema or options are bad."""
    try:
        return MachineBridge.from_json(schema_json, opts_json, notify)
    except Exception as err:
        return error_envelope(err)


def recording_lines(greeting: bool = False) -> str:
    """What the page's recorded machines did since the last call, as JSON lines (for test
    tools); ``greeting`` first repeats every machine's schema with its clock as of then."""
    from ..telemetry._recording import page_recorder

    lines = page_recorder().lines(greeting=greeting)
    _page_session().receive(_PAGE_CONN[0], "\n".join(lines))
    return "\n".join(lines)


def session_lines() -> str:
    """Everything the page's recorded machines did, as a session file's lines (what the
    inspector opens), resolution steps included."""
    from ..telemetry._recording import page_recorder

    session = _page_session()
    session.receive(_PAGE_CONN[0], "\n".join(page_recorder().lines(greeting=False)))
    return "\n".join(session.lines())


_PAGE_SESSION: list[Any] = []
_PAGE_CONN: list[Any] = []


def _page_session() -> Any:
    """The page's own am-dbg session store, fed from its recorder."""
    if not _PAGE_SESSION:
        from ..debugger import Session

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
    from ..telemetry._debug_stream import dbg_url

    return dbg_url(where)
