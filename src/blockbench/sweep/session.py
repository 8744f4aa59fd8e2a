"""The sweep as the process that launched it holds it (:class:`Sweep`: the prebuild, the parent run's heartbeat,
the final count and summary), and :data:`SESSION`, this process's part in the Hydra run: the one handle that
``SweepCallback``, :func:`.callback.task` and ``main.py`` share."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from blockbench import interrupts
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError
from blockbench.job import launch
from blockbench.job.worker import COMPILE_THREADS_ENV, PREBUILT_MARK_ENV
from blockbench.recording.ui import describe_sweep
from blockbench.sweep import prebuild
from blockbench.sweep.folder import SweepFolder
from blockbench.sweep.summary import print_sweep_summary
from blockbench.tracking import (
    Tracker,
    owner_tags,
    redact,
)

log = logging.getLogger(__name__)


class Sweep:
    """A sweep as the process that launched it holds it, from ``on_multirun_start`` to the summary.

    This process owns the parent run and keeps it alive until the sweep ends. Where jobs run in this process
    (Hydra's basic launcher), the job that creates the parent run hands it over (:meth:`keep_parent_alive`). Where
    they run elsewhere (Ray, submitit), this process learns the run's id only from the sweep file, which a watcher
    thread polls until a job has recorded it.
    """

    def __init__(self, folder: SweepFolder, heartbeat_s: float, jobs_run_here: bool) -> None:
        self.folder = folder
        self.heartbeat_s = heartbeat_s
        self.jobs_run_here = jobs_run_here
        self.failed = 0  # jobs failed or killed, counted by finish()
        self.unexpected = 0  # of those, failures that are bugs or library errors (exit code 1)
        self.finished = False
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

    @classmethod
    def begin(cls, config: DictConfig) -> Sweep:
        """Write the sweep file before the first job, prebuild engines if asked, and watch for the parent run
        where jobs run elsewhere."""
        folder = SweepFolder(Path(config.hydra.sweep.dir))
        folder.path.mkdir(parents=True, exist_ok=True)
        info = {
            "sweep_id": uuid.uuid4().hex,
            "overrides": redact(" ".join(config.hydra.overrides.task)),
            "tracking_uri": config.tracking.uri if config.tracking.enabled else None,
            "experiment": config.tracking.experiment,
            "parent_run_id": None,
            # This process launches the jobs (in itself or in launcher workers) and outlives them: it owns the
            # parent run, so a job's process exiting never makes the parent look stale to the next job.
            "owner": owner_tags(),
        }
        info["jobs"] = len(prebuild.sweep_jobs(config))
        folder.write(info)
        launcher = OmegaConf.select(config, "hydra.launcher._target_")
        sweep = cls(folder, config.run.heartbeat_s, jobs_run_here=launcher == prebuild.BASIC_LAUNCHER)
        modes = f"{OmegaConf.select(config, 'backend.mode')} {info['overrides']}"
        if sweep.jobs_run_here and config.run.isolation == "process":  # its imports overlap the prebuild
            launch.start_server(compiles="compile" in modes or "aoti" in modes)
        if config.run.prebuild_workers:
            info["prebuild"] = dataclasses.asdict(_prebuild(config))
            folder.write(info)
            if "compile" in modes or "aoti" in modes:
                _compile_timed_jobs_in_process()
        if config.tracking.enabled and not sweep.jobs_run_here:
            sweep._watch_for_parent()
        return sweep

    @property
    def exit_code(self) -> int:
        """By the rule of a single run (``blockbench.errors``): 0 when no job failed, 1 when any failed
        unexpectedly, else 2 (every failure explained, e.g. configs refused before any work)."""
        if not self.failed:
            return 0
        return 1 if self.unexpected else EXPLAINED_EXIT

    def keep_parent_alive(self, tracker: Tracker, run_id: str) -> None:
        """Heartbeat the parent run from this process until :meth:`finish` ends it."""
        tracker.keep_alive(run_id, self.heartbeat_s)

    def _watch_for_parent(self) -> None:
        """Jobs run elsewhere: poll the sweep file until one of them has created the parent run, then keep it alive."""

        def watch() -> None:
            while not self._stop_watching.wait(min(self.heartbeat_s, 1.0)):
                info = self.folder.read()
                if info.get("parent_run_id"):
                    try:
                        tracker = Tracker(info["tracking_uri"], info["experiment"])
                        if not self._stop_watching.is_set():
                            self.keep_parent_alive(tracker, info["parent_run_id"])
                    except Exception as exc:  # noqa: BLE001 - a missing heartbeat must never stop the sweep
                        log.warning("sweep: cannot keep the parent run alive: %s", redact(str(exc)))
                    return

        self._watcher = threading.Thread(target=watch, name="blockbench-sweep-parent", daemon=True)
        self._watcher.start()

    def _stop_watching_for_parent(self) -> None:
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
            self._watcher = None

    def finish(self, interrupted: str | None = None) -> None:
        """Count this invocation's job results, end the parent run accordingly and print the summary (once)."""
        if self.finished:
            return
        self.finished = True
        self._stop_watching_for_parent()
        with interrupts.deferred():
            info = self.folder.read()
            results = self.folder.results(info.get("sweep_id"))
            counts = Counter(r["status"] for r in results)
            failed = [r for r in results if r["status"] in ("failed", "killed")]
            self.failed = len(failed)
            self.unexpected = sum(1 for r in failed if r.get("code") == 1)
            if info.get("parent_run_id"):
                try:
                    tracker = Tracker(info["tracking_uri"], info["experiment"])
                    metrics = {f"jobs_{s}": counts[s] for s in ("finished", "failed", "skipped", "killed")}
                    if info.get("prebuild"):
                        metrics |= {f"prebuild_{key}": value for key, value in info["prebuild"].items()}
                    tracker.log_metrics(info["parent_run_id"], metrics)
                    describe_sweep(tracker, info["parent_run_id"])
                    tracker.end(info["parent_run_id"], "KILLED" if interrupted else "FAILED" if failed else "FINISHED")
                except BlockbenchError as exc:  # the summary still matters; the next sweep reaps the parent run
                    log.error("error: could not end the sweep's parent run: %s", exc)
        print_sweep_summary(self.folder.path, info, results, interrupted)


def _compile_timed_jobs_in_process() -> None:
    """After a prebuild each timed job loads its compiled graph from inductor's caches. A pool of compile processes
    (one per core, each importing torch) would cost every job's worker seconds to start and to stop before it times,
    so the timed jobs compile in their own process, unless the user set the number of compile threads."""
    if COMPILE_THREADS_ENV not in os.environ:
        os.environ[COMPILE_THREADS_ENV] = "1"
        os.environ[PREBUILT_MARK_ENV] = "1"  # fresh trials (an empty engine cache) compile with the default pool
        log.info("prebuild done: timed jobs load the prebuilt graphs without a pool of compile processes")


def _prebuild(config: DictConfig) -> prebuild.PrebuildSummary:
    """Parallel engine builds before the first job (checked in on_multirun_start); Ctrl-C / SIGTERM exit 130 / 143."""
    try:
        return prebuild.prebuild(config)
    except KeyboardInterrupt as exc:
        log.error("interrupted during prebuild: no job has run yet; run the same command again to start over")
        sys.exit(interrupts.exit_code(exc))


@dataclass
class Session:
    """This process's part in one Hydra run (``main.py``): whether a job started, and the sweep it launched."""

    task_started: bool = False
    sweep: Sweep | None = None  # None in a single run and in a launcher's worker process

    def launched(self, sweep_dir: Path) -> Sweep | None:
        """The sweep in ``sweep_dir`` if this process launched it (Hydra's basic launcher runs its jobs here)."""
        return self.sweep if self.sweep is not None and self.sweep.folder.path == sweep_dir else None


SESSION = Session()


def exit_code() -> int:
    """The exit code of the sweep this process ran (:attr:`Sweep.exit_code`); 0 when it ran none."""
    return SESSION.sweep.exit_code if SESSION.sweep is not None else 0


def task_started() -> bool:
    """Whether Hydra got as far as running a job (before that, its errors are about the command line)."""
    return SESSION.task_started
