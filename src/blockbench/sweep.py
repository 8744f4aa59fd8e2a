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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from blockbench import interrupts, prebuild, preflight
from blockbench import metric_names as names
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.pipeline import FAILED_STAGE_ATTR, JobResult, plan_job, run_job, run_name
from blockbench.record import write_json
from blockbench.tracking import (
    HEARTBEAT_TAG,
    PID_TAG,
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

SWEEP_FILE = "sweep.json"
SWEEP_LOCK = ".sweep.lock"
RESULT_FILE = "result.json"
_LISTED_SKIPS = 10
_state = {"failed": 0, "unexpected": 0, "task_started": False}
_parent_watch: dict[str, Any] = {"stop": threading.Event(), "thread": None}


def exit_code() -> int:
    """The last sweep's exit code, by the rule of a single run (``blockbench.errors``): 0 when no job failed,
    1 when any failed unexpectedly, else 2 (every failure explained, e.g. configs refused before any work)."""
    if not _state["failed"]:
        return 0
    return 1 if _state["unexpected"] else EXPLAINED_EXIT


def task_started() -> bool:
    """Whether Hydra got as far as running a job (before that, its errors are about the command line)."""
    return bool(_state["task_started"])


def _sweep_dir() -> Path:
    return Path(HydraConfig.get().sweep.dir)


def _read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _parent_run_id(cfg: DictConfig) -> str | None:
    """The sweep's parent run in this job's store, created by the first job that asks (under a lock)."""
    sweep_dir = _sweep_dir()
    with FileLock(str(sweep_dir / SWEEP_LOCK)):
        info = _read_sweep(sweep_dir)
        if info.get("tracking_uri") != cfg.tracking.uri or info.get("experiment") != cfg.tracking.experiment:
            return None
        if not info.get("parent_run_id"):
            tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment)
            info["parent_run_id"] = tracker.start_run(
                run_name=f"sweep {sweep_dir.parent.name} {sweep_dir.name}",
                tags={
                    SWEEP_TAG: "parent",
                    STAGE_TAG: "sweep",
                    "sweep_dir": str(sweep_dir),
                    "sweep_overrides": info.get("overrides", ""),
                    "status": "running",
                },
            )
            if info.get("owner"):
                # Owned by the process that launched the sweep (alive until the sweep ends, heartbeat from
                # _watch_parent), not by this job's process, which may be a launcher worker that exits first.
                tracker.set_tags(info["parent_run_id"], {**info["owner"], HEARTBEAT_TAG: f"{time.time():.3f}"})
            else:
                tracker.keep_alive(info["parent_run_id"], cfg.run.heartbeat_s)
            write_json(sweep_dir / SWEEP_FILE, info)
            log.info("sweep: MLflow parent run %s", info["parent_run_id"])
        return info["parent_run_id"]


def _job_name(cfg: DictConfig) -> str:
    """The run name, or the job's number when the config is too broken to name (it fails in plan_job)."""
    try:
        return run_name(cfg)
    except OmegaConfBaseException:
        return f"job {HydraConfig.get().job.get('num', '')}".strip()


def _failed_stage(exc: BaseException) -> str:
    return getattr(exc, FAILED_STAGE_ATTR, None) or getattr(exc, "stage", "run")


def task(cfg: DictConfig) -> dict[str, Any]:
    """The Hydra task: one run. A single run exits non-zero on failure; a sweep job records it and goes on."""
    _state["task_started"] = True
    interrupts.handle_sigterm()
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    outcome: dict[str, Any] = {"name": _job_name(cfg), "status": "failed"}
    code = 0
    if multirun:
        total = _read_sweep(_sweep_dir()).get("jobs")
        number = int(HydraConfig.get().job.get("num", 0)) + 1
        print(f"job {number}/{total or '?'}: {outcome['name']}", flush=True)
    try:
        plan = plan_job(cfg)  # a refused job writes nothing: a sweep of only refused jobs leaves no parent run
        parent = _parent_run_id(cfg) if multirun and cfg.tracking.enabled else None
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
        outcome.update(status="killed", error=f"interrupted ({str(exc) or 'SIGINT'})", stage=_failed_stage(exc))
        log.error(
            "interrupted during %s: the run ended as KILLED; run the same command again to resume", outcome["stage"]
        )
    except BlockbenchError as exc:
        code = EXPLAINED_EXIT
        outcome.update(error=str(exc), stage=_failed_stage(exc))
        log.error("error: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a bug or library failure: keep the traceback in the job log
        code = 1
        outcome.update(error=f"{type(exc).__name__}: {exc}", stage=_failed_stage(exc))
        log.error("error: %s\n%s", exc, traceback.format_exc())
    outcome["code"] = code
    if not multirun:
        if code:
            sys.exit(code)
        return outcome
    sweep_dir = _sweep_dir()
    job_dir = Path(HydraConfig.get().runtime.output_dir)  # where on_multirun_end looks, whatever work_dir says
    job_dir.mkdir(parents=True, exist_ok=True)
    outcome["sweep_id"] = _read_sweep(sweep_dir).get("sweep_id")
    write_json(job_dir / RESULT_FILE, outcome)
    if code in (interrupts.SIGINT_EXIT, interrupts.SIGTERM_EXIT):
        if _launched_here(sweep_dir):  # in a launcher's worker the launching process summarizes the sweep
            _finish_sweep(sweep_dir, interrupted="SIGTERM" if code == interrupts.SIGTERM_EXIT else "SIGINT")
        sys.exit(code)
    return outcome


def _print_summary(cfg: DictConfig, result: JobResult) -> None:
    m, tags = result.metrics, result.tags
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
            lines.append(
                f"  latency median {m[names.LATENCY_MEDIAN]:.3f} ms (95 % CI {m[names.LATENCY_MEDIAN_CI_LOW]:.3f}-"
                f"{m[names.LATENCY_MEDIAN_CI_HIGH]:.3f}), p99 {m[names.LATENCY_P99]:.3f} ms, "
                f"CoV {100 * m['latency_cov']:.1f} %, {m['throughput_qps']:.1f} img/s ({cfg.benchmark.mode}, "
                f"{tags.get('timer')}, {tags.get('cache_state', 'warm')} caches)"
            )
        if names.PIPELINED_MEDIAN in m:
            lines.append(
                f"  pipelined {m[names.PIPELINED_MEDIAN]:.3f} ms per inference (95 % CI "
                f"{m[names.PIPELINED_MEDIAN_CI_LOW]:.3f}-{m[names.PIPELINED_MEDIAN_CI_HIGH]:.3f}), "
                f"{m['pipelined_throughput_qps']:.1f} img/s"
            )
        lines += [
            f"  parity max abs err {m[names.PARITY_MAX_ABS]:.3g}, build {m[names.BUILD_S]:.1f} s, "
            f"export {m[names.EXPORT_S]:.1f} s ({tags.get('export_cache', 'no export')}), "
            f"peak memory {m['peak_memory_mb']:.0f} MB",
        ]
    if result.run_id:
        stored = m.get(names.ARTIFACT_MB)
        disk = f", {stored:.1f} MiB of artifacts stored" if stored is not None else ""
        lines.append(f"  MLflow run {result.run_id}{disk}: {ui_hint(cfg.tracking.uri, result.experiment_id)}")
    print("\n".join(lines), flush=True)


def _job_order(path: Path) -> tuple[int, str]:
    name = path.parent.name
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)


