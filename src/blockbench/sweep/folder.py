"""The folder every process of one sweep shares: ``sweep.json`` (an id for this invocation, the store, the
overrides, the MLflow parent run's id, added by the first job that asks, under a file lock) and each job's
``result.json``. Launcher workers know the sweep only through it."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock
from omegaconf import DictConfig

from blockbench.recording.layout import RESULT_FILE, SWEEP_FILE, write_json
from blockbench.tracking import (
    HEARTBEAT_TAG,
    STAGE_TAG,
    SWEEP_TAG,
    Tracker,
)

log = logging.getLogger(__name__)


class ParentKeeper(Protocol):
    """The process that launched the sweep, which keeps the parent run alive (:class:`.session.Sweep`)."""

    def keep_parent_alive(self, tracker: Tracker, run_id: str) -> None: ...


SWEEP_LOCK = ".sweep.lock"


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

    def parent_run_id(self, cfg: DictConfig, launcher: ParentKeeper | None) -> str | None:
        """The sweep's parent run in this job's store, created by the first job that asks (under a lock).

        ``launcher`` is the :class:`.session.Sweep` when this job runs in the process that launched the sweep
        (Hydra's basic launcher): that process owns the parent run and keeps it alive from here on.
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
