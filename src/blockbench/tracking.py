"""MLflow logging through an explicit client (no global active run, so jobs in one process never mix).

Besides logging, this module is what makes the store trustworthy when sweeps run concurrently, crash or resume:

* **Store lock** — MLflow's sqlite store fails under concurrent writers ("database is locked", racing schema
  migrations on a fresh file). Every store access of a :class:`Tracker` on an sqlite URI holds a file lock
  beside the database (``mlflow.db.lock``) plus an in-process lock for the heartbeat thread. Tracking servers
  (``http(s)://``) serialize writes themselves and get only the in-process lock.
* **Owner and heartbeat** — every run records the host, pid and pid start time of the process that owns it, and
  a heartbeat tag refreshed from a background thread. A RUNNING run whose owner is gone (same host: the pid is
  dead, a zombie or reused; other host: no heartbeat for ``stale_after_s``) is *stale*: :meth:`Tracker.reap_stale`
  ends it KILLED so a re-run redoes the config.
* **Claims** — :meth:`Tracker.claim` decides under the lock whether a config (by its hash) still needs a run and
  creates it in the same critical section, so two sweeps never both run it and a resumed sweep skips what is done.
* **Redaction** — params, tags, text artifacts and printed URIs pass through :func:`redact`: credentials in URIs
  (``user:pass@``), secret-looking query parameters, values of secret environment variables and AWS key ids
  never reach the store.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
from filelock import FileLock, Timeout

from blockbench import interrupts
from blockbench.errors import BlockbenchError, ConfigError

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000

HOST_TAG = "blockbench.host"
PID_TAG = "blockbench.pid"
PID_STARTED_TAG = "blockbench.pid_started"
HEARTBEAT_TAG = "blockbench.heartbeat"
STAGE_TAG = "blockbench.stage"
CONFIG_HASH_TAG = "blockbench.config_hash"
SWEEP_TAG = "blockbench.sweep"  # "parent" on a sweep's parent run

STORE_LOCK_TIMEOUT_S = 600.0
REACHABLE_TIMEOUT_S = 5.0
_PID_START_TOLERANCE_S = 1.0


class StaleRunError(BlockbenchError):
    """This process's run was ended as stale by another process (it was silent too long); results not kept."""

    stage = "tracking"


# --- redaction -------------------------------------------------------------------------------------------------

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|connection[_-]?string",
    re.IGNORECASE,
)
_URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][a-zA-Z0-9_.-]*(?:token|password|secret|signature|sig|key|credential)[a-zA-Z0-9_.-]*=)"
    r"[^&;\s'\"]+",
    re.IGNORECASE,
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".txt", ".csv", ".log", ".md", ".cfg", ".ini", ".toml"}
_MAX_REDACTED_FILE_BYTES = 64 * 2**20
_NOT_SECRETS = {"true", "false", "none", "null", "yes", "no"}


def _environ() -> dict[str, str]:
    """A copy of ``os.environ``, retried: another thread (MLflow's telemetry) may remove a variable mid-copy."""
    for _ in range(10):
        try:
            return dict(os.environ)
        except KeyError:
            continue
    return dict(os.environ)


