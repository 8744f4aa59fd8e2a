"""Helpers shared by test modules: tiny-width settings, a ``main.py`` runner, store readers, an MLflow server.

Fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
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


# What the real-library tests built, one line per engine; printed in the test session's summary, so CI's log says
# how many engines TensorRT-RTX really built.
ENGINES_BUILT: list[str] = []


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


SERVER_START_TIMEOUT_S = 120


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_session(leader: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """End ``leader`` (started with ``start_new_session=True``) and every process still in its session.

    Ray's workers put themselves in process groups of their own, but stay in the session of the command that
    started the Ray instance, so the session id (= the leader's pid) finds all of them.
    """
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == leader.pid:
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    for proc in members:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(members, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    if leader.poll() is None:
        leader.kill()
    leader.wait()


@contextmanager
def mlflow_server(db: Path, log_path: Path, *extra_args: str) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 over the sqlite store ``db``; yields its URL, always stops it."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}", *extra_args]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            cmd,
            cwd=db.parent,
            # no GenAI job runner: seven fewer processes competing for CI's two cores
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: the workers die with it
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not start (exit {server.poll()}):\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        stop_session(server)
