"""Runs measured with tracking off, logged into an MLflow store later: ``blockbench-record DIR ...``.

A GPU machine for benchmarking often has no MLflow and no network. With ``tracking.enabled=false`` every job writes
``run.json`` into its work folder (name, tags, params, metrics, status, times, config hash): what the job would
have logged. Copy the folders back and record them here; each run becomes the MLflow run it would have been, with
its config, environment record, samples and fingerprint as artifacts, and jobs of one sweep under one parent run
(so ``python -m blockbench.report`` and ``blockbench.compare`` read them like any sweep). Recording is idempotent:
a run already recorded (its ``record_id`` tag) is skipped.

    blockbench-record multirun/2026-12-02/22-30-00          # into ./mlflow.db, experiment blockbench
    blockbench-record results/ --tracking-uri sqlite:///h200.db
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from blockbench.config.paths import default_tracking_uri
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.measure.metric_names import ARTIFACT_MB
from blockbench.recording.artifacts import log_run_files
from blockbench.recording.layout import FINGERPRINT_FILE, LEGACY_ENGINE_FILES, RUN_FILE, SWEEP_FILE
from blockbench.recording.models import engine_file, log_measurement, record_engine
from blockbench.recording.ui import describe_run, describe_sweep
from blockbench.tracking import SWEEP_TAG, Tracker

log = logging.getLogger(__name__)

RECORD_ID_TAG = "blockbench.record_id"
RECORDED_FROM_TAG = "blockbench.recorded_from"
SWEEP_RECORD_TAG = "blockbench.record_id.sweep"  # on a recorded sweep's parent: the sweep's id


def _engine_files(run: Mapping[str, Any], folder: Path) -> list[Path] | None:
    """The engine files a run file lists; folders from older versions list them in ``engine_files.json``."""
    if run.get("engine_files") is not None:
        return [Path(p) for p in run["engine_files"]]
    legacy = folder / LEGACY_ENGINE_FILES
    return [Path(p) for p in json.loads(legacy.read_text())] if legacy.exists() else None


def find_run_files(paths: Sequence[Path]) -> list[Path]:
    """Every ``run.json`` under the given folders (or the files themselves), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() and path.name == RUN_FILE:
            found.append(path)
        elif path.is_dir():
            found += sorted(path.rglob(RUN_FILE), key=lambda p: (str(p.parent.parent), _job_number(p.parent)))
        else:
            raise ConfigError(f"{path} is neither a folder nor a {RUN_FILE} file")
    if not found:
        raise ConfigError(f"no {RUN_FILE} under {', '.join(map(str, paths))}: were the runs made with tracking off?")
    return list(dict.fromkeys(found))


def _job_number(folder: Path) -> int:
    return int(folder.name) if folder.name.isdigit() else sys.maxsize


def _sweep_of(run_file: Path) -> tuple[str, str] | None:
    """(sweep id, sweep folder) when the run's folder is a job of a sweep, else None."""
    info_path = run_file.parent.parent / SWEEP_FILE
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return None
    sweep_id = info.get("sweep_id")
    return (str(sweep_id), str(run_file.parent.parent)) if sweep_id else None


def record(paths: Sequence[Path], uri: str, experiment: str) -> tuple[list[str], int]:
    """Log every run file under ``paths`` into the store; (new run ids, number skipped as already recorded)."""
    files = find_run_files(paths)
    tracker = Tracker(uri, experiment)
    parents: dict[str, str] = {}
    created: list[str] = []
    skipped = 0
    for path in files:
        run = json.loads(path.read_text())
        if tracker.run_holding(RECORD_ID_TAG, run["record_id"], finished_only=False):
            skipped += 1
            continue
        parent_id = None
        sweep = _sweep_of(path)
        if sweep is not None:
            sweep_id, folder = sweep
            parent_id = parents.get(sweep_id) or _parent_for(tracker, sweep_id, folder)
            parents[sweep_id] = parent_id
        tags = {**run["tags"], RECORD_ID_TAG: run["record_id"], RECORDED_FROM_TAG: str(path.parent.resolve())}
        run_id = tracker.start_run(run["run_name"], tags, parent_id, start_time=run["start_time"])
        tracker.log_params(run_id, run["params"])
        tracker.log_artifact(run_id, path.parent / FINGERPRINT_FILE)
        engine_files = _engine_files(run, path.parent)
        model = None
        if engine_files is not None:  # got past the build: the files a tracked run logs
            tracking = OmegaConf.load(path.parent / "config.yaml").tracking
            model = record_engine(
                tracker, run_id, run["run_name"], run["params"], run["tags"], engine_files, tracking, path.parent
            )  # type: ignore[arg-type]
        log_measurement(tracker, run_id, run["metrics"], model)
        for trial, metrics in enumerate(run.get("trial_metrics", [])):  # older run files have none
            tracker.log_metrics(run_id, metrics, step=trial)
        tracker.set_tags(run_id, describe_run(run["tags"], run["metrics"], model))
        if engine_files is not None:
            files = (path.parent, engine_files, model, engine_file(engine_files))
            stored = log_run_files(tracker, run_id, tracking, *files)  # type: ignore[arg-type]
            tracker.log_metrics(run_id, {ARTIFACT_MB: stored / 2**20})
        tracker.end(run_id, run["status"], end_time=run["end_time"])
        created.append(run_id)
        log.info("record: %s -> run %s (%s)", path.parent, run_id, run["status"])
    for parent_id in parents.values():
        describe_sweep(tracker, parent_id)
        tracker.end(parent_id, "FINISHED")
    return created, skipped


def _parent_for(tracker: Tracker, sweep_id: str, folder: str) -> str:
    """The parent run of a recorded sweep: an earlier recording's (so a sweep copied back twice stays one sweep)."""
    found = tracker.run_holding(SWEEP_RECORD_TAG, sweep_id, finished_only=False)
    if found:
        tracker.set_tags(found, {"status": "running"})
        return found
    name = f"sweep {Path(folder).parent.name} {Path(folder).name} (recorded)"
    return tracker.start_run(name, {SWEEP_TAG: "parent", SWEEP_RECORD_TAG: sweep_id, RECORDED_FROM_TAG: folder})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="blockbench-record", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="job or sweep folders (searched for run.json)")
    parser.add_argument("--tracking-uri", default=default_tracking_uri(), help="MLflow store (default: %(default)s)")
    parser.add_argument("--experiment", default="blockbench", help="MLflow experiment (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        created, skipped = record(args.paths, args.tracking_uri, args.experiment)
    except BlockbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXPLAINED_EXIT
    print(f"recorded {len(created)} run(s) into {args.tracking_uri} ({skipped} already there)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
