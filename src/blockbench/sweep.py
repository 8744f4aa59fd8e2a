"""Hydra glue: the task function's error policy and the sweep's MLflow parent run.

A sweep (``-m``) gets one MLflow parent run, created by :class:`SweepCallback` before the first job; its id
lives in ``<sweep dir>/sweep.json`` so jobs in any launcher's worker processes find it. Each job writes
``result.json`` in its own folder; the callback reads them at the end, ends the parent run and prints a
summary. A failed job never stops the sweep, but makes the process exit non-zero.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from blockbench.errors import BlockbenchError
from blockbench.pipeline import JobResult, run_job, run_name
from blockbench.tracking import Tracker

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"
RESULT_FILE = "result.json"
_state = {"failed": 0}


def exit_code() -> int:
    """Non-zero when the last sweep in this process had failed jobs."""
    return 1 if _state["failed"] else 0


def _sweep_dir() -> Path:
    return Path(HydraConfig.get().sweep.dir)


def _parent_run_id(cfg: DictConfig) -> str | None:
    path = _sweep_dir() / SWEEP_FILE
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    same_store = info.get("tracking_uri") == cfg.tracking.uri and info.get("experiment") == cfg.tracking.experiment
    return info.get("parent_run_id") if same_store else None


def task(cfg: DictConfig) -> dict[str, Any]:
    """The Hydra task: one run. A single run exits non-zero on failure; a sweep job records it and goes on."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    work_dir = Path(cfg.work_dir) if "work_dir" in cfg else Path.cwd()
    outcome: dict[str, Any] = {"name": run_name(cfg), "status": "failed"}
    try:
        result = run_job(cfg, parent_run_id=_parent_run_id(cfg) if multirun else None)
        outcome.update(status="finished", run_id=result.run_id, median_ms=result.metrics.get("latency_ms_median"))
        _print_summary(cfg, result)
    except BlockbenchError as exc:
        outcome.update(error=str(exc), stage=exc.stage)
        log.error("error: %s", exc)
        if not multirun:
            sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - a bug or library failure: keep the traceback in the job log
        outcome.update(error=f"{type(exc).__name__}: {exc}", stage="run")
        log.error("error: %s\n%s", exc, traceback.format_exc())
        if not multirun:
            sys.exit(1)
    finally:
        if multirun:
            work_dir.mkdir(parents=True, exist_ok=True)
            (work_dir / RESULT_FILE).write_text(json.dumps(outcome, indent=2))
    return outcome


def _print_summary(cfg: DictConfig, result: JobResult) -> None:
    m = result.metrics
    lines = [
        f"{run_name(cfg)}: {m['params_count'] / 1e6:.2f} M params, {m['macs'] / 1e9:.2f} GMACs",
        f"  latency median {m['latency_ms_median']:.3f} ms, p99 {m['latency_ms_p99']:.3f} ms, "
        f"CoV {100 * m['latency_cov']:.1f} %, {m['throughput_qps']:.1f} img/s ({cfg.benchmark.mode}, "
        f"{result.tags.get('timer')})",
        f"  parity max abs err {m['parity_max_abs_err']:.3g}, build {m['build_s']:.1f} s, "
        f"export {m['export_s']:.1f} s, peak memory {m['peak_memory_mb']:.0f} MB",
    ]
    if result.run_id:
        lines.append(f"  MLflow run {result.run_id}: mlflow ui --backend-store-uri {cfg.tracking.uri}")
    print("\n".join(lines), flush=True)


class SweepCallback(Callback):
    """Creates the sweep's MLflow parent run and ends it with the jobs' outcome."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _state["failed"] = 0
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not config.tracking.enabled:
            return
        try:
            tracker = Tracker(config.tracking.uri, config.tracking.experiment)
        except BlockbenchError as exc:
            log.error("error: %s", exc)
            sys.exit(2)
        overrides = " ".join(config.hydra.overrides.task)
        parent = tracker.start_run(
            run_name=f"sweep {sweep_dir.parent.name} {sweep_dir.name}",
            tags={"blockbench.sweep": "parent", "sweep_dir": str(sweep_dir), "sweep_overrides": overrides},
        )
        info = {"parent_run_id": parent, "tracking_uri": config.tracking.uri, "experiment": config.tracking.experiment}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(info, indent=2))
        log.info("sweep: MLflow parent run %s", parent)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))]
        finished = [r for r in results if r["status"] == "finished"]
        failed = [r for r in results if r["status"] != "finished"]
        _state["failed"] = len(failed)
        info_path = sweep_dir / SWEEP_FILE
        if info_path.exists():
            info = json.loads(info_path.read_text())
            tracker = Tracker(info["tracking_uri"], info["experiment"])
            tracker.log_metrics(info["parent_run_id"], {"jobs_finished": len(finished), "jobs_failed": len(failed)})
            if failed:
                tracker.set_tags(info["parent_run_id"], {"status": "failed"})
                tracker.client.set_terminated(info["parent_run_id"], "FAILED")
            else:
                tracker.finish(info["parent_run_id"])
        print(f"sweep: {len(results)} jobs, {len(finished)} finished, {len(failed)} failed ({sweep_dir})")
        for r in failed:
            print(f"  FAILED {r['name']} [{r.get('stage')}]: {r.get('error')}")
        if info_path.exists():
            print(f"  open with: mlflow ui --backend-store-uri {config.tracking.uri}", flush=True)
