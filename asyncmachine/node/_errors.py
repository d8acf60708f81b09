"""The pool's errors, carried by the ``Err*`` states of the roles."""

from __future__ import annotations

from .._errors import AsyncMachineError


class WorkerError(AsyncMachineError):
    """A worker failed: it crashed, hung, did not start, erred too often, or was lost."""


class PoolError(AsyncMachineError):
    """The pool cannot keep ``min`` workers ready."""


class SupervisorError(AsyncMachineError):
    """No supervisor could be reached, or the one in use went away."""
