"""The MLflow UI, for real: ``mlflow server`` on a loopback port over a store a real tiny sweep filled, opened in
headless Chromium, with the runs, a param and a metric asserted visible and screenshots kept as artifacts.

The UI is a JavaScript app, so Chromium gets a virtual-time budget to render it, and the server is polled over
its REST API before any page is opened. The server runs in its own process group and is always killed.
Skipped (with the reason) where Chromium is not installed; ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from blockbench.tracking import ui_hint
from tests.helpers import mlflow_server
from tests.report.test_report import tiny_sweep_store

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_TIMEOUT_S = 120
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1920,1400",
    "--virtual-time-budget=15000",
]


def _get_json(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``mlflow server`` on 127.0.0.1 over the tiny sweep's store; yields (base URL, store)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    db = tiny_sweep_store(tmp_path_factory)
    with mlflow_server(db, tmp_path_factory.mktemp("mlflow_server") / "server.log") as base:
        yield base, db


def open_page(url: str, shot: Path, profile: Path) -> str:
    """Render ``url`` in headless Chromium: save a screenshot and return the page's visible text."""
    proc = subprocess.run(
        [
            CHROMIUM or "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000, f"no screenshot of {url}"
    print(f"screenshot: {shot}")
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", proc.stdout, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def test_mlflow_ui_shows_the_sweep_runs_params_and_metrics(
    server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base, db = server
    shots = tmp_path_factory.mktemp("ui_screenshots")
    (experiment,) = [
        e
        for e in _get_json(f"{base}/api/2.0/mlflow/experiments/search?max_results=10")["experiments"]
        if e["name"] == "blockbench"
    ]
    with sqlite3.connect(db) as con:
        runs = con.execute("SELECT run_uuid, name FROM runs").fetchall()
        parents = dict(con.execute("SELECT run_uuid, value FROM tags WHERE key = 'mlflow.parentRunId'").fetchall())
        params_counts = dict(
            con.execute("SELECT run_uuid, value FROM latest_metrics WHERE key = 'params_count'").fetchall()
        )
    children = {run_id: name for run_id, name in runs if run_id in parents}
    (parent_name,) = [name for run_id, name in runs if run_id not in parents]
    assert len(children) == 8

    # The page blockbench prints lands on the runs, not on MLflow 3's GenAI overview (its default view).
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    page = ui_hint(base, experiment["experiment_id"]).removeprefix("open ").removesuffix(" in a browser")
    text = open_page(page, shots / "experiment.png", shots / "p0")
    assert parent_name in text and "matching runs" in text, text[:2000]

    # The experiment's runs page: the sweep parent (its 8 jobs nest under it) and the run count.
    text = open_page(
        f"{base}/#/experiments/{experiment['experiment_id']}/runs", shots / "experiment_runs.png", shots / "p1"
    )
    assert parent_name in text, text[:2000]
    assert "9 matching runs" in text

    # All jobs side by side: every run name, a param with its values, a metric with its values.
    ids = quote(json.dumps(sorted(children)))
    exp_ids = quote(json.dumps([experiment["experiment_id"]]))
    text = open_page(
        f"{base}/#/compare-runs?runs={ids}&experiments={exp_ids}", shots / "compare_runs.png", shots / "p2"
    )
    for name in children.values():
        assert name in text, f"run {name} not shown"
    assert "block.name" in text and "mobilenet" in text and "vgg" in text
    assert "latency_ms_median" in text
    assert all(f"{value:.0f}" in text for value in params_counts.values()), "params_count values not shown"

    # One job's own page: its params and metrics in the overview.
    run_id, name = sorted(children.items())[0]
    text = open_page(
        f"{base}/#/experiments/{experiment['experiment_id']}/runs/{run_id}", shots / "run.png", shots / "p3"
    )
    assert name in text and "Parameters" in text and "precision.name" in text
    assert "Metrics" in text and "latency_ms_median" in text and "params_count" in text
