"""A run's files into the tracking store: the small ones copied, large model files once per content."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from blockbench.build.cache import sha256_file
from blockbench.config.schema import TrackingConfig
from blockbench.measure import attribution, latencies
from blockbench.recording.layout import CONFIG_FILE, ENVIRONMENT_FILE, TRIALS_DIR, TRIALS_FILE, WORKER_LOG, onnx_files
from blockbench.tracking import Tracker
from blockbench.tracking.logged_models import ModelRef

log = logging.getLogger(__name__)

CONTENT_TAG = "content_sha256"
KEPT_FILES = (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    latencies.FILE,
    attribution.FILE,
    WORKER_LOG,
    TRIALS_FILE,
)  # logged when present


def log_run_files(
    tracker: Tracker,
    run_id: str,
    tracking: TrackingConfig,
    work: Path,
    engine_files: list[Path],
    model: ModelRef | None = None,
    model_file: Path | None = None,
) -> int:
    """Log a run's files from its work folder (now, or later by the record command); returns the bytes this run
    added to the artifact store. ``model``: the LoggedModel holding ``model_file`` (the engine): a large engine
    file is then a reference to the model's copy."""
    small = [work / name for name in KEPT_FILES if (work / name).exists()]
    for path in small:  # a build-only run has no latencies
        tracker.log_artifact(run_id, path)
    added = sum(path.stat().st_size for path in small)
    for path in sorted((work / TRIALS_DIR).glob("worker-*.log")):  # the worker logs of the trials after the first
        tracker.log_artifact(run_id, path, TRIALS_DIR)
        added += path.stat().st_size
    if (work / ".hydra").is_dir():
        tracker.log_artifact(run_id, work / ".hydra", ".hydra")
    if tracking.log_onnx:
        for path in onnx_files(work):
            added += _log_model_file(tracker, run_id, path, "onnx", tracking)
    if tracking.log_engine:
        for path in engine_files:
            if path.is_file():
                held = model if path == model_file else None
                added += _log_model_file(tracker, run_id, path, "engine", tracking, held)
            elif path.is_dir():
                tracker.log_artifact(run_id, path, "engine")
                added += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return added


def _log_model_file(
    tracker: Tracker, run_id: str, path: Path, folder: str, tracking: TrackingConfig, model: ModelRef | None = None
) -> int:
    """Log an ONNX or engine file, or a reference to the LoggedModel (``model``) or FINISHED run that stored the
    same bytes; bytes added.

    Files under ``tracking.large_file_mb`` are always copied: a reference would save little.
    """
    keep = tracking.keep_model_files
    size = path.stat().st_size
    if size < tracking.large_file_mb * 2**20:
        tracker.log_artifact(run_id, path, folder)
        return size
    digest = sha256_file(path)
    tag = f"{CONTENT_TAG}/{folder}/{path.name}"
    held = model is not None and model.ready and keep == "first_per_content"
    holder = tracker.run_holding(tag, digest) if keep == "first_per_content" and not held else None
    tracker.set_tags(run_id, {tag: digest})
    if keep == "all" or (keep == "first_per_content" and holder is None and not held):
        tracker.log_artifact(run_id, path, folder)
        return size
    reference: dict[str, object] = {
        "sha256": digest,
        "bytes": size,
        "run_id": holder,
        "artifact": f"{folder}/{path.name}",
    }
    if held and model is not None:
        reference |= {"run_id": None, "model_id": model.model_id, "artifact": f"models:/{model.model_id}/{path.name}"}
    elif holder is None:
        reference["note"] = "not stored: tracking.keep_model_files=none"
    tracker.log_text(run_id, json.dumps(reference, indent=2), f"{folder}/{path.name}.ref.json")
    log.info(
        "tracking: %s/%s (%.0f MiB) already stored by %s; logged a reference",
        folder,
        path.name,
        size / 2**20,
        f"model {reference['model_id']}" if held else f"run {holder}",
    )
    return 0


def drop_logged_files(tracking: TrackingConfig, work: Path, engine_files: list[Path]) -> None:
    """Large model files logged to MLflow are not kept twice; the job folder keeps logs, config, latencies."""
    if tracking.log_engine:
        for path in engine_files:
            if path.is_relative_to(work):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if tracking.log_onnx:
        for path in onnx_files(work):
            path.unlink(missing_ok=True)
