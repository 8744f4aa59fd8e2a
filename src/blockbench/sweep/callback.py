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

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from blockbench import interrupts
from blockbench.config import preflight
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.job.launch import WorkerFailure
from blockbench.job.plan import plan_job, run_name
from blockbench.job.run import run_job
from blockbench.job.stages import failed_stage
from blockbench.measure import metric_names as names
from blockbench.sweep import prebuild
from blockbench.sweep.folder import SweepFolder
from blockbench.sweep.session import SESSION, Sweep
from blockbench.sweep.summary import print_run_summary
from blockbench.tracking import (
    check_reachable,
    sqlite_path,
)

log = logging.getLogger(__name__)


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
            print_run_summary(cfg, result)
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


def _exit_on_config_error(check: Any, *args: Any) -> None:
    """Run a preflight check from a Hydra callback: a refusal is one message and exit code 2, no traceback."""
    try:
        check(*args)
    except ConfigError as exc:
        log.error("error: %s", exc)
        sys.exit(EXPLAINED_EXIT)


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
