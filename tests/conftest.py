"""Shared fixtures: config composition through Hydra's compose API and a tiny-width main.py runner."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tiny widths and a short stopping rule: end-to-end runs take seconds, not minutes.
TINY = [
    "model.channels=[8,8,16,16,32]",
    "model.blocks_per_stage=1",
    "benchmark.warmup_iters=2",
    "benchmark.warmup_s=0",
    "benchmark.min_iters=5",
    "benchmark.min_s=0",
    "benchmark.progress=false",
]


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose ``conf/config.yaml`` with overrides, as Hydra would for ``main.py`` (work dirs under tmp)."""
    base = [f"work_dir={tmp_path / 'work'}", f"cache_dir={tmp_path / 'cache'}"]

    def _compose(*overrides: str) -> DictConfig:
        return compose(config_name="config", overrides=[*base, *overrides])

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield _compose


def run_main(*args: str, tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python main.py`` in a subprocess with its MLflow store and outputs under ``tmp_path``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "main.py"),
        *args,
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"cache_dir={tmp_path / 'cache'}",
    ]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def store_runs(db: Path) -> list[dict[str, object]]:
    """All runs in an MLflow sqlite store with their status and tags (read directly, no MLflow import)."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT run_uuid, status FROM runs").fetchall()
        runs = []
        for run_id, status in rows:
            tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid=?", (run_id,)).fetchall())
            metrics = dict(con.execute("SELECT key, value FROM latest_metrics WHERE run_uuid=?", (run_id,)).fetchall())
            runs.append({"run_id": run_id, "status": status, "tags": tags, "metrics": metrics})
    return runs
