"""Runs made with tracking off (an air-gapped GPU machine) and logged into an MLflow store afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.helpers import ROOT, TINY, run_main, store_runs
from tests.job.test_pipeline import artifact_files


def record(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "blockbench.record", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_an_untracked_sweep_is_recorded_as_the_sweep_it_would_have_been(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_main(
        "-m", *TINY, "block=vgg,mobilenet", "tracking.enabled=false", f"hydra.sweep.dir={sweep}", tmp_path=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()
    kept = json.loads((sweep / "0" / "run.json").read_text())
    assert kept["status"] == "FINISHED" and kept["metrics"]["latency_ms_median"] > 0
    assert kept["params"]["block.name"] == "vgg" and kept["tags"]["blockbench.config_hash"]

    db = tmp_path / "recorded.db"
    done = record(str(sweep), "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recorded 2 run(s)" in done.stdout
    runs = store_runs(db)
    (parent,) = [r for r in runs if r["tags"].get("blockbench.sweep") == "parent"]
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parent["run_id"]]
    assert parent["status"] == "FINISHED" and len(children) == 2
    by_block = {c["tags"]["block"]: c for c in children}
    assert by_block["vgg"]["metrics"]["latency_ms_median"] == kept["metrics"]["latency_ms_median"]
    assert all(c["status"] == "FINISHED" and c["tags"]["status"] == "finished" for c in children)
    files = artifact_files(db, by_block["mobilenet"]["run_id"])
    assert {"config.yaml", "environment.json", "latencies.csv", "fingerprint.json", ".hydra/config.yaml"} <= files
    assert any(f.startswith("engine/") for f in files)

    # Each job's engine is a LoggedModel of its run, with the latency the run measured linked to it.
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("blockbench")
    models = client.search_logged_models([experiment.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(c["run_id"] for c in children)
    for model in models:
        (latency,) = [m for m in model.metrics if m.key == "latency_ms_median"]
        run = next(c for c in children if c["run_id"] == model.source_run_id)
        assert latency.value == run["metrics"]["latency_ms_median"] and latency.run_id == run["run_id"]
        assert model.model_type == "onnxruntime" and model.params["block.name"] == run["tags"]["block"]
    assert "| vgg |" in parent["tags"]["mlflow.note.content"]  # the sweep's description lists its jobs
    assert f"mlflow.sharedViewState.sweep-{parent['run_id']}" in experiment.tags

    again = record(str(sweep), "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path)
    assert again.returncode == 0 and "recorded 0 run(s)" in again.stdout and "(2 already there)" in again.stdout
    assert len(store_runs(db)) == 3
    assert len(client.search_logged_models([experiment.experiment_id])) == 2


def test_a_failed_untracked_run_is_kept_and_recorded_as_failed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *TINY, "tracking.enabled=false", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BLOCKBENCH_FAULT": "build"},
    )
    assert proc.returncode != 0
    kept = json.loads((tmp_path / "run" / "run.json").read_text())
    assert kept["status"] == "FAILED" and kept["tags"]["error_stage"] == "build" and not kept["metrics"]
    db = tmp_path / "recorded.db"
    assert record(str(tmp_path / "run"), "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path).returncode == 0
    (run,) = store_runs(db)
    assert run["status"] == "FAILED" and "InjectedFault" in run["tags"]["error"]


def test_a_folder_without_run_files_is_an_explained_error(tmp_path: Path) -> None:
    proc = record(str(tmp_path), "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert proc.returncode == 2 and "no run.json under" in proc.stderr
    assert not (tmp_path / "x.db").exists()
