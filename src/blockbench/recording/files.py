"""The run folder's own files, written by the parent from what the worker returned (never by the worker).

``config.yaml`` (the resolved config), ``fingerprint.json`` (what the resume hash is computed from),
``environment.json`` (the environment record, and once measured the state the measurement ran under),
``latencies.csv`` (every kept sample) and ``attribution.csv`` (benchmark.attribution=true); with tracking off,
``run.json``: what the run would have logged, for ``blockbench-record`` to log later.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from blockbench.measure import attribution, latencies
from blockbench.recording.layout import CONFIG_FILE, ENVIRONMENT_FILE, FINGERPRINT_FILE, RUN_FILE, write_json

MEASURED_STATE_KEY = "measured_state"  # environment.json: the state read in the measuring process


def write_job_files(
    work: Path, cfg: DictConfig, fingerprint: Mapping[str, Any], environment: Mapping[str, Any]
) -> None:
    """What a run has before it executes: its config, fingerprint and environment record."""
    work.mkdir(parents=True, exist_ok=True)
    (work / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (work / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    write_json(work / ENVIRONMENT_FILE, environment)


def write_results(
    work: Path,
    environment: Mapping[str, Any],
    state: Mapping[str, str],
    trials: Sequence[latencies.Series],
    rows: attribution.Attribution | None,
) -> None:
    """What the worker measured: the state it measured under, every sample of every trial, the attribution rows."""
    if state:
        write_json(work / ENVIRONMENT_FILE, {**environment, MEASURED_STATE_KEY: dict(state)})
    if any(len(samples) for series in trials for _, samples in series):
        latencies.write(work / latencies.FILE, trials)
    if rows is not None:
        attribution.write(rows, work / attribution.FILE)


def write_run_file(
    work_dir: Path,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    status: str,
    start_time: float,
    engine_files: Sequence[Path] | None,
    trial_metrics: Sequence[Mapping[str, float]] | None = None,
) -> Path:
    """What an untracked job would have logged, atomically (a reader or a kill never sees half a file).

    ``engine_files``: the files the build produced (logged with the run), or None for a job that failed before;
    ``trial_metrics``: one mapping per trial (benchmark.trials >= 2), logged with the trial as the step.
    """
    record = {
        "record_id": uuid.uuid4().hex,
        "run_name": run_name,
        "status": status,
        "start_time": start_time,
        "end_time": time.time(),
        "tags": dict(tags),
        "params": dict(params),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "engine_files": None if engine_files is None else [str(p) for p in engine_files],
        "trial_metrics": [{k: float(v) for k, v in m.items()} for m in trial_metrics or []],
    }
    path = work_dir / RUN_FILE
    write_json(path, record)
    return path
