"""Where idempotency keys live: a mutation sent again with the same key runs at most once.

The default store belongs to the exposed machine object, so a new ``Server`` for the same machine
in the same process remembers what the old one ran. ``SqliteIdempotency`` keeps keys in a file and
survives a process restart. Any object with ``get`` and ``put`` (``IdempotencyStore``) will do,
so other transports (NATS hosting) reuse the same stores.
"""

from __future__ import annotations

import json
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._machine import Machine

if TYPE_CHECKING:
    import sqlite3

Scope = tuple[str, str, str]
"""``(machine id, principal name, client id)``: keys of different clients never collide."""


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a keyed mutation was and what it returned."""

    op: str
    states: tuple[str, ...]
    result: int


class IdempotencyStore(Protocol):
    """Remembers the result of each keyed mutation for a while (its time to live)."""

    def get(self, scope: Scope, key: str) -> Remembered | None: ...

    def put(self, scope: Scope, key: str, remembered: Remembered) -> None:
        """Remember a mutation that ran; durable stores commit before returning, since the
        server sends the result only after ``put``."""
        ...


class MemoryIdempotency:
    """Keys in memory: the most recent ``max_keys``, each for ``ttl`` seconds."""

    def __init__(
        self,
        max_keys: int = 4096,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_keys = max_keys
        self.ttl = ttl
        self._clock = clock
        self._keys: OrderedDict[tuple[Scope, str], tuple[float, Remembered]] = OrderedDict()

    def get(self, scope: Scope, key: str) -> Remembered | None:
        entry = self._keys.get((scope, key))
        if entry is None:
            return None
        if self._clock() - entry[0] > self.ttl:
            del self._keys[scope, key]
            return None
        return entry[1]

    def put(self, scope: Scope, key: str, remembered: Remembered) -> None:
        keys = self._keys
        keys[scope, key] = (self._clock(), remembered)
        keys.move_to_end((scope, key))
        while len(keys) > self.max_keys:
            keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


_BY_MACHINE: weakref.WeakKeyDictionary[Machine, MemoryIdempotency] = weakref.WeakKeyDictionary()


def machine_store(mach: Machine) -> MemoryIdempotency:
    """The default store: one per machine object, alive as long as the machine is."""
    store = _BY_MACHINE.get(mach)
    if store is None:
        store = _BY_MACHINE[mach] = MemoryIdempotency()
    return store


class SqliteIdempotency:
    """Keys in an SQLite file (stdlib ``sqlite3``), kept ``ttl`` seconds: a restarted server
    that opens the same file answers a resent mutation from its key instead of running it again.

    ``put`` commits. Whatever the application writes through ``connection`` in the same
    synchronous step as the mutation (its handlers) is committed atomically with the key, so a
    machine persisted that way never holds a mutation whose key was lost, or the reverse.
    """

    PURGE_EVERY = 256
    """Expired keys are deleted once per this many ``put`` calls."""

    def __init__(self, path: str | Path, ttl: float = 600.0) -> None:
        import sqlite3  # not every Python has it (Pyodide loads it separately)

        self.path = str(path)
        self.ttl = ttl
        self._puts = 0
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing committed
        db.execute(
            "CREATE TABLE IF NOT EXISTS am_rpc_keys ("
            " machine TEXT, principal TEXT, client TEXT, key TEXT,"
            " op TEXT, states TEXT, result INTEGER, at REAL,"
            " PRIMARY KEY (machine, principal, client, key))"
        )
        db.commit()
        self._db: sqlite3.Connection = db

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def get(self, scope: Scope, key: str) -> Remembered | None:
        row = self._db.execute(
            "SELECT op, states, result, at FROM am_rpc_keys"
            " WHERE machine = ? AND principal = ? AND client = ? AND key = ?",
            (*scope, key),
        ).fetchone()
        if row is None or time.time() - row[3] > self.ttl:
            return None
        op, states, result, _ = row
        return Remembered(op, tuple(json.loads(states)), int(result))

    def put(self, scope: Scope, key: str, remembered: Remembered) -> None:
        now = time.time()
        self._db.execute(
            "INSERT OR REPLACE INTO am_rpc_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*scope, key, remembered.op, json.dumps(remembered.states), remembered.result, now),
        )
        self._puts += 1
        if self._puts % self.PURGE_EVERY == 0:
            self._db.execute("DELETE FROM am_rpc_keys WHERE at < ?", (now - self.ttl,))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteIdempotency:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
