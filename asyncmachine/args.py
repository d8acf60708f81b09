"""Typed mutation args: a dataclass stored under its own args key, passed and parsed type-safely.

Upstream's "typesafe arguments" (``Pass`` / ``ParseArgs``) as a base class. Import it as
``amargs``::

    class UploadArgs(amargs.Args, key="upload"):
        user_id: str = amargs.field(log="user")
        data: bytes = b""

    mach.add1("Uploading", UploadArgs(user_id="u1").pass_())

    def UploadingState(self, e: am.Event) -> None:
        args = UploadArgs.parse(e.args)  # UploadArgs | None

Fields marked with ``log`` appear in the machine's log lines (``[state] +Uploading (user=u1)``) and
in ``mach.log_args(args)``, which tracers use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sized
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform, overload

from ._log import truncate

__all__ = ["LOG_MAX_LEN", "Args", "field", "pass_"]

LOG_MAX_LEN = 20
"""Logged values are cut to this many characters, like the engine's default args mapper."""

_LOG = "asyncmachine.log"
"""The field metadata key holding a field's log name."""

_T = TypeVar("_T")


@overload
def field(*, default: _T, log: str | bool = False, repr: bool = True) -> _T: ...


@overload
def field(
    *, default_factory: Callable[[], _T], log: str | bool = False, repr: bool = True
) -> _T: ...


@overload
def field(*, log: str | bool = False, repr: bool = True) -> Any: ...


def field(
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    log: str | bool = False,
    repr: bool = True,
) -> Any:
    """A field of an ``Args`` class; ``log="name"`` (``True``: the field's own name) logs it."""
    if isinstance(log, str) and (not log or any(c.isspace() or c == "=" for c in log)):
        raise ValueError(f"log name {log!r} must be non-empty, without spaces or '='")
    options: dict[str, Any] = {"repr": repr, "metadata": {_LOG: log} if log else None}
    if default is not dataclasses.MISSING:
        options["default"] = default
    if default_factory is not dataclasses.MISSING:
        options["default_factory"] = default_factory
    return dataclasses.field(**options)


@dataclass_transform(field_specifiers=(field, dataclasses.field))
class Args:
    """Base of typed args: every subclass is a dataclass, passed under its args ``key``.

    ``key`` defaults to the parent's key, or to the class name. ``frozen=True`` makes instances
    immutable. One args dict can carry several typed args with different keys (``pass_(a, b)``).
    """

    _am_key: ClassVar[str] = ""
    _am_log_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(attribute, log name) pairs, collected once per class."""

    def __init_subclass__(
        cls, *, key: str | None = None, frozen: bool = False, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"{cls.__qualname__}: args key must be a non-empty string")
        cls._am_key = key or cls._am_key or cls.__name__
        dataclasses.dataclass(cls, frozen=frozen)
        cls._am_log_fields = tuple(
            (f.name, f.name if log is True else log)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if (log := f.metadata.get(_LOG))
        )

    def pass_(self) -> dict[str, Any]:
        """These args as mutation args: ``{key: self}``."""
        return {self._am_key: self}

    @classmethod
    def parse(cls, args: Mapping[str, Any]) -> Self | None:
        """This class's instance from mutation args; ``None`` when its key is absent.

        Raises ``TypeError`` when the key holds something else (two classes sharing a key, or a
        plain value passed by hand).
        """
        value = args.get(cls._am_key)
        if value is None or isinstance(value, cls):
            return value
        raise TypeError(
            f"args[{cls._am_key!r}] holds {type(value).__qualname__}, expected {cls.__qualname__}"
        )

    def __am_log_args__(self) -> dict[str, str]:
        """The logged fields as ``{log name: value}``, cut to ``LOG_MAX_LEN``; skips empty ones."""
        out: dict[str, str] = {}
        for attr, name in self._am_log_fields:
            value = getattr(self, attr)
            if value is None or (isinstance(value, Sized) and not len(value)):
                continue
            out[name] = truncate(str(value), LOG_MAX_LEN)
        return out


def pass_(*args: Args) -> dict[str, Any]:
    """Several typed args as one args dict; two with the same key raise ``ValueError``."""
    out: dict[str, Any] = {}
    for arg in args:
        if arg._am_key in out:
            raise ValueError(f"two typed args under the key {arg._am_key!r}")
        out[arg._am_key] = arg
    return out
