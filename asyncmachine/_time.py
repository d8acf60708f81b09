"""Machine time: lists of ticks, where an odd tick means the state is active."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def is_active_tick(tick: int) -> bool:
    """An odd tick: the state is active."""
    return tick % 2 == 1


def next_active(tick: int) -> int:
    """The absolute tick of the next activation."""
    return tick + 2 if tick % 2 == 1 else tick + 1


def next_active_in(tick: int) -> int:
    """How many ticks until the next activation."""
    return 2 if tick % 2 == 1 else 1


class Time(list[int]):
    """Ticks by state index (``state_names()`` order unless said otherwise).

    The helpers take indexes; -1 stands for an unknown state.
    """

    __slots__ = ()

    def tick(self, idx: int) -> int:
        """The tick at ``idx``, 0 out of range."""
        return self[idx] if 0 <= idx < len(self) else 0

    def is1(self, idx: int) -> bool:
        """Active at ``idx`` (False for -1 or out of range)."""
        return 0 <= idx < len(self) and self[idx] % 2 == 1

    def is_(self, idxs: Sequence[int]) -> bool:
        """All of ``idxs`` active (False for an empty list)."""
        return bool(idxs) and all(self.is1(i) for i in idxs)

    def not1(self, idx: int) -> bool:
        """Inactive at ``idx``."""
        return not self.is1(idx)

    def not_(self, idxs: Sequence[int]) -> bool:
        """None of ``idxs`` active (-1 is ignored)."""
        return not any(self.is1(i) for i in idxs if i != -1)

    def any(self, *lists: Sequence[int]) -> bool:
        """Some list of indexes is all active."""
        return any(self.is_(idxs) for idxs in lists)

    def any1(self, *idxs: int) -> bool:
        """Some index is active."""
        return any(self.is1(i) for i in idxs)

    def active_states(self) -> list[int]:
        """Indexes of the active states."""
        return [i for i, t in enumerate(self) if t % 2 == 1]

    def non_zero_states(self) -> list[int]:
        """Indexes of the states that ever ticked."""
        return [i for i, t in enumerate(self) if t != 0]

    def add(self, other: Sequence[int]) -> Time:
        """Element-wise sum; ``self`` unchanged when the lengths differ."""
        if len(other) != len(self):
            return self
        return Time(a + b for a, b in zip(self, other, strict=True))

    def diff_since(self, before: Sequence[int]) -> Time:
        """Element-wise ``self - before``; all zeros when the lengths differ."""
        if len(before) != len(self):
            return Time([0] * len(self))
        return Time(a - b for a, b in zip(self, before, strict=True))

    def filter(self, idxs: Iterable[int]) -> Time:
        """The ticks at ``idxs``."""
        return Time(self.tick(i) for i in idxs)

    def sum(self, idxs: Iterable[int] | None = None) -> int:
        """The sum of the ticks (of ``idxs``): machine time."""
        if idxs is None:
            return sum(self)
        return sum(self.tick(i) for i in idxs)

    def after(self, or_equal: bool, other: Sequence[int]) -> bool:
        """True when every shared index is later (or equal) than in ``other``."""
        if or_equal:
            return all(a >= b for a, b in zip(self, other, strict=False))
        return all(a > b for a, b in zip(self, other, strict=False))

    def before(self, or_equal: bool, other: Sequence[int]) -> bool:
        """True when every shared index is earlier (or equal) than in ``other``."""
        if or_equal:
            return all(a <= b for a, b in zip(self, other, strict=False))
        return all(a < b for a, b in zip(self, other, strict=False))

    def equal(self, strict: bool, other: Sequence[int]) -> bool:
        """Element-wise equality; ``strict`` also needs equal lengths."""
        if strict and len(self) != len(other):
            return False
        return all(a == b for a, b in zip(self, other, strict=False))


def next_inactive(tick: int) -> int:
    """The absolute tick of the next deactivation."""
    return tick + 2 if tick % 2 == 0 else tick + 1


def next_inactive_in(tick: int) -> int:
    """How many ticks until the next deactivation."""
    return 2 if tick % 2 == 0 else 1
