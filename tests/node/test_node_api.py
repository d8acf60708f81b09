"""The ``asyncmachine.node`` names of the API contract; runs in Pyodide too (nothing here forks
or listens)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import asyncmachine as am
from asyncmachine import node


def test_the_contract_names_are_exported() -> None:
    for name in (
        "Supervisor", "Client", "run_worker", "WORKER_SCHEMA", "WorkerStates",
        "SupervisorStates", "ClientStates", "WorkerInfo",
    ):  # fmt: skip
        assert name in node.__all__ and hasattr(node, name)
    assert set(node.__all__) == {n for n in dir(node) if not n.startswith("_")} - {
        n for n in dir(node) if inspect.ismodule(getattr(node, n))
    }


def test_the_states_of_each_role() -> None:
    worker = {
        "Ready",
        "Idle",
        "WorkRequested",
        "Working",
        "WorkReady",
        "ClientSendPayload",
        "ErrWork",
    }
    assert worker <= set(node.WorkerStates().names()) <= set(node.WORKER_SCHEMA)
    supervisor = {"Start", "PoolStarting", "PoolReady", "WorkersAvailable", "ErrWorker", "ErrPool"}
    assert supervisor | {"Exception"} <= set(node.SupervisorStates().names())
    assert set(node.SupervisorStates().names()) == set(node.SUPERVISOR_SCHEMA)
    client = {"SuperReady", "WorkerRequested", "WorkerReady", "WorkerPayload", "ErrSupervisor"}
    assert client | {"ErrWorker", "Exception"} <= set(node.ClientStates().names())
    assert node.CLIENT_SCHEMA["WorkerPayload"].multi
    # a worker schema builds a machine; Idle comes back on its own once the worker is Ready
    mach = am.Machine(am.schema_merge(node.WORKER_SCHEMA, {"Extra": am.State()}))
    mach.add(["Start", "RpcReady", "SuperConnected"])
    assert mach.is_(["Ready", "Idle"])
    assert mach.add1("WorkRequested") == am.Canceled  # no client assigned
    mach.add1("ServeClient", {"client_id": "c", "token": "t", "lease": "l"})
    mach.add1("Working")
    assert mach.is1("Working") and mach.not1("Idle")
    mach.remove1("ServeClient")
    assert mach.is1("Idle") and mach.not1("Working")


def test_signatures_and_defaults() -> None:
    sup = inspect.signature(node.Supervisor)
    assert list(sup.parameters)[:3] == ["kind", "worker_cmd", "worker_schema"]
    assert {k: sup.parameters[k].default for k in ("min", "max", "warm")} == {
        "min": 2, "max": 10, "warm": 5,
    }  # fmt: skip
    assert list(inspect.signature(node.Client).parameters)[:3] == ["id", "kind", "worker_schema"]
    assert inspect.signature(node.Client.req_worker).parameters["timeout"].default == 5.0
    assert (
        inspect.signature(node.run_worker).parameters["kind"].kind is inspect.Parameter.KEYWORD_ONLY
    )
    info = node.WorkerInfo("w", 1, None, "starting")
    assert (info.id, info.pid, info.url, info.status) == ("w", 1, None, "starting")


@pytest.mark.skipif(sys.platform == "emscripten", reason="needs a subprocess")
def test_imports_stay_light() -> None:
    """``import asyncmachine`` leaves the pool out; the pool imports no ``websockets`` until a
    supervisor or worker serves."""
    code = (
        "import sys, asyncmachine; a = 'asyncmachine.node' in sys.modules; "
        "import asyncmachine.node; print(a, 'websockets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
