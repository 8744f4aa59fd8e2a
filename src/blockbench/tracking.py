"""MLflow logging through an explicit client (no global active run, so jobs in one process never mix)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from blockbench.errors import ConfigError

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}`` with lists kept as one value."""
    flat: dict[str, str] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def artifact_root_for(uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database file (never into the working directory)."""
    if urlparse(uri).scheme == "sqlite":
        db_path = Path(uri.removeprefix("sqlite:///"))
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
        return (db_path.parent / "mlartifacts" / folder).as_uri()
    return None


class Tracker:
    """One experiment in one tracking store; creates runs and logs to them."""

    def __init__(self, uri: str, experiment: str) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self._mlflow = mlflow
        if urlparse(uri).scheme == "sqlite":
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        try:
            self.experiment_id = self._experiment_id(experiment)
        except Exception as exc:  # unreachable server, unwritable database, ...
            raise ConfigError(f"tracking.uri={uri!r} cannot be used: {type(exc).__name__}: {exc}") from exc

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_root_for(self.uri, name))
        except MlflowException:  # another process created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def start_run(self, run_name: str | None, tags: Mapping[str, str], parent_run_id: str | None = None) -> str:
        all_tags = dict(tags)
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 params per call
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str) -> None:
        self.set_tags(run_id, {"status": "finished"})
        self.client.set_terminated(run_id, "FINISHED")

    def fail(self, run_id: str, exc: BaseException, stage: str, status: str = "FAILED") -> None:
        """End a run as FAILED (or KILLED) with the error and stage recorded; never raises."""
        try:
            message = f"{type(exc).__name__}: {exc}"
            self.set_tags(run_id, {"status": status.lower(), "error": message[:5000], "error_stage": stage})
            self.client.log_text(run_id, "".join(traceback.format_exception(exc)), "error.txt")
        except Exception:
            log.exception("tracking: could not record the error on run %s", run_id)
        finally:
            self.client.set_terminated(run_id, status)

    def ui_command(self) -> str:
        return f"mlflow ui --backend-store-uri {self.uri}"
