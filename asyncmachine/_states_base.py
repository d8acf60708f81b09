"""Typed state names: a class whose annotated attributes are their own names."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


class StatesBase:
    """Base for typed state sets; each attribute annotated ``str`` (or set to ``...``) is a state.

    ``names()`` lists them in declaration order, inherited names first, without duplicates.
    """

    Exception: str
    _names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _collect(cls)

    @classmethod
    def names(cls) -> list[str]:
        return list(cls._names)

    def __iter__(self) -> Any:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def _own_names(cls: type) -> list[str]:
    own: list[str] = []
    for name, ann in inspect.get_annotations(cls).items():
        if name.startswith("_"):
            continue
        if ann is str or ann == "str":
            own.append(name)
    for name, value in vars(cls).items():
        if value is Ellipsis and not name.startswith("_") and name not in own:
            own.append(name)
    return own


def _collect(cls: type) -> None:
    names = ["Exception"]
    for base in cls.__bases__:  # left to right, each with its own inherited names first
        names.extend(getattr(base, "_names", ()))
    for name in _own_names(cls):
        setattr(cls, name, name)
        names.append(name)
    cls._names = tuple(dict.fromkeys(names))  # type: ignore[attr-defined]


StatesBase.Exception = "Exception"
StatesBase._names = ("Exception",)
