"""The stage a job is in: named for failures (a run's ``error_stage``), timed in the log, announced to a listener.

No thread is started here: in a worker process the listener forwards the stage to the parent, which does the
observing (the stage tag, heartbeats, "still building" lines, the hang watch) from outside the measuring process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Set on an exception that ended a job: the stage it escaped from (the summary and the run's error_stage agree).
FAILED_STAGE_ATTR = "blockbench_stage"


class Stages:
    """Names the stage in progress and logs how long each took; ``on_enter(name)`` runs as each stage starts."""

    def __init__(self, on_enter: Callable[[str], None] | None = None) -> None:
        self.current = "setup"
        self.on_enter = on_enter

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current = name
        if self.on_enter:
            self.on_enter(name)
        start = time.perf_counter()
        log.info("%s ...", name)
        yield
        log.info("%s: %.1f s", name, time.perf_counter() - start)


def mark_failed_stage(exc: BaseException, stage: str) -> None:
    """Record on ``exc`` the stage it ended the job in (kept if an inner stage set it already)."""
    if getattr(exc, FAILED_STAGE_ATTR, None):
        return
    try:
        setattr(exc, FAILED_STAGE_ATTR, stage)
    except (AttributeError, TypeError):  # an exception type without instance attributes
        pass


def failed_stage(exc: BaseException) -> str:
    """The stage ``exc`` ended its job in: the one recorded on it, else its own class's, else ``run``."""
    return getattr(exc, FAILED_STAGE_ATTR, None) or getattr(exc, "stage", "run")
