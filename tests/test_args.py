"""Typed args (asyncmachine.args): pass, parse, merge, wrong types, log lines and tracers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import asyncmachine as am
from asyncmachine import args as amargs


class UploadArgs(amargs.Args, key="upload"):
    user_id: str = amargs.field(log="user")
    path: str = amargs.field(default="", log=True)
    data: bytes = b""
    retries: list[int] = amargs.field(default_factory=list)


class RetryArgs(amargs.Args, key="retry", frozen=True):
    attempt: int = amargs.field(default=0, log="attempt")


class ResumeArgs(UploadArgs):
    """Inherits the "upload" key."""

    offset: int = 0


class Unkeyed(amargs.Args):
    value: str = ""


SCHEMA = {"Uploading": am.State(), "Done": am.State()}


# --- pass and parse ----------------------------------------------------------------------------


def test_round_trip() -> None:
    args = UploadArgs(user_id="u1", data=b"\x00")
    passed = args.pass_()
    assert passed == {"upload": args}
    assert UploadArgs.parse(passed) is args
    assert args.retries == []


def test_parse_absent_key_is_none() -> None:
    assert UploadArgs.parse({}) is None
    assert UploadArgs.parse({"other": 1}) is None


def test_subclasses_are_dataclasses() -> None:
    assert [f.name for f in dataclasses.fields(UploadArgs)] == [
        "user_id",
        "path",
        "data",
        "retries",
    ]
    assert UploadArgs(user_id="a") == UploadArgs(user_id="a")
    with pytest.raises(TypeError):
        UploadArgs()  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryArgs().attempt = 2  # type: ignore[misc]


def test_keys_inherit_or_default_to_the_class_name() -> None:
    resume = ResumeArgs(user_id="u", offset=10)
    assert resume.pass_() == {"upload": resume}
    assert UploadArgs.parse(resume.pass_()) is resume  # a subclass parses as its base
    assert Unkeyed(value="x").pass_() == {"Unkeyed": Unkeyed(value="x")}


def test_an_explicit_dataclass_decorator_is_harmless() -> None:
    @dataclasses.dataclass
    class Decorated(amargs.Args, key="decorated"):
        name: str = amargs.field(log="n")

    args = Decorated(name="x")
    assert Decorated.parse(args.pass_()) is args
    assert args.__am_log_args__() == {"n": "x"}


def test_several_typed_args_in_one_dict() -> None:
    upload, retry = UploadArgs(user_id="u"), RetryArgs(attempt=3)
    merged = amargs.pass_(upload, retry)
    assert merged == {"upload": upload, "retry": retry}
    assert UploadArgs.parse(merged) is upload
    assert RetryArgs.parse(merged) is retry
    plain = {**upload.pass_(), **retry.pass_(), "id": "x"}
    assert RetryArgs.parse(plain) is retry


def test_pass_refuses_two_args_under_one_key() -> None:
    with pytest.raises(ValueError, match="'upload'"):
        amargs.pass_(UploadArgs(user_id="a"), ResumeArgs(user_id="b"))


def test_wrong_type_under_the_key_raises() -> None:
    with pytest.raises(TypeError, match=r"args\['upload'\] holds str, expected UploadArgs"):
        UploadArgs.parse({"upload": "u1"})
    with pytest.raises(TypeError, match="holds UploadArgs, expected ResumeArgs"):
        ResumeArgs.parse(UploadArgs(user_id="u").pass_())


def test_bad_definitions_raise() -> None:
    with pytest.raises(ValueError, match="log name"):
        amargs.field(log="user id")
    with pytest.raises(ValueError, match="args key"):

        class Empty(amargs.Args, key=""):
            pass


# --- log fields --------------------------------------------------------------------------------


def test_log_fields() -> None:
    """Marked fields only, under their log names; empty ones skipped; long ones cut."""
    assert UploadArgs(user_id="u1").__am_log_args__() == {"user": "u1"}
    assert UploadArgs(user_id="u1", path="/tmp/a").__am_log_args__() == {
        "user": "u1",
        "path": "/tmp/a",
    }
    long = UploadArgs(user_id="x" * 50).__am_log_args__()["user"]
    assert len(long) == amargs.LOG_MAX_LEN and long.endswith("...")
    assert RetryArgs().__am_log_args__() == {"attempt": "0"}  # zero is a value, not empty
    assert Unkeyed(value="v").__am_log_args__() == {}


def test_log_line_shows_typed_args() -> None:
    lines: list[str] = []
    mach = am.Machine(
        SCHEMA,
        log_level=am.LogLevel.CHANGES,
        log_id=False,
        logger=lambda _, msg: lines.append(msg),
    )
    mach.add1("Uploading", amargs.pass_(UploadArgs(user_id="u1", path="/a"), RetryArgs(attempt=2)))
    mach.set_args_mapper(am.new_log_args_mapper())
    mach.add1("Done", {**UploadArgs(user_id="u2").pass_(), "id": "req-1"})
    assert lines == [
        "[state] +Uploading (attempt=2 path=/a user=u1)",
        "[state] +Done (id=req-1 user=u2)",
    ]


def test_handlers_and_tracers_read_typed_args() -> None:
    seen: list[Any] = []

    class Handlers:
        def UploadingState(self, e: am.Event) -> None:
            args = UploadArgs.parse(e.args)
            assert args is not None
            seen.append(args.user_id)
            e.machine.add1("Done", RetryArgs(attempt=1).pass_())

    class LogArgsTracer(am.Tracer):
        def transition_end(self, tx: am.Transition) -> None:
            seen.append(tx.machine.log_args(tx.args))

    mach = am.Machine(SCHEMA, tracers=[LogArgsTracer()])
    mach.bind_handlers(Handlers())
    mach.add1("Uploading", UploadArgs(user_id="u1").pass_())
    assert seen == ["u1", {"user": "u1"}, {"attempt": "1"}]