def _secret_env_values() -> list[str]:
    """Values of environment variables whose names say they are secrets (longest first, so overlaps redact)."""
    values = {
        value
        for name, value in _environ().items()
        if _SECRET_NAME.search(name) and len(value) >= 4 and value.lower() not in _NOT_SECRETS
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with URI credentials, secret query values, secret env values and AWS key ids replaced by ***."""
    text = _URI_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    for value in _secret_env_values():
        text = text.replace(value, REDACTED)
    return text


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """Params with secret-named keys blanked and every value passed through :func:`redact`."""
    return {key: REDACTED if _SECRET_NAME.search(key) else redact(str(value)) for key, value in params.items()}


def _is_text(path: Path) -> bool:
    return path.suffix.lower() in _TEXT_SUFFIXES and path.stat().st_size <= _MAX_REDACTED_FILE_BYTES


def _needs_redaction(path: Path) -> bool:
    if path.is_dir():
        return any(_needs_redaction(p) for p in path.rglob("*") if p.is_file())
    if not _is_text(path):
        return False
    text = path.read_text(errors="replace")
    return redact(text) != text


def _redacted_copy(path: Path, into: Path) -> Path:
    """Copy of a file or folder under ``into`` with every text file redacted (binary files copied as they are)."""
    target = into / path.name
    if path.is_dir():
        shutil.copytree(path, target, symlinks=False)
        files = [p for p in target.rglob("*") if p.is_file()]
    else:
        shutil.copyfile(path, target)
        files = [target]
    for file in files:
        if _is_text(file):
            file.write_text(redact(file.read_text(errors="replace")))
    return target


# --- flattening and store location ---------------------------------------------------------------------------


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}`` with lists kept as one value."""
    flat: dict[str, str] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if urlparse(uri).scheme == "sqlite" else None


def artifact_root_for(uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database file (never into the working directory)."""
    db_path = sqlite_path(uri)
    if db_path is not None:
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
        return (db_path.parent / "mlartifacts" / folder).as_uri()
    return None


def check_reachable(uri: str) -> None:
    """Fail fast with one message when a tracking server does not answer (MLflow itself retries for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=REACHABLE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"tracking.uri={redact(uri)!r} cannot be reached ({exc.strerror or exc}); start the tracking server, "
            "fix the URI, or use the default sqlite store"
        ) from exc


# --- locking ----------------------------------------------------------------------------------------------------


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


# --- run ownership ----------------------------------------------------------------------------------------------


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


class _Heartbeat:
    """One daemon thread per process refreshing the heartbeat tag of every run this process owns.

    :meth:`remove` waits for a beat in flight, so no heartbeat lands after a run has ended; it must therefore
    never be called while holding the store lock (the beat it waits for may be waiting for that lock).
    """

    def __init__(self) -> None:
        self._runs: dict[str, tuple[Tracker, float, float]] = {}  # run id -> (tracker, interval, next due)
        self._guard = threading.Lock()
        self._beating = threading.Lock()  # held by the thread while it writes beats
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, tracker: Tracker, run_id: str, interval_s: float) -> None:
        with self._guard:
            self._runs[run_id] = (tracker, interval_s, time.monotonic() + interval_s)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="blockbench-heartbeat", daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, run_id: str) -> None:
        with self._guard:
            registered = self._runs.pop(run_id, None) is not None
        if registered:
            with self._beating:
                pass

    def _loop(self) -> None:
        while True:
            with self._guard:
                due = min((entry[2] for entry in self._runs.values()), default=time.monotonic() + 60)
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            with self._beating:
                with self._guard:
                    beats = [(run_id, entry) for run_id, entry in self._runs.items() if entry[2] <= now]
                    for run_id, (tracker, interval, _) in beats:
                        self._runs[run_id] = (tracker, interval, now + interval)
                for run_id, (tracker, _, _) in beats:
                    try:
                        tracker.set_tags(run_id, {HEARTBEAT_TAG: f"{time.time():.3f}"})
                    except Exception as exc:  # noqa: BLE001 - a missed beat must never kill the job
                        log.warning("tracking: heartbeat for run %s failed: %s", run_id, redact(str(exc)))


_heartbeat = _Heartbeat()


@dataclass(frozen=True)
class Claim:
    """Outcome of :meth:`Tracker.claim`: a new run to log to, or the existing run that makes the job a skip."""

    run_id: str
    skipped: bool = False
    reason: str = ""


# --- the tracker ------------------------------------------------------------------------------------------------


