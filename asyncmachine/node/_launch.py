"""What a supervisor tells a worker process it starts: where to report, who it is, its secret.

The supervisor passes them in the environment; ``run_worker`` also takes them as command-line
options (handy to start a worker by hand against a running supervisor).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENV_SUPERVISOR = "AM_NODE_SUPERVISOR"
"""The supervisor's RPC URL (``ws://127.0.0.1:PORT``)."""
ENV_WORKER_ID = "AM_NODE_WORKER_ID"
ENV_SECRET = "AM_NODE_SECRET"
"""The per-worker secret the worker authenticates with, both ways."""


@dataclass(frozen=True, slots=True)
class Launch:
    supervisor_url: str
    worker_id: str
    secret: str

    def env(self) -> dict[str, str]:
        return {
            ENV_SUPERVISOR: self.supervisor_url,
            ENV_WORKER_ID: self.worker_id,
            ENV_SECRET: self.secret,
        }

    @classmethod
    def parse(cls, argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Launch:
        """From ``--supervisor URL --id ID --secret S``, each defaulting to the environment.
        Raises ``ValueError`` naming what is missing."""
        parser = argparse.ArgumentParser(prog="worker", add_help=False)
        parser.add_argument("--supervisor", default=environ.get(ENV_SUPERVISOR))
        parser.add_argument("--id", default=environ.get(ENV_WORKER_ID))
        parser.add_argument("--secret", default=environ.get(ENV_SECRET))
        opts, _ = parser.parse_known_args(list(argv))
        missing = [
            f"{flag} (or ${env})"
            for flag, env, value in (
                ("--supervisor", ENV_SUPERVISOR, opts.supervisor),
                ("--id", ENV_WORKER_ID, opts.id),
                ("--secret", ENV_SECRET, opts.secret),
            )
            if not value
        ]
        if missing:
            raise ValueError("a worker needs " + ", ".join(missing))
        return cls(opts.supervisor, opts.id, opts.secret)
