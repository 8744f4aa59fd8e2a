"""Hydra glue: the task function's error policy, the sweep's MLflow parent run, resume and interrupts.

A sweep (``-m``) writes ``<sweep dir>/sweep.json`` before the first job (an id for this invocation, the store,
the overrides). The first job creates the MLflow parent run and records its id there, so jobs in any launcher's
worker processes find it, and a sweep Hydra refuses before any job (a bad override value) leaves no run behind.
Each job writes ``result.json`` in its own folder (finished, failed, skipped or killed); at the end the callback
reads this invocation's results, ends the parent run and prints a summary.

* A failed job never stops the sweep, but makes the process exit non-zero.
* A job whose config the experiment already has FINISHED is skipped (resume; ``run.force=true`` re-runs it).
* Ctrl-C or SIGTERM ends the current job's run as KILLED, ends the parent as KILLED, prints the summary and
  exits 130 / 143; running the same command again resumes.

State: :class:`SweepFolder` is what every process of a sweep shares (files); :class:`Sweep` is the sweep as the
process that launched it holds it (the parent run's heartbeat, the outcome); :data:`SESSION` is this process's
part in the Hydra run, the one handle that ``SweepCallback``, :func:`task` and ``main.py`` share.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench import interrupts, prebuild, preflight
from blockbench import metric_names as names
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.job import launch
from blockbench.job.launch import WorkerFailure
from blockbench.job.plan import plan_job, run_name
from blockbench.job.run import JobResult, run_job
from blockbench.job.stages import failed_stage
from blockbench.recording.layout import RESULT_FILE, SWEEP_FILE, write_json
from blockbench.recording.ui import describe_sweep
from blockbench.tracking import (
    HEARTBEAT_TAG,
    STAGE_TAG,
    SWEEP_TAG,
    Tracker,
    check_reachable,
    owner_tags,
    redact,
    sqlite_path,
    ui_hint,
)

log = logging.getLogger(__name__)

SWEEP_LOCK = ".sweep.lock"
_LISTED_SKIPS = 10


@dataclass(frozen=True)
class SweepFolder:
    """The folder every process of one sweep shares: ``sweep.json`` (the parent run's id is added under a file
    lock) and the jobs' ``result.json`` files. Launcher workers know the sweep only through it."""

    path: Path

    def read(self) -> dict[str, Any]:
        file = self.path / SWEEP_FILE
        return json.loads(file.read_text()) if file.exists() else {}

    def write(self, info: dict[str, Any]) -> None:
        write_json(self.path / SWEEP_FILE, info)

    def parent_run_id(self, cfg: DictConfig, launcher: Sweep | None) -> str | None:
        """The sweep's parent run in this job's store, created by the first job that asks (under a lock).

        ``launcher`` is the :class:`Sweep` when this job runs in the process that launched the sweep (Hydra's
        basic launcher): that process owns the parent run and keeps it alive from here on.
        """
        with FileLock(str(self.path / SWEEP_LOCK)):
            info = self.read()
            if info.get("tracking_uri") != cfg.tracking.uri or info.get("experiment") != cfg.tracking.experiment:
                return None
            if not info.get("parent_run_id"):
                tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment)
                info["parent_run_id"] = tracker.start_run(
                    run_name=f"sweep {self.path.parent.name} {self.path.name}",
                    tags={
                        SWEEP_TAG: "parent",
                        STAGE_TAG: "sweep",
                        "sweep_dir": str(self.path),
                        "sweep_overrides": info.get("overrides", ""),
                        "status": "running",
                    },
                )
                if launcher is not None:  # the run's owner tags are already this process's
                    launcher.keep_parent_alive(tracker, info["parent_run_id"])
                elif info.get("owner"):
                    # Owned by the process that launched the sweep (alive until the sweep ends, heartbeat from
                    # its watcher), not by this job's process, which may be a launcher worker that exits first.
                    tracker.set_tags(info["parent_run_id"], {**info["owner"], HEARTBEAT_TAG: f"{time.time():.3f}"})
                else:
                    tracker.keep_alive(info["parent_run_id"], cfg.run.heartbeat_s)
                self.write(info)
                log.info("sweep: MLflow parent run %s", info["parent_run_id"])
            return info["parent_run_id"]

    def record_result(self, job_dir: Path, outcome: dict[str, Any]) -> None:
        """Leave a job's outcome (tagged with the ``sweep_id`` of its invocation) where the summary looks."""
        job_dir.mkdir(parents=True, exist_ok=True)
        write_json(job_dir / RESULT_FILE, outcome)

    def results(self, sweep_id: str | None) -> list[dict[str, Any]]:
        """The job outcomes of invocation ``sweep_id`` (a folder re-used by a resumed sweep holds older ones), in
        job order."""
        paths = sorted(self.path.glob(f"*/{RESULT_FILE}"), key=_job_order)
        return [r for r in (json.loads(p.read_text()) for p in paths) if r.get("sweep_id") == sweep_id]


