"""The tracker: MLflow reads and writes for one experiment, through an explicit client, under the store lock.

An explicit client (no global active run) keeps jobs in one process from mixing. Claims live here too, because a
claim is a read and a write in one critical section of the store lock: :meth:`Tracker.claim` decides whether a
config (by its hash) still needs a run and creates it, so two sweeps never both run it and a resumed sweep skips
what is done; :meth:`Tracker.reap_stale` ends the runs whose owners are gone first (:mod:`.liveness`).
"""

from __future__ import annotations

import logging
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blockbench import interrupts
from blockbench.errors import BlockbenchError, ConfigError
from blockbench.tracking.liveness import PROCESS_HEARTBEAT, Heartbeat, owner_gone, owner_tags
from blockbench.tracking.location import artifact_root_for, check_reachable, sqlite_path, ui_hint
from blockbench.tracking.lock import STORE_LOCK_TIMEOUT_S, store_lock
from blockbench.tracking.redaction import redact, redact_params, redacted
from blockbench.tracking.tags import CONFIG_HASH_TAG, HEARTBEAT_TAG, HOST_TAG, PARENT_TAG, PID_TAG, STAGE_TAG

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 6000

# MLflow 3's UI opens an experiment by its kind: without one it lands on a GenAI overview ("Traces: no data") and
# asks; a model-development experiment opens on its runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class StaleRunError(BlockbenchError):
    """This process's run was ended as stale by another process (it was silent too long); results not kept."""

    stage = "tracking"


@dataclass(frozen=True)
class Claim:
    """Outcome of :meth:`Tracker.claim`: a new run to log to, or the existing run that makes the job a skip."""

    run_id: str
    skipped: bool = False
    reason: str = ""


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


class Tracker:
    """One experiment in one tracking store; creates runs and logs to them, under the store's lock.

    ``heartbeat`` keeps this tracker's runs alive (:meth:`keep_alive`): the process-wide one unless given another.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        lock_timeout_s: float = STORE_LOCK_TIMEOUT_S,
        heartbeat: Heartbeat = PROCESS_HEARTBEAT,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.display_uri = redact(uri)
        self.heartbeat = heartbeat
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

    def keep_alive(self, run_id: str, interval_s: float) -> None:
        """Refresh the run's heartbeat every ``interval_s`` until it ends (lets other hosts see it is alive)."""
        self.heartbeat.add(self, run_id, interval_s)

    def run_holding(self, tag: str, value: str, finished_only: bool = True) -> str | None:
        """A FINISHED run (any run, with ``finished_only=False``) of this experiment whose ``tag`` is ``value``
        (e.g. one that stored these bytes), or None."""
        status = " and attributes.status = 'FINISHED'" if finished_only else ""
        with self.lock:
            page = self.client.search_runs([self.experiment_id], f"tags.`{tag}` = '{value}'{status}", max_results=1)
        return page[0].info.run_id if page else None

    def _search(self, filter_string: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # -- claims --

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

    # -- logging --

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in redact_params(params).items()]
        with self.lock:
            for i in range(0, len(items), 100):  # log_batch takes at most 100 params per call
                self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
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
        with redacted(path) as source:
            if source.is_dir():
                repo.log_artifacts(str(source), artifact_path)
            else:
                repo.log_artifact(str(source), artifact_path)

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
        self.heartbeat.remove(run_id)
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
        self.heartbeat.remove(run_id)
        self._terminate(run_id, status, end_time)

    def _terminate(self, run_id: str, status: str, end_time: float | None = None) -> None:
        with self.lock:
            self.set_tags(run_id, {"status": status.lower()})
            self.client.set_terminated(run_id, status, end_time=int(end_time * 1000) if end_time else None)

    def fail(self, run_id: str, exc: BaseException, stage: str, status: str = "FAILED") -> None:
        """End a run as FAILED (or KILLED) with the error and stage recorded; never raises, not even on Ctrl-C."""
        with interrupts.deferred():
            self.heartbeat.remove(run_id)
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
        """How to open this experiment's runs (:func:`~blockbench.tracking.location.ui_hint`)."""
        return ui_hint(self.uri, self.experiment_id)
