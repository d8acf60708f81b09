"""The protocol core without I/O: server and client sessions driven in memory (``loopback.py``)
with a clock the test moves. Runs in CPython and in Pyodide alike."""

from __future__ import annotations

import json
import math

import pytest
from loopback import Loopback

import asyncmachine as am
from asyncmachine import rpc
from asyncmachine._transition import MutationSource
from asyncmachine.rpc import _protocol as p
from asyncmachine.rpc._server_session import ServerSession

SCHEMA: am.Schema = {
    "A": am.State(remove=("Prot",)),
    "B": am.State(add=("C",)),
    "C": am.State(),
    "D": am.State(require=("E",)),
    "E": am.State(),
    "Prot": am.State(),
    "Multi": am.State(multi=True),
}
"""``A`` deactivates ``Prot``, ``B`` activates ``C``, ``D`` needs ``E``: a policy of ``{A, B}``
must still refuse ``add1("A")`` while ``Prot`` is active, and ``add1("B")``."""


def machine(mach_id: str = "m") -> am.Machine:
    return am.Machine(SCHEMA, id=mach_id)


def mut(op: str, states: list[str], rid: int = 1) -> dict[str, object]:
    return {"t": "mut", "id": rid, "m": "m", "op": op, "states": states}


def kinds(messages: list[dict[str, object]]) -> list[object]:
    return [m["t"] for m in messages]


