"""Who a connection is and what it may do: principals, per-machine policies, the auth hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("a policy takes a collection of state names, not one string")
    return frozenset(value)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a principal may do with one machine.

    ``states`` bounds what a mutation *does*: the server resolves it (relations and ``set``
    included) before any handler runs, and refuses it with ``forbidden`` when it would activate
    or deactivate a state outside ``states``. ``read_states`` bounds what the principal *sees*: no
    name or tick of another state ever reaches its connection.
    """

    read: bool = True
    """Subscribe to the machine and read its clock."""
    write: bool = True
    """Send mutations."""
    states: Collection[str] | None = None
    """When set, mutations may only activate or deactivate these states."""
    read_states: Collection[str] | None = None
    """When set, the only states this principal sees."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", _names(self.states))
        object.__setattr__(self, "read_states", _names(self.read_states))

    def outside(self, touched: Iterable[str]) -> list[str]:
        """The states of ``touched`` this policy does not let a mutation change."""
        if self.states is None:
            return []
        return [s for s in touched if s not in self.states]

    def visible(self, names: Iterable[str]) -> list[str]:
        """The states of ``names`` this policy lets the principal see, in the given order."""
        if self.read_states is None:
            return list(names)
        return [s for s in names if s in self.read_states]


READ_WRITE = Policy()
READ_ONLY = Policy(write=False)
NO_ACCESS = Policy(read=False, write=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: its name and its policy per machine id."""

    name: str
    policies: Mapping[str, Policy] = field(default_factory=dict)
    default: Policy = READ_WRITE
    """The policy for machines not listed in ``policies``."""

    def policy(self, machine_id: str) -> Policy:
        return self.policies.get(machine_id, self.default)


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """What the server knows about a connection when it authenticates it."""

    remote: str
    origin: str | None
    client_id: str


Authenticate = Callable[[str | None, ConnInfo], "Principal | Awaitable[Principal | None] | None"]
"""``authenticate(token, conn) -> Principal``, or ``None`` to refuse (may be ``async``)."""

ANONYMOUS = Principal("anonymous")


def tokens(table: Mapping[str, Principal]) -> Authenticate:
    """An ``authenticate`` hook from a fixed ``{token: principal}`` table."""

    def authenticate(token: str | None, conn: ConnInfo) -> Principal | None:
        return table.get(token) if token is not None else None

    return authenticate
