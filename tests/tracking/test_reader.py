"""The store reader: the report and compare read a store by its URI, never through MLflow's global tracking URI,
and see the runs as ``mlflow.search_runs`` would have shown them."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pandas as pd

from blockbench.report.store import search
from blockbench.tracking import Tracker
from blockbench.tracking.reader import StoreReader


def test_reading_a_store_leaves_the_global_uri_alone_and_matches_mlflow_search_runs(
    tmp_path: Path, migrated_store: Path
) -> None:
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp")
    for n, latency in enumerate((1.5, 2.5)):
        run_id = tracker.start_run(f"run-{n}", {"block": "vgg" if n else "mobilenet"})
        tracker.log_params(run_id, {"backend.name": "torch"})
        tracker.log_metrics(run_id, {"latency_ms_median": latency})
        tracker.finish(run_id)
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.set_tracking_uri(elsewhere)
    try:
        ours = search(uri, "exp", order_by=["attributes.start_time ASC"])
        assert mlflow.get_tracking_uri() == elsewhere  # untouched by the read
        mlflow.set_tracking_uri(uri)
        theirs = mlflow.search_runs(experiment_names=["exp"], order_by=["attributes.start_time ASC"])
    finally:
        mlflow.set_tracking_uri(None)
    assert isinstance(theirs, pd.DataFrame)
    assert set(ours.columns) == set(theirs.columns)
    columns = ["run_id", "status", "metrics.latency_ms_median", "params.backend.name", "tags.block", "start_time"]
    pd.testing.assert_frame_equal(ours[columns].reset_index(drop=True), theirs[columns].reset_index(drop=True))
    reader = StoreReader(uri)
    assert reader.experiment_id("missing") is None
    assert reader.runs(reader.experiment_id("exp") or "", "tags.block = 'nothing'").empty