class Recorder:
    """Handlers that note which ran (a forbidden mutation must run none)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def AEnter(self, e: am.Event) -> None:
        self.ran.append("AEnter")

    def BEnter(self, e: am.Event) -> None:
        self.ran.append("BEnter")

    def ProtExit(self, e: am.Event) -> None:
        self.ran.append("ProtExit")

    def AnyEnter(self, e: am.Event) -> None:
        self.ran.append("AnyEnter")


# ------------------------------------------------------------------------------------ handshake


def test_hello_waits_for_auth_then_welcome_announces_limits() -> None:
    loop = Loopback(machine(), heartbeat=2.0, max_frame=4096)
    session = ServerSession(loop.hub, "here", "https://app", 0.0)
    woke: list[int] = []
    session.wake = lambda: woke.append(1)
    session.receive(json.dumps({"t": "hello", "v": p.VERSION, "cid": "me", "token": "t"}), 0.0)
    assert woke and session.pending_auth is not None
    token, info = session.pending_auth
    assert (token, info.client_id, info.origin, info.remote) == ("t", "me", "https://app", "here")
    assert session.data_to_send() == []
    session.authenticated(rpc.Principal("p"), 0.0)
    [welcome] = [p.loads(f) for f in session.data_to_send()]
    assert welcome["t"] == "welcome" and welcome["v"] == p.VERSION
    assert (welcome["hb_ms"], welcome["max_frame"], welcome["machines"]) == (2000, 4096, ["m"])
    assert loop.hub.mach.is1("ClientConnected")
    assert loop.hub.mach.tick("ClientConnected") == 1


def test_frames_sent_while_authenticating_wait_for_the_answer() -> None:
    loop = Loopback(machine())
    session = ServerSession(loop.hub, "here", None, 0.0)
    session.receive(json.dumps({"t": "hello", "v": p.VERSION}), 0.0)
    session.receive(json.dumps({"t": "ping", "ts": 5}), 0.0)
    assert session.data_to_send() == []
    session.authenticated(rpc.Principal("p"), 0.0)
    assert kinds([p.loads(f) for f in session.data_to_send()]) == ["welcome", "pong"]


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ({"t": "hello", "v": 1}, "version"),
        ({"t": "hello", "v": "2"}, "version"),
        ({"t": "hello", "v": p.VERSION, "max_frame": 10}, "bad_message"),
        ({"t": "sub", "id": 1, "m": "m"}, "bad_message"),
    ],
)
def test_a_bad_hello_is_refused_with_4000(hello: dict[str, object], code: str) -> None:
    loop = Loopback(machine())
    session = ServerSession(loop.hub, "here", None, 0.0)
    session.receive(json.dumps(hello), 0.0)
    [err] = [p.loads(f) for f in session.data_to_send()]
    assert (err["t"], err["code"]) == ("err", code)
    assert session.close_request is not None and session.close_request.code == 4000
    assert session.pending_auth is None


def test_no_hello_in_time() -> None:
    loop = Loopback(machine(), handshake_timeout=3.0)
    session = ServerSession(loop.hub, "here", None, 0.0)
    assert session.next_deadline() == 3.0
    session.timer(2.9)
    assert session.close_request is None
    session.timer(3.0)
    assert session.close_request is not None and session.close_request.code == 4000


# ------------------------------------------------------------------------------------ mirrors


def test_a_mirror_follows_snapshots_results_and_diffs() -> None:
    mach = machine()
    loop = Loopback(mach)
    client, server, net = loop.mirrored(mach)
    assert net.state_names() == mach.state_names() and net.time() == mach.time()

    mach.add1("B")  # the server's own change: a diff on the next flush
    loop.pump(client, server)
    assert net.is_(["B", "C"]) and net.time() == mach.time()


def test_a_result_carries_its_diff_and_others_hear_on_the_next_flush() -> None:
    mach = machine()
    loop = Loopback(mach)
    alice, bob = loop.server(), loop.server()
    for session in (alice, bob):
        assert kinds(loop.send(session, {"t": "sub", "id": 1, "m": "m"})) == ["snap"]
    alice.receive(json.dumps({"t": "mut", "id": 2, "m": "m", "op": "add", "states": ["B"]}), 0)
    [res] = [p.loads(f) for f in alice.data_to_send()]
    assert res["t"] == "res" and res["r"] == 0
    assert sorted(i for i, _ in res["diff"]["d"]) == [mach.index1("B"), mach.index1("C")]
    assert bob.data_to_send() == []  # not yet: a burst of mutations would be one diff
    loop.run_scheduled()
    assert kinds([p.loads(f) for f in bob.data_to_send()]) == ["diff"]
    assert alice.data_to_send() == []  # already has it


def test_subscribers_on_one_epoch_share_one_encoded_frame() -> None:
    mach = machine()
    loop = Loopback(mach)
    sessions = [loop.server() for _ in range(5)]
    for session in sessions:
        loop.send(session, {"t": "sub", "id": 1, "m": "m"})
    mach.add1("A")
    loop.run_scheduled()
    frames = [session.data_to_send()[0] for session in sessions]
    assert all(frame is frames[0] for frame in frames)


def test_a_gap_in_the_chain_is_healed_by_one_sync() -> None:
    mach = machine()
    loop = Loopback(mach)
    client, server, net = loop.mirrored(mach)
    mach.add1("A")
    loop.run_scheduled()
    server.data_to_send()  # this diff is lost
    mach.add1("Multi")
    loop.run_scheduled()
    for frame in server.data_to_send():
        client.receive(frame, 0)
    [sync] = client.data_to_send()
    assert json.loads(sync)["t"] == "sync"
    assert not net.is1("Multi")  # a diff after the gap is not applied
    server.receive(sync, 0)
    loop.pump(client, server)
    assert net.time() == mach.time()
    assert client.data_to_send() == []  # healed: one sync was enough


def test_payloads_follow_the_diffs_of_what_happened_before_them() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server()
    loop.send(session, {"t": "sub", "id": 1, "m": "m"})
    mach.add1("A")
    assert loop.hub.send_payload("after-a", {"x": 1}) == 1
    assert kinds([p.loads(f) for f in session.data_to_send()]) == ["diff", "payload"]


def test_a_payload_from_a_handler_inside_a_mutation_does_not_overtake_its_diff() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server()
    loop.send(session, {"t": "sub", "id": 1, "m": "m"})

    class Notifier:
        def BState(self, e: am.Event) -> None:
            loop.hub.send_payload("b", None)

    mach.bind_handlers(Notifier())
    out = loop.send(session, {"t": "mut", "id": 2, "m": "m", "op": "add", "states": ["B"]})
    assert kinds(out) == ["diff", "payload", "res"]
    assert mach.index1("B") in [i for i, _ in out[0]["d"]]


# ------------------------------------------------------------------------------------ policies

LIMITED = rpc.Principal("limited", default=rpc.Policy(states={"A", "B", "Multi"}))


@pytest.mark.parametrize(
    ("op", "states", "setup"),
    [
        ("add", ["A"], ["Prot"]),  # remove relation: A deactivates Prot
        ("add", ["B"], []),  # add relation: B activates C
        ("remove", ["E"], ["D", "E"]),  # require: D goes with E
        ("set", ["A"], ["C"]),  # set deactivates C
        ("add_err", ["Exception"], []),  # Exception is outside the policy too
    ],
)
def test_a_policy_bounds_what_a_mutation_does(op: str, states: list[str], setup: list[str]) -> None:
    mach = machine()
    mach.add(setup)
    recorder = Recorder()
    mach.bind_handlers(recorder)
    before, queue_tick = mach.time(), mach.queue_tick()
    loop = Loopback(mach)
    session = loop.server(LIMITED)
    message: dict[str, object] = {"t": "mut", "id": 3, "m": "m", "op": op, "states": states}
    if op == "add_err":
        message["err"] = {"type": "ValueError", "msg": "boom"}
    [err] = loop.send(session, message)
    assert (err["t"], err["code"], err["id"]) == ("err", "forbidden", 3)
    assert mach.time() == before and recorder.ran == []  # canceled before any handler ran
    assert mach.queue_tick() == queue_tick


def test_a_policy_lets_through_what_stays_inside() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(LIMITED)
    [res] = loop.send(session, {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["A"]})
    assert (res["t"], res["r"]) == ("res", 0) and mach.is1("A")
    [res] = loop.send(
        session, {"t": "mut", "id": 2, "m": "m", "op": "add", "states": ["Multi", "A"]}
    )
    assert res["r"] == 0 and mach.tick("Multi") == 1


def test_a_mutation_its_relations_cancel_is_not_forbidden() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(rpc.Principal("p", default=rpc.Policy(states={"D"})))
    [res] = loop.send(session, {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["D"]})
    assert (res["t"], res["r"]) == ("res", 1)  # canceled by its own relation: changes nothing


def test_dry_runs_answer_what_the_policy_allows() -> None:
    mach = machine()
    mach.add1("Prot")
    loop = Loopback(mach)
    session = loop.server(LIMITED)
    for states, expected in ((["A"], 1), (["Multi"], 0), (["B"], 1)):
        [res] = loop.send(session, {"t": "check", "id": 1, "m": "m", "op": "add", "states": states})
        assert res["r"] == expected, states
    assert mach.is1("Prot") and mach.not1("Multi")


def test_a_read_only_principal_may_not_mutate_nor_report_errors() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(rpc.Principal("viewer", default=rpc.READ_ONLY))
    for op, states in (("add", ["A"]), ("add_err", ["Exception"])):
        [err] = loop.send(
            session,
            {
                "t": "mut",
                "id": 1,
                "m": "m",
                "op": op,
                "states": states,
                "err": {"type": "E", "msg": ""},
            },
        )
        assert err["code"] == "forbidden"
    assert mach.time() == [0] * len(mach.state_names())


# ------------------------------------------------------------------------------------ selective


def test_read_states_hide_names_ticks_and_changes() -> None:
    mach = machine()
    loop = Loopback(mach)
    principal = rpc.Principal("ui", default=rpc.Policy(read_states={"A", "B"}))
    session = loop.server(principal)
    [snap] = loop.send(session, {"t": "sub", "id": 1, "m": "m"})
    assert snap["names"] == ["A", "B"] and set(snap["schema"]) == {"A", "B"}
    assert snap["schema"]["A"] == {}  # A removes Prot, which it may not know exists
    mach.add1("Prot")
    mach.add1("E")
    loop.run_scheduled()
    assert session.data_to_send() == []  # nothing it may see changed: nothing at all
    mach.add1("B")  # B adds C: only B reaches this connection
    loop.run_scheduled()
    [diff] = [p.loads(f) for f in session.data_to_send()]
    assert diff["d"] == [[1, 1]]
    assert "Prot" not in json.dumps(diff) and "C" not in diff


def test_a_state_outside_read_states_is_unknown() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(rpc.Principal("ui", default=rpc.Policy(read_states={"A"})))
    for message in (
        {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["Prot"]},
        {"t": "sub", "id": 2, "m": "m", "states": ["A", "Prot"]},
        {"t": "check", "id": 3, "m": "m", "op": "add", "states": ["Prot"]},
    ):
        [err] = loop.send(session, message)
        assert err["code"] == "unknown_state", message
    assert not mach.is1("Prot")


def test_a_client_may_subscribe_to_a_subset() -> None:
    mach = machine()
    loop = Loopback(mach)
    client, server, net = loop.mirrored(mach, states=["Multi", "A"])
    assert net.state_names() == ["A", "Multi"]  # the machine's order
    mach.add(["Multi", "C"])
    loop.pump(client, server)
    assert net.clock() == {"A": 0, "Multi": 1}


# ------------------------------------------------------------------------------------ mutations


def test_the_mutation_source_reaches_the_server_machine() -> None:
    mach = machine()
    seen: list[am.MutationSource | None] = []

    class Watcher(am.Tracer):
        def transition_start(self, tx: am.Transition) -> None:
            seen.append(tx.mutation.source)

    mach.bind_tracer(Watcher())
    loop = Loopback(mach)
    session = loop.server(cid="web-1")
    src = {"m": "ui", "tx": "abc", "mt": 7, "cid": "web-1", "tab": "t1", "meta": {"k": "v"}}
    [res] = loop.send(
        session, {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["A"], "src": src}
    )
    assert res["r"] == 0
    assert seen == [MutationSource("ui", "abc", 7, client_id="web-1", tab_id="t1", meta={"k": "v"})]
    loop.send(session, {"t": "mut", "id": 2, "m": "m", "op": "add", "states": ["C"]})
    assert seen[-1] == MutationSource("", "", 0, client_id="web-1")


@pytest.mark.parametrize(
    "src",
    [
        [],
        {"m": 5},
        {"tx": "x" * 200},
        {"mt": -1},
        {"mt": 1.5},
        {"cid": "someone-else"},
        {"meta": {"k": 1}},
        {"meta": {f"k{i}": "v" for i in range(17)}},
        {"meta": {"k": "v" * 600}},
        {"meta": "traceparent"},
    ],
)
def test_a_malformed_source_is_refused_and_nothing_runs(src: object) -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(cid="web-1")
    [err] = loop.send(
        session, {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["A"], "src": src}
    )
    assert (err["code"], err["id"]) == ("bad_message", 1)
    assert not mach.is1("A")


def test_a_client_error_reaches_the_server_as_a_remote_error() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server()
    message = {
        "t": "mut",
        "id": 1,
        "m": "m",
        "op": "add_err",
        "states": ["Prot"],
        "err": {"type": "TypeError", "msg": "bad input"},
    }
    [res] = loop.send(session, message)
    assert res["r"] == 0 and mach.is_(["Prot", "Exception"])
    err = mach.err()
    assert isinstance(err, rpc.RemoteError)
    assert (err.type_name, err.message) == ("TypeError", "bad input")


def test_keys_run_a_mutation_once_and_outlive_the_hub() -> None:
    mach = machine()
    counter: list[int] = []

    class Count:
        def MultiState(self, e: am.Event) -> None:
            counter.append(1)

    mach.bind_handlers(Count())
    first = Loopback(mach)
    message = {"t": "mut", "id": 1, "m": "m", "op": "add", "states": ["Multi"], "key": "k1"}
    assert first.send(first.server(cid="shop"), message)[0]["r"] == 0
    second = Loopback(mach)  # a new server for the same machine object
    session = second.server(cid="shop")
    assert second.send(session, message)[0]["r"] == 0
    assert counter == [1]
    [err] = second.send(session, {**message, "op": "remove"})
    assert err["code"] == "bad_message" and "key" in err["msg"]
    other = second.server(cid="another-shop")  # keys are per client
    assert second.send(other, message)[0]["r"] == 0 and counter == [1, 1]


def test_a_mutation_arriving_while_the_machine_is_busy_runs_when_it_is_idle() -> None:
    mach = machine()
    loop = Loopback(mach)
    session = loop.server(LIMITED)
    answers: list[list[str]] = []

    class Relay:
        """A message arriving during a transition (an in-process transport could do that)."""

        def CState(self, e: am.Event) -> None:
            session.receive(
                json.dumps({"t": "mut", "id": 7, "m": "m", "op": "add", "states": ["A"]}), 0
            )
            answers.append(session.data_to_send())

    mach.bind_handlers(Relay())
    mach.add1("Prot")
    mach.add1("C")
    assert answers == [[]]  # not during the transition
    [res] = [p.loads(f) for f in session.data_to_send()]
    assert (res["t"], res["code"]) == ("err", "forbidden")  # resolved against the idle machine
    assert mach.is1("Prot")


# ------------------------------------------------------------------------------------ time


def test_the_server_pings_every_heartbeat_and_drops_a_silent_client() -> None:
    loop = Loopback(machine(), heartbeat=1.0)
    session = loop.server()
    assert session.next_deadline() == 1.0
    session.timer(1.0)
    [ping] = [p.loads(f) for f in session.data_to_send()]
    assert ping == {"t": "ping", "ts": 1000}
    session.receive(json.dumps({"t": "pong", "ts": 1000}), 1.5)  # alive at 1.5
    session.timer(2.0)  # the next ping
    session.timer(3.4)
    assert session.close_request is None
    assert session.next_deadline() == 3.0 or session.next_deadline() <= 3.5
    session.timer(3.5)  # two heartbeats since 1.5
    assert session.close_request == p.CloseRequest(4002, "heartbeat timeout", abort=True)


def test_the_client_drops_a_silent_server_after_two_heartbeats() -> None:
    loop = Loopback(machine(), heartbeat=1.0)
    client = loop.client()
    loop.join(client)
    assert client.next_deadline() == 2.0
    client.timer(1.9)
    assert client.close_request is None
    client.timer(2.0)
    assert client.close_request == p.CloseRequest(4002, "heartbeat timeout", abort=True)


def test_flood_limit_with_a_clock() -> None:
    loop = Loopback(machine(), flood_rate=10.0, flood_burst=5)
    session = loop.server()
    for _ in range(5):
        session.receive('{"t":"pong"}', 0.0)
    assert session.close_request is None
    session.receive('{"t":"pong"}', 0.05)  # half a token back: not enough
    [err] = [p.loads(f) for f in session.data_to_send()]
    assert err == {"t": "err", "code": "flood", "msg": "too many messages"}
    assert session.close_request == p.CloseRequest(1008, "flood")


# ------------------------------------------------------------------------------------ strict JSON


@pytest.mark.parametrize("ts", ["NaN", "1e999", "-Infinity"])
def test_non_json_numbers_are_refused_not_echoed(ts: str) -> None:
    loop = Loopback(machine())
    session = loop.server()
    [err] = loop.send(session, '{"t":"ping","ts":' + ts + "}")
    assert (err["t"], err["code"]) == ("err", "bad_json")


def test_payloads_must_be_strict_json() -> None:
    loop = Loopback(machine())
    with pytest.raises(ValueError):
        loop.hub.send_payload("x", math.nan)
    with pytest.raises(ValueError):
        loop.hub.send_payload("x", {"v": [math.inf]})
    with pytest.raises(TypeError):
        loop.hub.send_payload("x", object())


def test_the_client_refuses_a_server_frame_with_nan() -> None:
    loop = Loopback(machine())
    client = loop.client()
    loop.join(client)
    client.receive('{"t":"payload","name":"x","data":NaN}', 0)
    assert client.close_request is not None and client.close_request.code == 1002


# ------------------------------------------------------------------------------------ frame limits


def test_the_client_refuses_an_oversized_request_before_sending() -> None:
    loop = Loopback(machine(), max_frame=2048)
    client = loop.client()
    loop.join(client)
    assert client.server_max_frame == 2048
    message = {"t": "mut", "m": "m", "op": "add", "states": ["A"], "args": {"x": "y" * 3000}}
    with pytest.raises(ValueError, match="2048"):
        client.request(message, "m", True, 0)
    assert client.data_to_send() == [] and client.calls == {}


def test_a_frame_the_server_refused_as_too_big_is_never_resent() -> None:
    loop = Loopback(machine())
    client = loop.client()
    loop.join(client)
    client.data_to_send()
    results: dict[str, object] = {}
    big = client.request(
        {"t": "mut", "m": "m", "op": "add", "states": ["A"], "args": {"x": "y" * 500}},
        "m",
        True,
        0,
        lambda r, e: results.__setitem__("big", e),
    )
    small = client.request(
        {"t": "mut", "m": "m", "op": "add", "states": ["A"]},
        "m",
        True,
        0,
        lambda r, e: results.__setitem__("small", e),
    )
    client.data_to_send()
    client.connection_lost(1009, "message too big")
    assert isinstance(results["big"], ValueError) and "small" not in results
    assert set(client.calls) == {small.id} and big.id not in client.calls


def test_the_server_sends_nothing_over_the_clients_limit() -> None:
    mach = am.Machine({f"S{i:04}": am.State() for i in range(300)}, id="wide")
    loop = Loopback(mach)
    session = loop.server(max_frame=1024)
    [err] = loop.send(session, {"t": "sub", "id": 1, "m": "wide"})
    assert (err["code"], err["id"]) == ("too_large", 1)
    assert loop.hub.send_payload("big", "x" * 2000) == 0


# ------------------------------------------------------------------------------------ deadlines


WELCOME = {"t": "welcome", "v": p.VERSION, "sid": "s", "hb_ms": 60000, "max_frame": 4096}


def test_an_unanswered_request_fails_with_a_clear_error() -> None:
    loop = Loopback(machine())
    client = loop.client(request_timeout=5.0)
    loop.join(client)
    errors: dict[str, BaseException | None] = {}

    def mutate(name: str, now: float) -> None:
        message = {"t": "mut", "m": "m", "op": "add", "states": ["A"]}
        client.request(message, "m", True, now, lambda r, e: errors.__setitem__(name, e))

    mutate("lost", 0)
    client.connection_lost(1006, "")
    client.open(1.0)  # a new connection; the mutation is resent after the welcome
    client.receive(json.dumps({**WELCOME, "machines": []}), 1.0)
    client.resume(lambda machine_id: lambda reply, error: None)
    mutate("slow", 1.0)
    client.timer(5.0)
    assert isinstance(errors["lost"], rpc.DisconnectedError)  # its connection went away
    client.timer(6.0)
    slow = errors["slow"]
    assert isinstance(slow, rpc.RpcError) and slow.code == "timeout"  # the server is slow
