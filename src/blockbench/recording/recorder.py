"""Where a job's run is recorded: an MLflow store (:class:`MlflowRecorder`) or, with tracking off, the job folder's
``run.json`` (:class:`RunFileRecorder`), logged into a store later by ``blockbench-record``.

Both take the same calls in the same order — :meth:`Recorder.begin` (claim the run, or learn it is already
done), :meth:`~Recorder.stage` as each stage starts, then :meth:`~Recorder.finish` or :meth:`~Recorder.fail` — so a
job's status is derived in one place and every run ends FINISHED, FAILED or KILLED with its stage recorded.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbench.config.schema import RunConfig
from blockbench.measure import latencies
from blockbench.measure import metric_names as names
from blockbench.recording.artifacts import drop_logged_files, log_run_files
from blockbench.recording.files import write_run_file
from blockbench.recording.layout import TRIALS_DIR, TRIALS_FILE, WORKER_LOG
from blockbench.recording.models import engine_file, log_measurement, record_engine
from blockbench.recording.ui import describe_run
from blockbench.tracking import CONFIG_HASH_TAG, HEARTBEAT_TAG, STAGE_TAG, Tracker

log = logging.getLogger(__name__)


@dataclass
class RunIdentity:
    """What names a run before it starts: its name, tags and config hash, and where it belongs."""

    name: str
    tags: dict[str, str]
    config_hash: str
    parent_run_id: str | None = None


@dataclass
class Outcome:
    """What a run ends with: metrics, tags, parameters added by the measurement, and the engine's files."""

    metrics: dict[str, float]
    tags: dict[str, str]
    params: dict[str, str]
    engine_files: list[Path]
    failed: bool = False  # measured and kept, then failed (benchmark.parity=fail)
    trial_metrics: list[dict[str, float]] = field(default_factory=list)  # benchmark.trials >= 2: step = trial


class Recorder(ABC):
    """One job's run, wherever it is kept."""

    run_id: str | None = None
    experiment_id: str | None = None

    def __init__(self, config: RunConfig, identity: RunIdentity, work: Path) -> None:
        self.config = config
        self.identity = identity
        self.work = work
        self.started = time.time()

    @abstractmethod
    def begin(self, params: Mapping[str, str], fingerprint: Mapping[str, Any], skip_done: bool) -> str | None:
        """Claim the run and log its config; the reason it is skipped (already done, or running elsewhere) or
        None."""

    def stage(self, name: str) -> None:  # noqa: B027 - optional: only a store shows a live run's stage
        """A stage started."""

    @abstractmethod
    def finish(self, outcome: Outcome) -> float | None:
        """Record the outcome and end the run (FAILED when ``outcome.failed``); MiB of artifacts it stored in a
        store (None where there is no store)."""

    @abstractmethod
    def fail(self, exc: BaseException, stage: str, killed: bool) -> None:
        """End the run FAILED (KILLED when ``killed``) with the error and its stage; never raises."""


