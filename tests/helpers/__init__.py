"""Helpers shared by test modules: tiny-width settings, a ``main.py`` runner, store readers, an MLflow server.

Fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
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


def run_main(
    *args: str,
    tmp_path: Path,
    timeout: int = 600,
    env: dict[str, str] | None = None,
    cache_dir: Path | None = None,
    forked: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python main.py`` in a subprocess with its MLflow store and outputs under ``tmp_path``.

    ``cache_dir``: the content cache (default ``tmp_path/cache``; :data:`SHARED_CACHE` where the test is not about
    what the cache holds). ``forked``: through :func:`main_py` (the same command, without the imports' seconds).
    """
    cmd = [
        sys.executable,
        str(ROOT / "main.py"),
        *args,
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"cache_dir={cache_dir or tmp_path / 'cache'}",
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if forked:
        return main_py(cmd, cwd=tmp_path, env=full_env, timeout=timeout)
    return subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout)


# One content cache (ONNX exports, MAC counts, references, engines) for the whole session, for tests that are not
# about what the cache holds: its entries are keyed by their content's sources, so sharing it changes no result,
# and a test's export of a config an earlier test exported is a hit (seconds each, a dynamo export).
SHARED_CACHE = Path(tempfile.gettempdir()) / f"blockbench-tests-{os.getpid()}" / "cache"
atexit.register(shutil.rmtree, SHARED_CACHE.parent, ignore_errors=True)


class _MainServer:
    """``tests/helpers/main_server.py``: forks ``python main.py ARGS`` from a process that has its imports done."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        script = str(Path(__file__).with_name("main_server.py"))
        self.proc = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        atexit.register(self.close)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _answer(self, word: str, deadline: float | None) -> int | None:
        """The server's next line (``word N``), or None if ``deadline`` passes first."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline().decode()
        if not line.startswith(f"{word} "):
            raise RuntimeError(f"main.py server: expected {word!r}, got {line!r} (exit {self.proc.poll()})")
        return int(line.split()[1])

    def run(self, cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, merge: bool) -> tuple[int, str, str]:
        with tempfile.TemporaryDirectory(prefix="bb-main-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            request = {"argv": cmd[1:], "cwd": str(cwd), "env": env, "stdout": str(out)}
            request["stderr"] = None if merge else str(err)
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            pid = self._answer("pid", None)
            status = self._answer("status", time.monotonic() + timeout)
            if status is None:  # as subprocess.run does on a timeout: kill it, then raise
                os.kill(pid, signal.SIGKILL)
                self._answer("status", None)
                raise subprocess.TimeoutExpired(cmd, timeout, out.read_text(errors="replace"))
            return os.waitstatus_to_exitcode(status), out.read_text(), "" if merge else err.read_text()


_SERVER: list[_MainServer] = []


def main_py(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600, merge: bool = False
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, capture_output=True, text=True)`` for ``cmd = [python, main.py, *args]``, forked.

    The child is the command: its own process, argv, working directory, environment, standard streams and exit
    code (a signal that killed it as a negative code, as subprocess reports); only the interpreter's start and
    ``main.py``'s top-level imports are done once for the session. ``merge``: stderr into stdout.
    """
    assert cmd[0] == sys.executable and cmd[1].endswith("main.py"), cmd
    if not _SERVER or _SERVER[0].proc.poll() is not None:
        _SERVER[:] = [_MainServer()]
    code, out, err = _SERVER[0].run(cmd, cwd, env, timeout, merge)
    return subprocess.CompletedProcess(cmd, code, out, err)


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
