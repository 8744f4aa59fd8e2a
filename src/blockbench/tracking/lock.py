"""The store lock: one writer at a time per tracking store.

MLflow's sqlite store fails under concurrent writers ("database is locked", racing schema migrations on a fresh
file). Every store access of a tracker on an sqlite URI holds a file lock beside the database (``mlflow.db.lock``)
plus an in-process lock shared with the heartbeat thread. Tracking servers (``http(s)://``) serialize writes
themselves and get only the in-process lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

from filelock import FileLock, Timeout

from blockbench.errors import BlockbenchError
from blockbench.tracking.location import sqlite_path

STORE_LOCK_TIMEOUT_S = 600.0


class StoreLock:
    """Serializes access to one tracking store: threads of this process, and processes through a file lock."""

    def __init__(self, lock_file: Path | None, timeout_s: float) -> None:
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(str(lock_file), timeout=timeout_s, thread_local=False) if lock_file else None
        self.timeout_s = timeout_s

    def __enter__(self) -> StoreLock:
        self._thread_lock.acquire()
        if self._file_lock is not None:
            try:
                self._file_lock.acquire()
            except Timeout as exc:
                self._thread_lock.release()
                raise BlockbenchError(
                    f"the tracking store has been locked by another process for over {self.timeout_s:.0f} s "
                    f"({self._file_lock.lock_file}); is a sweep stuck?"
                ) from exc
            except BaseException:
                self._thread_lock.release()
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._file_lock is not None:
                self._file_lock.release()
        finally:
            self._thread_lock.release()


_store_locks: dict[str, StoreLock] = {}
_store_locks_guard = threading.Lock()


def store_lock(uri: str, timeout_s: float = STORE_LOCK_TIMEOUT_S) -> StoreLock:
    """The process-wide lock for ``uri`` (one per store, so the heartbeat thread and jobs share it)."""
    db_path = sqlite_path(uri)
    lock_file = db_path.with_name(db_path.name + ".lock") if db_path else None
    with _store_locks_guard:
        if uri not in _store_locks:
            _store_locks[uri] = StoreLock(lock_file, timeout_s)
        return _store_locks[uri]