class MlflowRecorder(Recorder):
    """The run in an MLflow store, with the stage and a heartbeat kept current while it executes."""

    def __init__(self, config: RunConfig, identity: RunIdentity, work: Path) -> None:
        super().__init__(config, identity, work)
        self.tracker = Tracker(config.tracking.uri, config.tracking.experiment)
        self.experiment_id = self.tracker.experiment_id
        self.params: dict[str, str] = {}

    def begin(self, params: Mapping[str, str], fingerprint: Mapping[str, Any], skip_done: bool) -> str | None:
        claim = self.tracker.claim(
            self.identity.config_hash,
            self.identity.name,
            self.identity.tags,
            self.identity.parent_run_id,
            skip_done=skip_done,
            stale_after_s=self.config.run.stale_after_s,
        )
        self.run_id = claim.run_id
        if claim.skipped:
            return claim.reason
        self.tracker.keep_alive(claim.run_id, self.config.run.heartbeat_s)
        self.params = dict(params)
        self.tracker.log_params(claim.run_id, params)
        self.tracker.log_text(claim.run_id, json.dumps(fingerprint, indent=2, sort_keys=True), "fingerprint.json")
        return None

    def stage(self, name: str) -> None:
        if self.run_id:
            self.tracker.set_tags(self.run_id, {STAGE_TAG: name, HEARTBEAT_TAG: f"{time.time():.3f}"})

    def finish(self, outcome: Outcome) -> float:
        assert self.run_id is not None
        tracker, tracking = self.tracker, self.config.tracking
        tracker.log_params(self.run_id, outcome.params)
        params, tags = {**self.params, **outcome.params}, {**self.identity.tags, **outcome.tags}
        model = record_engine(
            tracker, self.run_id, self.identity.name, params, tags, outcome.engine_files, tracking, self.work
        )
        log_measurement(tracker, self.run_id, outcome.metrics, model)
        for trial, metrics in enumerate(outcome.trial_metrics):
            tracker.log_metrics(self.run_id, metrics, step=trial)
        tracker.set_tags(self.run_id, {**outcome.tags, **describe_run(tags, outcome.metrics, model)})
        files = (self.work, outcome.engine_files, model, engine_file(outcome.engine_files))
        stored = log_run_files(tracker, self.run_id, tracking, *files) / 2**20
        tracker.log_metrics(self.run_id, {names.ARTIFACT_MB: stored})
        if not outcome.failed:  # else everything is logged, and fail() ends the run FAILED
            tracker.finish(self.run_id)
        drop_logged_files(tracking, self.work, outcome.engine_files)
        log.info("tracking: run %s in %s — open with: %s", self.run_id, tracker.display_uri, tracker.ui_command())
        return stored

    def fail(self, exc: BaseException, stage: str, killed: bool) -> None:
        if not self.run_id:
            return
        kept = [self.work / WORKER_LOG, self.work / TRIALS_FILE, self.work / latencies.FILE]  # a failed trial's
        kept += sorted((self.work / TRIALS_DIR).glob("worker-*.log"))  # finished trials and logs are kept
        for path in kept:
            if not (path.is_file() and path.stat().st_size):
                continue
            try:
                folder = TRIALS_DIR if path.parent.name == TRIALS_DIR else None
                self.tracker.log_artifact(self.run_id, path, folder)
            except Exception:
                log.exception("tracking: could not log %s of run %s", path.name, self.run_id)
        self.tracker.fail(self.run_id, exc, stage, status="KILLED" if killed else "FAILED")


class RunFileRecorder(Recorder):
    """Tracking off: the run as ``run.json`` in its folder, what it would have logged."""

    def __init__(self, config: RunConfig, identity: RunIdentity, work: Path) -> None:
        super().__init__(config, identity, work)
        self.params: dict[str, str] = {}
        self.written = False

    def begin(self, params: Mapping[str, str], fingerprint: Mapping[str, Any], skip_done: bool) -> str | None:
        self.params = dict(params)
        return None

    def _write(
        self,
        status: str,
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        files: list[Path] | None,
        trial_metrics: list[dict[str, float]] | None = None,
    ) -> None:
        all_tags = {**self.identity.tags, CONFIG_HASH_TAG: self.identity.config_hash, **tags, "status": status.lower()}
        path = write_run_file(
            self.work, self.identity.name, all_tags, self.params, metrics, status, self.started, files, trial_metrics
        )
        self.written = True
        log.info("tracking off: the run is kept in %s (log it later: blockbench-record <folder>)", path)

    def finish(self, outcome: Outcome) -> float | None:
        self.params.update(outcome.params)
        status = "FAILED" if outcome.failed else "FINISHED"
        self._write(status, outcome.metrics, outcome.tags, outcome.engine_files, outcome.trial_metrics)
        return None

    def fail(self, exc: BaseException, stage: str, killed: bool) -> None:
        if self.written:  # measured, recorded, then failed (parity): the run file says so already
            return
        error = {"error": f"{type(exc).__name__}: {exc}"[:5000], "error_stage": stage}
        try:
            self._write("KILLED" if killed else "FAILED", {}, error, None)
        except OSError:
            log.exception("tracking off: could not write the run file of %s", self.identity.name)
