"""Playwright helpers for pages that run machines through the JS bridge (``asyncmachine.mjs``).

The bridge keeps every live machine of a page in ``globalThis.__asyncmachine__.machines`` by id;
these helpers address machines by that id, from tests written with Playwright's async API::

    from asyncmachine.testing.playwright import add1, expect_state

    async def test_upload(page: Page) -> None:
        await page.goto(url)
        await expect_state(page, "upload", "Ready")
        assert await add1(page, "upload", "Uploading") == am.Executed
        await expect_state(page, "upload", "Done", timeout=10)

Waits poll the page with ``page.wait_for_function`` instead of sleeping (on a timer: animation
frames stop in background tabs). A wait that times out fails with an ``AssertionError`` showing
the machine's ``stringAll()``, so the report says what was active rather than only "timeout".
Reads and waits take ``connection=True`` to look at the connection machine of a remote machine
(``Ready``, ``Disconnected``, ...) instead.

Playwright is imported by the waits, not by this module: importing it needs nothing but
asyncmachine, so it ships in the wheel and loads in Pyodide too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import StateMissingError
from .._result import Result

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = [
    "add1",
    "clock",
    "expect_clock",
    "expect_not_state",
    "expect_state",
    "expect_states",
    "expect_tick",
    "remove1",
    "set",
    "string_all",
    "tick",
    "wait_ready",
]


class _Recording(Protocol):
    async def pull(self, page: Any) -> None: ...


_recording: _Recording | None = None
"""Set by the pytest plugin (``--am-trace``): the page's machines are recorded from the first
helper call on, and what they did is taken after each one."""

DEFAULT_TIMEOUT = 5.0
"""Seconds a wait may take before it fails the test."""
POLL_MS = 10
"""How often waits check the page, in milliseconds."""

# Page functions get one argument `a`: {id, connection, names, ...}; `m` is the machine. Names the
# machine lacks come back as {unknown} and raise StateMissingError here, because is1() and the
# like answer false for an unknown name, which would turn a typo into a timeout.
_FIND = """(a) => {
    const m = globalThis.__asyncmachine__?.machines.get(a.id);
    return (a.connection ? m?.connection : m) ?? null;
}"""

# one-shot calls answer {ok}, {unknown} or, without such a machine, {missing: [live ids]}; a
# remote machine's answer that does not come within a.timeoutMs (say, while the page is
# disconnected) gives {late: <its connection's states>}
_CALL = """async (a) => {
    const m = (%s)(a);
    if (m === null) return {missing: [...(globalThis.__asyncmachine__?.machines.keys() ?? [])]};
    const unknown = a.names.filter((name) => !m.has1(name));
    if (unknown.length) return {unknown};
    const answer = (async () => ({ok: await (%s)}))();
    if (!a.timeoutMs) return answer;
    let timer;
    const late = new Promise((resolve) => {
        const states = () => m.connection?.stringAll() ?? m.stringAll();
        timer = setTimeout(() => resolve({late: states()}), a.timeoutMs);
    });
    try { return await Promise.race([answer, late]); } finally { clearTimeout(timer); }
}"""

# predicates stay false until the machine appears
_PREDICATE = """(a) => {
    const m = (%s)(a);
    if (m === null) return false;
    const unknown = a.names.filter((name) => !m.has1(name));
    return unknown.length ? {unknown} : (%s);
}"""


async def wait_ready(page: Page, machine_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until the page has registered ``machine_id``: the machine was created, or connected."""
    await _wait(page, machine_id, "true", [], {}, timeout, False, "to be in the page")


async def expect_state(
    page: Page,
    machine_id: str,
    state: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connection: bool = False,
) -> None:
    """Wait until ``state`` is active."""
    await _wait(page, machine_id, "m.is1(a.names[0])", [state], {}, timeout, connection, state)


async def expect_not_state(
    page: Page,
    machine_id: str,
    state: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connection: bool = False,
) -> None:
    """Wait until ``state`` is inactive."""
    expected = f"not {state}"
    await _wait(page, machine_id, "m.not1(a.names[0])", [state], {}, timeout, connection, expected)


async def expect_states(
    page: Page,
    machine_id: str,
    states: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connection: bool = False,
) -> None:
    """Wait until all of ``states`` are active at once."""
    names = _names(states)
    await _wait(page, machine_id, "m.is(a.names)", names, {}, timeout, connection, " ".join(names))


async def expect_tick(
    page: Page,
    machine_id: str,
    state: str,
    at_least: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connection: bool = False,
) -> None:
    """Wait until the tick of ``state`` reaches ``at_least``: it was activated or deactivated
    enough times, e.g. by mutations made in another tab."""
    await _wait(
        page,
        machine_id,
        "m.tick(a.names[0]) >= a.atLeast",
        [state],
        {"atLeast": at_least},
        timeout,
        connection,
        f"tick({state}) >= {at_least}",
    )


async def expect_clock(
    page: Page,
    machine_id: str,
    expected: Mapping[str, int],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connection: bool = False,
) -> None:
    """Wait until the ticks of the states in ``expected`` equal it (other states are not compared),
    e.g. until a remote machine's mirror caught up with the server's clock."""
    if not expected:
        raise ValueError("expect_clock needs at least one state's tick")
    await _wait(
        page,
        machine_id,
        "Object.entries(a.expected).every(([name, tick]) => m.tick(name) === tick)",
        list(expected),
        {"expected": dict(expected)},
        timeout,
        connection,
        f"clock {dict(expected)}",
    )


