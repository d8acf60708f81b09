"""The default handler of the built-in ``Exception`` state."""

from __future__ import annotations

from ._log import LogLevel
from ._transition import ERR_ARGS_KEY, ErrArgs, Event


class ExceptionHandler:
    """A mixin for handler objects: ``ExceptionState`` logs the error at ``CHANGES`` (§8).

    A plain error logs ``[error] <err>``; one raised by a handler logs
    ``[error:<mutation type>] <called states> (<err>)``. The trace follows on the next lines.
    """

    def ExceptionState(self, e: Event) -> None:
        err_args = e.args.get(ERR_ARGS_KEY)
        if not isinstance(err_args, ErrArgs):
            return
        mach = e.machine
        if err_args.panic is not None:
            mut = err_args.panic.transition.mutation
            msg = f"[error:{mut.type}] {' '.join(err_args.panic.called_states)} ({err_args.err})"
        else:
            msg = f"[error] {err_args.err}"
        if err_args.trace:
            msg += "\n" + err_args.trace.rstrip()
        mach._log(LogLevel.CHANGES, msg)
