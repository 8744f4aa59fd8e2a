"""The MLflow UI, for real: ``mlflow server`` on a loopback port over a store a real tiny sweep of 4 ONNX Runtime
jobs filled, opened in headless Chromium, with the runs, a param and a metric asserted visible, the sweep's saved
view (its axes as columns, fastest first), the run comparison and the Models tab (the engines and their latency).

``BLOCKBENCH_UI_SHOTS=docs/mlflow_ui python -m pytest -q tests/tracking/test_mlflow_ui.py`` also writes the screenshots
that docs/mlflow_ui.md shows (palette PNGs).

The UI is a JavaScript app, so Chromium gets a virtual-time budget to render it, and the server is polled over
its REST API before any page is opened. The server runs in its own process group and is always killed.
Skipped (with the reason) where Chromium is not installed; ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from blockbench.recording.ui import CHART_FILE, NOTE_TAG, WORKFLOW
from blockbench.tracking import ui_hint
from tests.helpers import TINY, mlflow_server, run_main

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
    "--window-size=2400,1100",
    "--virtual-time-budget=15000",
]


SWEEP_ARGS = ("block=vgg,mobilenet", "norm=bn,ln")  # 4 jobs, 4 engines (ONNX Runtime's optimized graphs)
SHOTS = os.environ.get("BLOCKBENCH_UI_SHOTS")  # a folder: keep the screenshots there (the docs' images)
VIEW_LINE = re.compile(r"the sweep's runs in the MLflow UI: /(\S+)")


def _get_json(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return json.loads(response.read())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real tiny sweep of 4 jobs; (its store, the address of its saved view that it printed)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    folder = tmp_path_factory.mktemp("ui_sweep")
    proc = run_main("-m", *TINY, *SWEEP_ARGS, f"hydra.sweep.dir={folder / 'sweep'}", tmp_path=folder)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    view = VIEW_LINE.search(proc.stdout + proc.stderr)
    assert view, "the sweep did not print its view's address"
    return folder / "mlflow.db", view.group(1)


@pytest.fixture(scope="module")
def server(sweep: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``mlflow server`` on 127.0.0.1 over the tiny sweep's store; yields (base URL, store)."""
    db, _ = sweep
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
    if SHOTS:  # for the docs: a 128-colour palette keeps each under 300 KB
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        Image.open(shot).convert("RGB").quantize(128).save(Path(SHOTS) / shot.name, optimize=True)
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
    assert len(children) == 4

    # The page blockbench prints lands on the runs, not on MLflow 3's GenAI overview (its default view).
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    page = ui_hint(base, experiment["experiment_id"]).removeprefix("open ").removesuffix(" in a browser")
    text = open_page(page, shots / "experiment.png", shots / "p0")
    assert parent_name in text and "matching runs" in text, text[:2000]

    # The experiment's runs page: the sweep parent (its 4 jobs nest under it) and the run count.
    text = open_page(
        f"{base}/#/experiments/{experiment['experiment_id']}/runs", shots / "experiment_runs.png", shots / "p1"
    )
    assert parent_name in text, text[:2000]
    assert "5 matching runs" in text

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


def test_the_sweep_opens_as_a_user_compares_it(
    server: tuple[str, Path], sweep: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base, db = server
    _, view = sweep
    shots = tmp_path_factory.mktemp("ui_sweep_screenshots")
    with sqlite3.connect(db) as con:
        (experiment_id,) = con.execute("SELECT experiment_id FROM experiments WHERE name = 'blockbench'").fetchone()
        jobs = con.execute(
            "SELECT r.name, m.value FROM runs r JOIN latest_metrics m ON m.run_uuid = r.run_uuid "
            "WHERE m.key = 'latency_ms_median' ORDER BY m.value"
        ).fetchall()
        models = dict(con.execute("SELECT name, source_run_id FROM logged_models").fetchall())
        (note,) = con.execute(
            "SELECT value FROM tags WHERE key = ? AND run_uuid IN "
            "(SELECT run_uuid FROM tags WHERE key = 'blockbench.sweep' AND value = 'parent')",
            (NOTE_TAG,),
        ).fetchone()
    assert len(jobs) == 4 and sorted(models) == sorted(name for name, _ in jobs)

    # The view the sweep printed: its 4 jobs only, the axes as columns, fastest first, each with its engine.
    text = open_page(f"{base}/{view}", shots / "sweep_runs.png", shots / "q0")
    assert "4 matching runs" in text and "You're viewing a shared view" in text, text[:2000]
    header = text[text.index("Run Name") :]
    for axis in ("block", "norm", "act", "resolution", "precision", "backend", "latency_ms_median", "Models"):
        assert f" {axis} " in header, f"column {axis} not shown"
    order = [text.index(name) for name, _ in jobs]
    assert order == sorted(order), "runs not ordered by median latency"

    # The run comparison the parent's description links to: every job side by side.
    compare = re.search(r"\[side by side\]\((#/compare-runs[^)]+)\)", note)
    assert compare and "| vgg |" in note and CHART_FILE in note
    text = open_page(f"{base}/{compare.group(1)}", shots / "sweep_compare.png", shots / "q1")
    assert all(name in text for name, _ in jobs) and "latency_ms_median" in text

    # The Models tab: the 4 engines, latency the first metric column, each engine's median shown.
    text = open_page(
        f"{base}/#/experiments/{experiment_id}/models?{WORKFLOW}", shots / "sweep_models.png", shots / "q2"
    )
    assert "Models" in text and all(name in text for name in models), text[:2000]
    columns = text[text.index("No dataset") :]
    first_metric = re.search(r"Dataset (\S+)", columns)
    assert first_metric and first_metric.group(1) == "latency_ms_median", columns[:500]
    assert all(str(latency)[:6] in text for _, latency in jobs), "engine latencies not shown"
    assert list((db.parent / "mlartifacts").glob(f"*/*/artifacts/{CHART_FILE}")), "no chart on the parent run"
