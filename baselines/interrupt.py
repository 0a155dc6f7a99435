"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM, shared by the trainer, the population and RL runs.

Inside :func:`stop_on_signals` the first such signal only asks the run to stop: every run checks
:func:`requested` at each step boundary, stops there with ``stopped_because: "interrupted"``, saves its
resume state and summary and releases its folder's lock, so ``--resume`` continues it. A phase that can take
longer than a second between two steps (an evaluation, running parity's length test, the analyses and figures
at the end of a run, a score card's tests and timescale drives) calls :func:`check` in its loops, which raises
:class:`Interrupted`: the phase is abandoned (nothing of it written) and the run stops as at a step. A second signal
ends the process at once, by the signal's default action (the state on disk is complete at every moment:
``last/`` is replaced in one rename). Outside the context nothing changes: a library caller's own
handlers, or Python's KeyboardInterrupt, apply.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """What :func:`stop_on_signals` yields: the signal that asked the run to stop, once one has."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def exit_code(self) -> int | None:
        """The shell's code for a process ended by the signal (130 for SIGINT, 143 for SIGTERM), or None."""
        return None if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str | None:
        """``"SIGINT"`` or ``"SIGTERM"``, or None."""
        return None if self.signum is None else signal.Signals(self.signum).name


_current: StopRequest | None = None


class Interrupted(Exception):
    """Raised by :func:`check` when a signal asked the running command to stop in the middle of a phase."""

    def __init__(self) -> None:
        super().__init__(f"stopped by {_current.name if _current is not None else 'a signal'}")


def requested() -> bool:
    """Whether a signal asked the running command to stop (always False outside :func:`stop_on_signals`)."""
    return _current is not None and _current.signum is not None


def check() -> None:
    """Raise :class:`Interrupted` if a signal asked the running command to stop (see the module doc); call it in
    every loop of a phase that can take more than a second."""
    if requested():
        raise Interrupted()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM while inside (see the module doc); the previous handlers come back on exit.
    Call it from the main thread (Python delivers signals there)."""
    global _current
    request = StopRequest()

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.signum is not None:  # the second signal: end now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        request.signum = signum

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    outer, _current = _current, request
    try:
        yield request
    finally:
        _current = outer
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["SIGNALS", "Interrupted", "StopRequest", "check", "requested", "stop_on_signals"]