def _launched_here(sweep_dir: Path) -> bool:
    """Whether this process launched the sweep (Hydra's basic launcher runs jobs in it; Ray, submitit do not)."""
    owner = _read_sweep(sweep_dir).get("owner") or {}
    return owner.get(PID_TAG, str(os.getpid())) == str(os.getpid())


def _watch_parent(sweep_dir: Path, interval_s: float) -> None:
    """In the launching process: heartbeat the parent run once a job has created it, until the sweep ends."""
    stop = _parent_watch["stop"] = threading.Event()

    def watch() -> None:
        while not stop.wait(min(interval_s, 1.0)):
            info = _read_sweep(sweep_dir)
            if info.get("parent_run_id"):
                try:
                    tracker = Tracker(info["tracking_uri"], info["experiment"])
                    if not stop.is_set():
                        tracker.keep_alive(info["parent_run_id"], interval_s)
                except Exception as exc:  # noqa: BLE001 - a missing heartbeat must never stop the sweep
                    log.warning("sweep: cannot keep the parent run alive: %s", redact(str(exc)))
                return

    _parent_watch["thread"] = threading.Thread(target=watch, name="blockbench-sweep-parent", daemon=True)
    _parent_watch["thread"].start()


def _stop_watching_parent() -> None:
    _parent_watch["stop"].set()
    if _parent_watch["thread"] is not None:
        _parent_watch["thread"].join(timeout=30)
        _parent_watch["thread"] = None


def _finish_sweep(sweep_dir: Path, interrupted: str | None = None) -> None:
    """Count this invocation's job results, end the parent run accordingly and print the summary."""
    _stop_watching_parent()
    with interrupts.deferred():
        info = _read_sweep(sweep_dir)
        results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"), key=_job_order)]
        results = [r for r in results if r.get("sweep_id") == info.get("sweep_id")]
        counts = Counter(r["status"] for r in results)
        failed = [r for r in results if r["status"] in ("failed", "killed")]
        _state["failed"] = len(failed)
        _state["unexpected"] = sum(1 for r in failed if r.get("code") == 1)
        if info.get("parent_run_id"):
            try:
                tracker = Tracker(info["tracking_uri"], info["experiment"])
                metrics = {f"jobs_{status}": counts[status] for status in ("finished", "failed", "skipped", "killed")}
                if info.get("prebuild"):
                    metrics |= {f"prebuild_{key}": value for key, value in info["prebuild"].items()}
                tracker.log_metrics(info["parent_run_id"], metrics)
                tracker.end(info["parent_run_id"], "KILLED" if interrupted else "FAILED" if failed else "FINISHED")
            except BlockbenchError as exc:  # the summary still matters; the next sweep reaps the parent run
                log.error("error: could not end the sweep's parent run: %s", exc)
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
        _state["failed"] = 0
        interrupts.handle_sigterm()
        sweep_dir = Path(config.hydra.sweep.dir)
        if config.run.prebuild_workers:
            _exit_on_config_error(prebuild.check_supported, config)
        _exit_on_config_error(preflight.check_writable, "hydra.sweep.dir", sweep_dir)
        if config.tracking.enabled:
            _exit_on_config_error(_check_store, config.tracking.uri)
        sweep_dir.mkdir(parents=True, exist_ok=True)
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
        write_json(sweep_dir / SWEEP_FILE, info)
        if config.run.prebuild_workers:
            info["prebuild"] = dataclasses.asdict(_prebuild(config))
            write_json(sweep_dir / SWEEP_FILE, info)
        if config.tracking.enabled:
            _watch_parent(sweep_dir, config.run.heartbeat_s)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _finish_sweep(Path(config.hydra.sweep.dir))