def _job_order(path: Path) -> tuple[int, str]:
    name = path.parent.name
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)


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
        if sweep.jobs_run_here and config.run.isolation == "process":  # its imports overlap the prebuild
            modes = f"{OmegaConf.select(config, 'backend.mode')} {info['overrides']}"
            launch.start_server(compiles="compile" in modes or "aoti" in modes)
        if config.run.prebuild_workers:
            info["prebuild"] = dataclasses.asdict(_prebuild(config))
            folder.write(info)
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
        _print_sweep_summary(self.folder.path, info, results, interrupted)


def _print_sweep_summary(
    sweep_dir: Path, info: dict[str, Any], results: list[dict[str, Any]], interrupted: str | None
) -> None:
    counts = Counter(r["status"] for r in results)
    failed = [r for r in results if r["status"] in ("failed", "killed")]
    head = f"sweep interrupted ({interrupted})" if interrupted else "sweep"
    print(
        f"{head}: {len(results)} jobs, {counts['finished']} finished, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
        + (f", {counts['killed']} killed" if counts["killed"] else "")
        + f" ({sweep_dir})"
    )
    for r in failed:
        print(f"  {r['status'].upper()} {r['name']} [{r.get('stage')}]: {redact(str(r.get('error')))}")
    beyond = [r["name"] for r in results if r["status"] == "finished" and r.get("parity") == "fail"]
    if beyond:
        print(f"  parity beyond tolerance, latency kept (benchmark.parity=warn): {', '.join(beyond)}")
    skipped = [r for r in results if r["status"] == "skipped"]
    for r in skipped[:_LISTED_SKIPS]:
        print(f"  skipped {r['name']}: {r.get('reason')}")
    if len(skipped) > _LISTED_SKIPS:
        print(f"  ... and {len(skipped) - _LISTED_SKIPS} more skipped (run.force=true re-runs them)")
    if interrupted:
        print("  run the same command again to resume: finished configs are skipped, the killed one is redone")
    if info.get("parent_run_id"):
        print(f"  open with: {ui_hint(info['tracking_uri'])}", flush=True)


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


def _job_name(cfg: DictConfig) -> str:
    """The run name, or the job's number when the config is too broken to name (it fails in plan_job)."""
    try:
        return run_name(cfg)
    except OmegaConfBaseException:
        return f"job {HydraConfig.get().job.get('num', '')}".strip()


