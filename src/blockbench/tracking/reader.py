"""Reading one MLflow store by its URI — what the report and ``compare`` read — without MLflow's process-wide
tracking URI: ``mlflow.search_runs`` and ``mlflow.artifacts`` read a global that every caller in the process shares
(a report in a notebook, a test, a sweep's parent), so setting it to read one store could make another caller
write to the wrong one. A :class:`StoreReader` holds its own client for its own URI and is read-only.
"""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

PAGE = 1000  # runs per search request
INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")


class StoreReader:
    """Read-only access to the MLflow store at ``uri``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @cached_property
    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def experiment_id(self, name: str) -> str | None:
        """The id of the experiment called ``name``, None if the store has none."""
        found = self.client.get_experiment_by_name(name)
        return None if found is None else str(found.experiment_id)

    def runs(self, experiment_id: str, filter_string: str = "", order_by: list[str] | None = None) -> pd.DataFrame:
        """Every run of one experiment matching ``filter_string``, one row each, in the columns
        ``mlflow.search_runs(output_format="pandas")`` gives: the run's info (start and end as UTC timestamps), then
        ``metrics.<key>``, ``params.<key>`` and ``tags.<key>`` (missing values NaN or None)."""
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id], filter_string, max_results=PAGE, order_by=order_by, page_token=token
            )
            rows += [_row(run) for run in page]
            token = page.token
            if not token:
                break
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=list(INFO_COLUMNS))
        for column in ("start_time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
        metrics = [c for c in frame if c.startswith("metrics.")]
        frame[metrics] = frame[metrics].astype(float)
        return frame

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def download(self, run_id: str, artifact_path: str) -> Path:
        """One artifact of a run as a local file: read in place from a local artifact store, else downloaded."""
        folder = tempfile.mkdtemp(prefix="blockbench-artifact-")
        return Path(self.client.download_artifacts(run_id, artifact_path, folder))

    def text(self, run_id: str, artifact_path: str) -> str:
        return self.download(run_id, artifact_path).read_text()


def _row(run: Any) -> dict[str, Any]:
    info = run.info
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "artifact_uri": info.artifact_uri,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }
    row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
    row |= {f"params.{k}": v for k, v in run.data.params.items()}
    row |= {f"tags.{k}": v for k, v in run.data.tags.items()}
    return row