# MLflow 3's UI opens an experiment by its kind: without one it lands on a GenAI overview ("Traces: no data") and
# asks; a model-development experiment opens on its runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class Tracker:
    """One experiment in one tracking store; creates runs and logs to them, under the store's lock."""

    def __init__(self, uri: str, experiment: str, lock_timeout_s: float = STORE_LOCK_TIMEOUT_S) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.display_uri = redact(uri)
        try:
            check_reachable(uri)
            db_path = sqlite_path(uri)
            if db_path is not None:
                db_path.parent.mkdir(parents=True, exist_ok=True)
            self.lock = store_lock(uri, lock_timeout_s)
            with self.lock:  # creating the client may run schema migrations on a fresh database
                self.client = MlflowClient(tracking_uri=uri)
                self.client.search_experiments(max_results=1)  # reach the store now: its failures are the URI's
        except ConfigError:
            raise
        except Exception as exc:  # unreachable server, unwritable database, unsupported scheme, ...
            raise ConfigError(
                f"tracking.uri={self.display_uri!r} cannot be used: {type(exc).__name__}: {redact(str(exc))}"
            ) from exc
        try:
            with self.lock:
                self.experiment_id = self._experiment_id(experiment)
        except ConfigError:
            raise
        except Exception as exc:  # a name the store refuses
            raise ConfigError(
                f"tracking.experiment={experiment!r} cannot be used in {self.display_uri}: {type(exc).__name__}: "
                f"{redact(str(exc))}"
            ) from exc

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                self.client.create_experiment(name, artifact_location=artifact_root_for(self.uri, name))
            except MlflowException:  # another process created it first (e.g. a tracking server shared by hosts)
                pass
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise ConfigError(f"tracking.experiment={name!r} could not be created in {self.display_uri}")
        if EXPERIMENT_KIND_TAG not in found.tags:  # a kind someone chose in the UI is kept
            self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return found.experiment_id

    # -- runs --

    def start_run(
        self,
        run_name: str | None,
        tags: Mapping[str, str],
        parent_run_id: str | None = None,
        start_time: float | None = None,
    ) -> str:
        """Create a RUNNING run owned by this process (owner tags and heartbeat included); ``start_time`` (epoch
        seconds) for a run measured earlier elsewhere (:mod:`blockbench.record`)."""
        all_tags = {**tags, **owner_tags()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        with self.lock:
            run = self.client.create_run(
                self.experiment_id,
                start_time=int(start_time * 1000) if start_time is not None else None,
                run_name=redact(run_name) if run_name else None,
                tags={k: redact(str(v)) for k, v in all_tags.items()},
            )
        return run.info.run_id

    def claim(
        self,
        config_hash: str,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None,
        skip_done: bool,
        stale_after_s: float,
    ) -> Claim:
        """Start the run for a config unless the experiment already has it done or in progress (atomic).

        With ``skip_done``, a FINISHED run with the same config hash, or a RUNNING one whose owner is alive,
        makes this a skip. Stale runs are ended first, so a config whose process died is run again.
        """
        with self.lock:
            self.reap_stale(stale_after_s)
            if skip_done:
                for run in self._search(f"tags.`{CONFIG_HASH_TAG}` = '{config_hash}'"):
                    if run.info.status == "FINISHED":
                        return Claim(run.info.run_id, skipped=True, reason=f"already FINISHED as run {run.info.run_id}")
                    if run.info.status == "RUNNING":
                        owner = f"pid {run.data.tags.get(PID_TAG)} on {run.data.tags.get(HOST_TAG)}"
                        return Claim(
                            run.info.run_id, skipped=True, reason=f"RUNNING as run {run.info.run_id} ({owner})"
                        )
            run_id = self.start_run(run_name, {**tags, CONFIG_HASH_TAG: config_hash}, parent_run_id)
        return Claim(run_id)

    def finished_config_hashes(self) -> set[str]:
        """Config hashes the experiment has FINISHED runs of (what a resumed sweep skips)."""
        runs = self._search("attributes.status = 'FINISHED'")
        return {h for run in runs if (h := run.data.tags.get(CONFIG_HASH_TAG))}

    def reap_stale(self, stale_after_s: float) -> list[str]:
        """End every RUNNING run of the experiment whose owning process is gone as KILLED; their ids."""
        reaped = []
        with self.lock:
            now = time.time()
            for run in self._search("attributes.status = 'RUNNING'"):
                why = owner_gone(run.data.tags, run.info.start_time, now, stale_after_s)
                if why is None:
                    continue
                stage = run.data.tags.get(STAGE_TAG, "unknown")
                log.warning(
                    "tracking: run %s (%s) is stale: %s; marking it KILLED", run.info.run_id, run.info.run_name, why
                )
                self.set_tags(run.info.run_id, {"status": "killed", "error": f"stale: {why}", "error_stage": stage})
                last_seen = float(run.data.tags.get(HEARTBEAT_TAG, run.info.start_time / 1000))
                self.client.set_terminated(run.info.run_id, "KILLED", end_time=int(last_seen * 1000))
                reaped.append(run.info.run_id)
        return reaped

    def _search(self, filter_string: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def run_holding(self, tag: str, value: str, finished_only: bool = True) -> str | None:
        """A FINISHED run (any run, with ``finished_only=False``) of this experiment whose ``tag`` is ``value``
        (e.g. one that stored these bytes), or None."""
        status = " and attributes.status = 'FINISHED'" if finished_only else ""
        with self.lock:
            page = self.client.search_runs([self.experiment_id], f"tags.`{tag}` = '{value}'{status}", max_results=1)
        return page[0].info.run_id if page else None

    def keep_alive(self, run_id: str, interval_s: float) -> None:
        """Refresh the run's heartbeat every ``interval_s`` until it ends (lets other hosts see it is alive)."""
        _heartbeat.add(self, run_id, interval_s)

    # -- logging --

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in redact_params(params).items()]
        with self.lock:
            for i in range(0, len(items), 100):  # log_batch takes at most 100 params per call
                self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        with self.lock:
            for i in range(0, len(items), 1000):
                self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        with self.lock:
            self.client.log_batch(run_id, tags=[RunTag(k, redact(str(v))) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        """Log a file or a folder's contents; text files go through :func:`redact` first."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with self.lock:
            artifact_uri = self.client.get_run(run_id).info.artifact_uri
        # tracking_uri: an mlflow-artifacts:/ root (a server with --serve-artifacts) is resolved against this
        # store's server, not MLflow's global default URI
        repo = get_artifact_repository(artifact_uri, tracking_uri=self.uri)  # uploads need no store lock
        with self._redacted(path) as source:
            if source.is_dir():
                repo.log_artifacts(str(source), artifact_path)
            else:
                repo.log_artifact(str(source), artifact_path)

    @contextmanager
    def _redacted(self, path: Path) -> Iterator[Path]:
        if not _needs_redaction(path):
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="blockbench-redacted-") as tmp:
            yield _redacted_copy(path, Path(tmp))

    def log_text(self, run_id: str, text: str, name: str) -> None:
        """``text`` as the artifact ``name`` (``folder/file`` puts it in that artifact folder)."""
        folder, _, filename = name.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="blockbench-text-") as tmp:
            path = Path(tmp) / filename
            path.write_text(text)
            self.log_artifact(run_id, path, folder or None)

    # -- ending --

    def finish(self, run_id: str) -> None:
        """End the run FINISHED, unless another process ended it as stale meanwhile (then raise)."""
        _heartbeat.remove(run_id)
        with self.lock:
            status = self.client.get_run(run_id).info.status
            if status != "RUNNING":
                raise StaleRunError(
                    f"run {run_id} was ended as {status} by another process while this one was silent; "
                    "its results are not kept (the config is re-run by the next sweep)"
                )
            self._terminate(run_id, "FINISHED")

    def end(self, run_id: str, status: str, end_time: float | None = None) -> None:
        """Set the ``status`` tag and terminate the run with MLflow status ``status`` (at ``end_time``, epoch
        seconds, for a run measured earlier)."""
        _heartbeat.remove(run_id)
        self._terminate(run_id, status, end_time)

    def _terminate(self, run_id: str, status: str, end_time: float | None = None) -> None:
        with self.lock:
            self.set_tags(run_id, {"status": status.lower()})
            self.client.set_terminated(run_id, status, end_time=int(end_time * 1000) if end_time else None)

    def fail(self, run_id: str, exc: BaseException, stage: str, status: str = "FAILED") -> None:
        """End a run as FAILED (or KILLED) with the error and stage recorded; never raises, not even on Ctrl-C."""
        with interrupts.deferred():
            _heartbeat.remove(run_id)
            try:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.set_tags(run_id, {"status": status.lower(), "error": message[:5000], "error_stage": stage})
                self.log_text(run_id, "".join(traceback.format_exception(exc)), "error.txt")
            except Exception:
                log.exception("tracking: could not record the error on run %s", run_id)
            finally:
                try:
                    with self.lock:
                        self.client.set_terminated(run_id, status)
                except Exception:
                    log.exception("tracking: could not end run %s; the next sweep will reap it as stale", run_id)

    def ui_command(self) -> str:
        return ui_hint(self.uri, self.experiment_id)


# MLflow 3's UI shows the GenAI view unless told otherwise (a per-browser setting); this opens the runs.
RUNS_VIEW = "?workflowType=machine_learning"


def ui_hint(uri: str, experiment_id: str | None = None) -> str:
    """How to look at a store's runs: a server store is already a UI; a local one needs ``mlflow ui``."""
    shown = redact(uri)
    page = f"/#/experiments/{experiment_id}{RUNS_VIEW}" if experiment_id else ""
    if urlparse(uri).scheme in ("http", "https"):
        return f"open {shown.rstrip('/')}{page} in a browser"
    return f"mlflow ui --backend-store-uri {shown}" + (f", then open http://127.0.0.1:5000{page}" if page else "")
