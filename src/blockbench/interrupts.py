"""Ctrl-C and SIGTERM: both stop the current job as KILLED and end the process cleanly.

SIGINT already raises :class:`KeyboardInterrupt`; SIGTERM (what ``kill``, schedulers and container runtimes send)
would end Python without any cleanup, leaving the MLflow run RUNNING. :func:`handle_sigterm` turns it into
:class:`Terminated`, a ``KeyboardInterrupt``, so one code path handles both. :func:`deferred` keeps a second
Ctrl-C from cutting the cleanup (ending runs as KILLED) short.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

SIGINT_EXIT = 128 + signal.SIGINT
SIGTERM_EXIT = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM received."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def handle_sigterm() -> None:
    """Route SIGTERM into :class:`Terminated` (signal handlers can only be set from the main thread)."""
    if _in_main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code(exc: KeyboardInterrupt) -> int:
    """The shell convention 128 + signal number: 130 for Ctrl-C, 143 for SIGTERM."""
    return SIGTERM_EXIT if isinstance(exc, Terminated) else SIGINT_EXIT


@contextmanager
def deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM for the duration (cleanup that must finish once a stop is under way)."""
    if not _in_main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        log.warning("%s received while cleaning up; finishing the cleanup first", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
