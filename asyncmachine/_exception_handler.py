"""The default handler of the built-in ``Exception`` state."""

from __future__ import annotations

from ._log import CHANGES
from ._machine import Event
from ._transition import ERR_ARGS_KEY, ErrArgs


class ExceptionHandler:
    """A mixin for handler objects: ``ExceptionState`` logs added errors at ``CHANGES``.

    ``add_err(err)`` logs ``[error] <err>`` and the trace on the next lines. Errors raised by
    handlers and tasks are logged by the machine itself when they happen, so they are not logged
    twice (docs/semantics.md#errors).
    """

    def ExceptionState(self, e: Event) -> None:
        """Log the error this ``Exception`` activation carries."""
        err_args = e.args.get(ERR_ARGS_KEY)
        if not isinstance(err_args, ErrArgs) or err_args.logged:
            return
        msg = f"[error] {err_args.err}"
        if err_args.trace:
            msg += "\n" + err_args.trace.rstrip()
        e.machine._log(CHANGES, msg)
