"""Who a connection is and what it may do: principals, per-machine policies, the auth hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Policy:
    """What a principal may do with one machine."""

    read: bool = True
    """Subscribe to the machine and read its clock."""
    write: bool = True
    """Send mutations."""
    states: frozenset[str] | None = None
    """When set, mutations may only change these states (see ``may_write``)."""

    def may_write(self, op: str, states: Collection[str], active: Collection[str] = ()) -> bool:
        """Whether a mutation may run. With ``states`` set, it may only touch those states: a
        ``set`` also deactivates every other ``active`` state, so those count too."""
        if not self.write:
            return False
        if self.states is None:
            return True
        touched = [*states, *active] if op == "set" else states
        return self.states.issuperset(touched)


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
