"""The NATS subjects of asyncmachine: one family per machine id, one heartbeat per host.

``am.m.<id>.snap``   request/reply (read): the machine's clock, names and schema now
``am.m.<id>.diff``   published by the host: every clock change (the WebSocket ``diff`` frame), a
                     ``snap`` when the host starts or the state names change, ``down`` on close
``am.m.<id>.mut``    request/reply (write): a mutation with its idempotency key
``am.m.<id>.check``  request/reply (read): ``check`` and ``explain`` dry runs
``am.m.<id>.claim``  request/reply: the host answers, so a second host of the id is refused
``am.hb.<host>``     published by each host process every heartbeat (gateways watch ``am.hb.*``)
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "am"
KINDS: Final = ("snap", "diff", "mut", "check", "claim")
HEARTBEATS: Final = f"{PREFIX}.hb.*"
_FORBIDDEN = frozenset(" \t\r\n.*>")


def check_id(machine_id: str, what: str = "machine id") -> str:
    """A machine id (or a pool kind) that can be one subject token (no dots, spaces or
    wildcards)."""
    if not isinstance(machine_id, str) or not machine_id:
        raise ValueError(f"a {what} is a non-empty string")
    bad = sorted(_FORBIDDEN.intersection(machine_id))
    if bad or len(machine_id) > 128:
        raise ValueError(
            f"{what} {machine_id[:80]!r} cannot be a NATS subject token: "
            "use 1-128 characters without dots, spaces, '*' or '>'"
        )
    return machine_id


def machine(machine_id: str, kind: str) -> str:
    """``am.m.<id>.<kind>``, ``kind`` one of ``KINDS``."""
    return f"{PREFIX}.m.{machine_id}.{kind}"


def heartbeat(host_id: str) -> str:
    return f"{PREFIX}.hb.{host_id}"