def task(cfg: DictConfig) -> dict[str, Any]:
    """The Hydra task: one run. A single run exits non-zero on failure; a sweep job records it and goes on."""
    SESSION.task_started = True
    interrupts.handle_sigterm()
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    folder = SweepFolder(Path(HydraConfig.get().sweep.dir)) if multirun else None
    outcome: dict[str, Any] = {"name": _job_name(cfg), "status": "failed"}
    code = 0
    if folder is not None:
        total = folder.read().get("jobs")
        number = int(HydraConfig.get().job.get("num", 0)) + 1
        print(f"job {number}/{total or '?'}: {outcome['name']}", flush=True)
    try:
        plan = plan_job(cfg)  # a refused job writes nothing: a sweep of only refused jobs leaves no parent run
        parent = None
        if folder is not None and cfg.tracking.enabled:
            parent = folder.parent_run_id(cfg, SESSION.launched(folder.path))
        result = run_job(cfg, parent_run_id=parent, resume_sweep=multirun, plan=plan)
        if result.skipped:
            outcome.update(status="skipped", run_id=result.run_id, reason=result.skipped)
            print(f"{outcome['name']}: skipped, {result.skipped}", flush=True)
        else:
            outcome.update(status="finished", run_id=result.run_id, median_ms=result.metrics.get(names.LATENCY_MEDIAN))
            outcome["parity"] = result.tags.get("parity")
            _print_summary(cfg, result)
    except KeyboardInterrupt as exc:
        code = interrupts.exit_code(exc)
        outcome.update(status="killed", error=f"interrupted ({str(exc) or 'SIGINT'})", stage=failed_stage(exc))
        log.error(
            "interrupted during %s: the run ended as KILLED; run the same command again to resume", outcome["stage"]
        )
    except BlockbenchError as exc:
        code = EXPLAINED_EXIT
        outcome.update(error=str(exc), stage=failed_stage(exc))
        log.error("error: %s", exc)
    except WorkerFailure as exc:  # a crash or a hang: the message names the signal and holds the worker's log tail
        code = 1
        outcome.update(error=f"{type(exc).__name__}: {exc}", stage=failed_stage(exc))
        log.error("error: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a bug or library failure: keep the traceback in the job log
        code = 1
        outcome.update(error=f"{type(exc).__name__}: {exc}", stage=failed_stage(exc))
        log.error("error: %s\n%s", exc, traceback.format_exc())
    outcome["code"] = code
    if folder is None:
        if code:
            sys.exit(code)
        return outcome
    outcome["sweep_id"] = folder.read().get("sweep_id")
    # the job's own folder is where the summary looks, whatever work_dir says
    folder.record_result(Path(HydraConfig.get().runtime.output_dir), outcome)
    if code in (interrupts.SIGINT_EXIT, interrupts.SIGTERM_EXIT):
        launched = SESSION.launched(folder.path)
        if launched is not None:  # in a launcher's worker the launching process summarizes the sweep
            launched.finish(interrupted="SIGTERM" if code == interrupts.SIGTERM_EXIT else "SIGINT")
        sys.exit(code)
    return outcome


def _print_summary(cfg: DictConfig, result: JobResult) -> None:
    """The run in a few lines, each figure named for what it is: measured, derived (images/s = batch / median)
    or decided (the parity verdict with the number and tolerance that decide it)."""
    from blockbench.hardware import peak_memory_meaning
    from blockbench.precisions import TOLERANCE
    from blockbench.statistics import UNSTABLE_COV

    m, tags = result.metrics, result.tags
    device_type = "cuda" if str(cfg.hardware.device).startswith("cuda") else "cpu"
    lines = [f"{run_name(cfg)}: {m['params_count'] / 1e6:.2f} M params, {m['macs'] / 1e9:.2f} GMACs"]
    if tags.get("build_only") == "true":  # an engine and its build facts, no latency (docs/tensorrt.md)
        lines += [
            f"  built, not timed ({tags.get('build_only_reason')})",
            f"  engine {m.get(names.ENGINE_SIZE_MB, float('nan')):.1f} MiB, build {m[names.BUILD_S]:.1f} s "
            f"(engine cache {tags.get('engine_cache', 'not used')}), export {m[names.EXPORT_S]:.1f} s "
            f"({tags.get('export_cache', 'no export')})",
        ]
    else:
        if names.LATENCY_MEDIAN in m:
            cov = m[names.LATENCY_COV]
            unstable = f" UNSTABLE (> {100 * UNSTABLE_COV:g} %)" if cov > UNSTABLE_COV else ""
            lines.append(
                f"  latency median {m[names.LATENCY_MEDIAN]:.3f} ms (95 % CI {m[names.LATENCY_MEDIAN_CI_LOW]:.3f}-"
                f"{m[names.LATENCY_MEDIAN_CI_HIGH]:.3f}), p99 {m[names.LATENCY_P99]:.3f} ms, "
                f"CoV {100 * cov:.1f} %{unstable}, batch/median = {m['throughput_qps']:.1f} images/s "
                f"({cfg.benchmark.mode}, {tags.get('timer')}, {tags.get('cache_state', 'warm')} caches)"
            )
        if names.PIPELINED_MEDIAN in m:
            lines.append(
                f"  pipelined {m[names.PIPELINED_MEDIAN]:.3f} ms per inference (95 % CI "
                f"{m[names.PIPELINED_MEDIAN_CI_LOW]:.3f}-{m[names.PIPELINED_MEDIAN_CI_HIGH]:.3f}), "
                f"batch/pipelined median = {m['pipelined_throughput_qps']:.1f} images/s"
            )
        if names.PARITY_REL_L2 in m:
            tolerance = TOLERANCE[cfg.precision.name]
            passed = tags.get("parity", "pass" if m[names.PARITY_REL_L2] <= tolerance else "fail") == "pass"
            parity = (
                f"parity {'pass' if passed else 'FAIL'} (relative L2 {m[names.PARITY_REL_L2]:.3g}, tolerance "
                f"{tolerance:.3g}; max abs {m[names.PARITY_MAX_ABS]:.3g})"
            )
        else:
            parity = "parity not checked"
        lines += [
            f"  {parity}, build {m[names.BUILD_S]:.1f} s, "
            f"export {m[names.EXPORT_S]:.1f} s ({tags.get('export_cache', 'no export')}), "
            f"peak memory {m['peak_memory_mb']:.0f} MiB ({peak_memory_meaning(device_type)})",
        ]
    if result.run_id:
        stored = m.get(names.ARTIFACT_MB)
        disk = f", {stored:.1f} MiB of artifacts stored" if stored is not None else ""
        lines.append(f"  MLflow run {result.run_id}{disk}: {ui_hint(cfg.tracking.uri, result.experiment_id)}")
    print("\n".join(lines), flush=True)


def _exit_on_config_error(check: Any, *args: Any) -> None:
    """Run a preflight check from a Hydra callback: a refusal is one message and exit code 2, no traceback."""
    try:
        check(*args)
    except ConfigError as exc:
        log.error("error: %s", exc)
        sys.exit(EXPLAINED_EXIT)


def _prebuild(config: DictConfig) -> prebuild.PrebuildSummary:
    """Parallel engine builds before the first job (checked in on_multirun_start); Ctrl-C / SIGTERM exit 130 / 143."""
    try:
        return prebuild.prebuild(config)
    except KeyboardInterrupt as exc:
        log.error("interrupted during prebuild: no job has run yet; run the same command again to start over")
        sys.exit(interrupts.exit_code(exc))


def _check_store(uri: str) -> None:
    """The tracking store can be reached / created, checked without creating anything."""
    check_reachable(uri)
    db_path = sqlite_path(uri)
    if db_path is not None:
        preflight.check_writable("tracking.uri", db_path.parent)


class SweepCallback(Callback):
    """Checks output folders and the store up front; prepares and finishes the sweep's MLflow parent run."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        interrupts.handle_sigterm()
        _exit_on_config_error(preflight.check_writable, "hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        interrupts.handle_sigterm()
        if config.run.prebuild_workers:
            _exit_on_config_error(prebuild.check_supported, config)
        _exit_on_config_error(preflight.check_writable, "hydra.sweep.dir", Path(config.hydra.sweep.dir))
        if config.tracking.enabled:
            _exit_on_config_error(_check_store, config.tracking.uri)
        SESSION.sweep = Sweep.begin(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if SESSION.sweep is not None:
            SESSION.sweep.finish()