async def clock(
    page: Page,
    machine_id: str,
    states: Sequence[str] | None = None,
    *,
    connection: bool = False,
) -> dict[str, int]:
    """The ticks of ``states`` (all states by default)."""
    if states is None:
        out = await _call(page, machine_id, "m.clock()", [], {}, connection)
    else:
        out = await _call(page, machine_id, "m.clock(a.names)", _names(states), {}, connection)
    return {str(state): int(ticks) for state, ticks in out.items()}


async def tick(page: Page, machine_id: str, state: str, *, connection: bool = False) -> int:
    """The tick of ``state``: odd while active, even while inactive."""
    return int(await _call(page, machine_id, "m.tick(a.names[0])", [state], {}, connection))


async def string_all(page: Page, machine_id: str, *, connection: bool = False) -> str:
    """Every state with its tick, active ones first: ``(Ready:1) [Exception:0 Start:2]``."""
    return str(await _call(page, machine_id, "m.stringAll()", [], {}, connection))


async def add1(
    page: Page,
    machine_id: str,
    state: str,
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Activate ``state``; for a remote machine, the server's result (``TimeoutError`` if it
    does not come within ``timeout`` seconds, e.g. while the page is disconnected)."""
    expression = "m.add1(a.names[0], a.args)"
    return await _mutate(page, machine_id, expression, [state], args, timeout)


async def remove1(
    page: Page,
    machine_id: str,
    state: str,
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Deactivate ``state``; for a remote machine, the server's result (or ``TimeoutError``)."""
    expression = "m.remove1(a.names[0], a.args)"
    return await _mutate(page, machine_id, expression, [state], args, timeout)


async def set(
    page: Page,
    machine_id: str,
    states: Sequence[str],
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Make ``states`` the active ones; for a remote machine, the server's result (or
    ``TimeoutError``)."""
    expression = "m.set(a.names, a.args)"
    return await _mutate(page, machine_id, expression, _names(states), args, timeout)


async def _mutate(
    page: Page,
    machine_id: str,
    expression: str,
    names: list[str],
    args: Mapping[str, Any] | None,
    timeout: float,
) -> Result:
    # awaiting in the page resolves a remote machine's Promise; a local result is a plain number
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    params = {"args": None if args is None else dict(args), "timeoutMs": timeout * 1e3}
    try:
        return Result(int(await _call(page, machine_id, expression, names, params, False)))
    except TimeoutError as late:
        raise TimeoutError(
            f"machine {machine_id!r}: {expression.split('(')[0][2:]}({', '.join(names)}) got no "
            f"answer within {timeout:g} s (a remote machine's server did not answer; its "
            f"connection: {late})"
        ) from None


async def _call(
    page: Page,
    machine_id: str,
    expression: str,
    names: list[str],
    params: dict[str, Any],
    connection: bool,
) -> Any:
    """Evaluate ``expression`` (JS using ``m`` and ``a``) on the machine, in the page."""
    arg = {**params, "id": machine_id, "connection": connection, "names": names}
    out = await page.evaluate(_CALL % (_FIND, expression), arg)
    if _recording is not None:
        await _recording.pull(page)
    if "missing" in out:
        if connection and machine_id in out["missing"]:
            raise LookupError(f"machine {machine_id!r} is local: it has no connection machine")
        live = ", ".join(repr(id) for id in out["missing"]) or "none"
        raise LookupError(f"no machine {machine_id!r} in the page (live machines: {live})")
    if "unknown" in out:
        raise StateMissingError(out["unknown"], machine_id)
    if "late" in out:  # the states of the connection that did not answer in time
        raise TimeoutError(str(out["late"]))
    return out["ok"]


async def _wait(
    page: Page,
    machine_id: str,
    predicate: str,
    names: list[str],
    params: dict[str, Any],
    timeout: float,
    connection: bool,
    expected: str,
) -> None:
    """Poll ``predicate`` (JS using ``m`` and ``a``) until it holds, or fail with the machine's
    states after ``timeout`` seconds."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    arg = {**params, "id": machine_id, "connection": connection, "names": names}
    function = _PREDICATE % (_FIND, predicate)
    try:
        handle = await page.wait_for_function(
            function, arg=arg, polling=POLL_MS, timeout=timeout * 1e3
        )
    except PlaywrightTimeoutError:
        name = f"{machine_id!r} (connection)" if connection else repr(machine_id)
        try:
            now = await string_all(page, machine_id, connection=connection)
        except LookupError as err:
            now = str(err)
        raise AssertionError(
            f"machine {name}: expected {expected} within {timeout:g} s; now {now}"
        ) from None
    outcome = await handle.json_value()
    await handle.dispose()
    if _recording is not None:
        await _recording.pull(page)
    if outcome is not True:
        raise StateMissingError(outcome["unknown"], machine_id)


def _names(states: Sequence[str]) -> list[str]:
    if isinstance(states, str):
        raise TypeError(f"expected a list of state names, got the string {states!r}")
    return list(states)
