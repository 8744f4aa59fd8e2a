"""Liveness: who owns a RUNNING run, whether that process is still alive, and the heartbeat that says it is.

Every run records the host, pid and pid start time of the process that owns it, and a heartbeat tag refreshed from
a background thread. A RUNNING run whose owner is gone (same host: the pid is dead, a zombie or reused; other host:
no heartbeat for ``stale_after_s``) is *stale*, and the next sweep ends it and redoes its config. Without this, a
crashed or killed job would leave its config looking "in progress" forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import psutil

from blockbench.tracking.redaction import redact
from blockbench.tracking.tags import HEARTBEAT_TAG, HOST_TAG, PID_STARTED_TAG, PID_TAG

log = logging.getLogger(__name__)

_PID_START_TOLERANCE_S = 1.0


def owner_tags() -> dict[str, str]:
    """Who runs this process: recorded on every run so another process can tell when it has died."""
    now = time.time()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PID_STARTED_TAG: f"{psutil.Process().create_time():.3f}",
        HEARTBEAT_TAG: f"{now:.3f}",
    }


def owner_gone(tags: Mapping[str, str], start_time_ms: int, now: float, stale_after_s: float) -> str | None:
    """Why the process that owns a RUNNING run is gone, or None if it may still be alive.

    Same host: the recorded pid is checked directly (dead, zombie, or a different process reusing the pid).
    Another host: its heartbeat must be younger than ``stale_after_s``. Runs without owner tags were not
    created by blockbench and are never judged.
    """
    if PID_TAG not in tags:
        return None
    pid, host = int(tags[PID_TAG]), tags.get(HOST_TAG, "")
    if host == socket.gethostname():
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return f"process {pid} on {host} has exited"
            if abs(proc.create_time() - float(tags.get(PID_STARTED_TAG, 0))) > _PID_START_TOLERANCE_S:
                return f"process {pid} on {host} has exited (the pid now belongs to another process)"
        except psutil.NoSuchProcess:
            return f"process {pid} on {host} has exited"
        except psutil.AccessDenied:
            return None
        return None
    heartbeat = float(tags.get(HEARTBEAT_TAG, start_time_ms / 1000))
    silent = now - heartbeat
    if silent > stale_after_s:
        return f"process {pid} on {host} has not sent a heartbeat for {silent:.0f} s (limit {stale_after_s:.0f} s)"
    return None


class TagWriter(Protocol):
    """What the heartbeat writes through (a :class:`~blockbench.tracking.store.Tracker`, under its store lock)."""

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...


@dataclass
class _KeptAlive:
    writer: TagWriter
    interval_s: float
    due: float  # time.monotonic() of the next beat
    beats: int = 0  # beats written so far


class Heartbeat:
    """A daemon thread refreshing the heartbeat tag of every run this process keeps alive.

    The thread starts with the first run and stops once no run is left, so :meth:`join` proves that no beat
    follows. :meth:`remove` waits for a beat in flight, so no heartbeat lands after a run has ended; it must
    therefore never be called while holding the store lock (the beat it waits for may be waiting for that lock).
    """

    def __init__(self) -> None:
        self._runs: dict[str, _KeptAlive] = {}
        self._guard = threading.Condition()  # guards the fields; notified after each round of beats
        self._beating = threading.Lock()  # held by the thread while it writes beats
        self._wake = threading.Event()  # the runs changed: recompute when the next beat is due
        self._thread: threading.Thread | None = None
        self._running = False

    def add(self, writer: TagWriter, run_id: str, interval_s: float) -> None:
        """Beat ``run_id`` every ``interval_s`` until :meth:`remove` (starting the thread if it is not running)."""
        with self._guard:
            self._runs[run_id] = _KeptAlive(writer, interval_s, time.monotonic() + interval_s)
            if not self._running:
                self._running = True
                self._thread = threading.Thread(target=self._loop, name="blockbench-heartbeat", daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, run_id: str) -> None:
        """Stop beating ``run_id``; on return no beat of it is being written or will be."""
        with self._guard:
            registered = self._runs.pop(run_id, None) is not None
        if registered:
            self._wake.set()  # the thread stops at once when this was its last run
            with self._beating:
                pass

    def wait_for_beats(self, run_id: str, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` beats of ``run_id`` have been written; whether they were within ``timeout_s``."""

        def written() -> bool:
            kept = self._runs.get(run_id)
            return kept is not None and kept.beats >= count

        with self._guard:
            return self._guard.wait_for(written, timeout_s)

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to stop (it does once no run is left to keep alive); whether it has."""
        with self._guard:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    def _loop(self) -> None:
        while True:
            self._wake.clear()  # before reading the runs: a change after this wakes the wait below
            with self._guard:
                if not self._runs:
                    self._running = False
                    return
                due = min(kept.due for kept in self._runs.values())
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._beat_due()

    def _beat_due(self) -> None:
        """Write one beat for every run whose beat is due."""
        with self._beating:
            now = time.monotonic()
            with self._guard:
                due = [(run_id, kept) for run_id, kept in self._runs.items() if kept.due <= now]
                for _, kept in due:
                    kept.due = now + kept.interval_s
            written = []
            for run_id, kept in due:
                try:
                    kept.writer.set_tags(run_id, {HEARTBEAT_TAG: f"{time.time():.3f}"})
                    written.append(kept)
                except Exception as exc:  # noqa: BLE001 - a missed beat must never kill the job
                    log.warning("tracking: heartbeat for run %s failed: %s", run_id, redact(str(exc)))
            with self._guard:
                for kept in written:
                    kept.beats += 1
                self._guard.notify_all()


PROCESS_HEARTBEAT = Heartbeat()  # the one every tracker of this process uses unless given another
