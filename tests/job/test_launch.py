"""The process boundary: each job executes in a fresh worker, measures with no other thread, records the state it
measured under, and a worker that crashes, exits or hangs is a failed job — never a hung, lost or orphaned one."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from blockbench import interrupts
from blockbench.job import faults
from blockbench.job.launch import WorkerDied, WorkerHung
from blockbench.job.run import run_job
from blockbench.recording.files import MEASURED_STATE_KEY
from tests.helpers import ROOT, SHARED_CACHE, TINY, main_py, store_runs

UNTRACKED = [*TINY, "tracking.enabled=false"]


def _run_file(work: Path) -> dict:
    return json.loads((work / "run.json").read_text())


def _state(work: Path) -> dict[str, str]:
    return json.loads((work / "environment.json").read_text())[MEASURED_STATE_KEY]


def test_the_measuring_process_is_a_fresh_worker_running_no_other_thread(compose_cfg, tmp_path: Path) -> None:
    result = run_job(compose_cfg(*UNTRACKED))
    assert result.metrics["latency_ms_median"] > 0
    state = _state(tmp_path / "work")
    assert state["python_threads"] == "MainThread"  # read as the timed window opened
    assert int(state["pid"]) != os.getpid()
    assert state["ort_execution_mode"] == "ORT_SEQUENTIAL" and state["cudnn_allow_tf32"] == "False"
    run = _run_file(tmp_path / "work")
    assert run["params"]["state.torch_num_threads"] == state["torch_num_threads"]
    assert "state.pid" not in run["params"]


def test_inline_runs_in_this_process(compose_cfg, tmp_path: Path) -> None:
    run_job(compose_cfg(*UNTRACKED, "run.isolation=inline"))
    assert int(_state(tmp_path / "work")["pid"]) == os.getpid()


def test_a_worker_that_exits_fails_its_job_with_the_status_and_stage(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(faults.ENV, "model=exit")
    with pytest.raises(WorkerDied, match=r"exited with status 3 during stage model"):
        run_job(compose_cfg(*UNTRACKED))
    run = _run_file(tmp_path / "work")
    assert run["status"] == "FAILED" and run["tags"]["error_stage"] == "model"
    assert "WorkerDied" in run["tags"]["error"]


def test_a_hung_worker_is_killed_past_its_stopping_rule(compose_cfg, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(faults.ENV, "benchmark=hang")
    caplog.set_level(logging.DEBUG, logger="blockbench.job.launch")
    cfg = compose_cfg(*UNTRACKED, "benchmark.max_s=0.5", "run.hang_margin_s=1")
    with pytest.raises(WorkerHung, match=r"still in its benchmark after \d+ s.*it was killed"):
        run_job(cfg)
    run = _run_file(tmp_path / "work")
    assert run["status"] == "FAILED" and run["tags"]["error_stage"] == "benchmark"
    _assert_gone(caplog.text)


def test_sigterm_in_the_parent_kills_the_worker(compose_cfg, tmp_path: Path, monkeypatch, caplog) -> None:
    """The fault goes to the parent (as a scheduler's SIGTERM would); the worker must not outlive it."""
    monkeypatch.setenv(faults.ENV, "benchmark=sigterm")
    caplog.set_level(logging.DEBUG, logger="blockbench.job.launch")
    previous = signal.getsignal(signal.SIGTERM)
    interrupts.handle_sigterm()
    try:
        with pytest.raises(interrupts.Terminated):
            run_job(compose_cfg(*UNTRACKED, "benchmark.min_s=30"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    run = _run_file(tmp_path / "work")
    assert run["status"] == "KILLED" and run["tags"]["error_stage"] == "benchmark"
    _assert_gone(caplog.text)


def _assert_gone(log_text: str) -> None:
    (pid,) = re.findall(r"worker: pid (\d+) started", log_text)
    try:
        assert psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_a_sweep_starts_each_job_from_the_defaults_and_survives_a_killed_worker(tmp_path: Path) -> None:
    """``-m block=vgg,mobilenet hardware.cpu_threads=1,0``: the second job of each block runs with torch's default
    thread count although the job before it set 1, and the worker SIGKILLed mid-measure fails only its own run."""
    default = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True
    ).stdout.strip()
    cmd = [sys.executable, str(ROOT / "main.py"), "-m", *TINY, "block=vgg,mobilenet", "hardware.cpu_threads=1,0"]
    cmd += [f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    cmd += [f"cache_dir={SHARED_CACHE}", "benchmark.min_s=0.3"]  # not about the cache
    env = {**os.environ, faults.ENV: "benchmark=crash@block.name=mobilenet,hardware.cpu_threads=1"}
    proc = main_py(cmd, cwd=tmp_path, env=env)  # forked from the session's main.py server
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    assert "4 jobs, 3 finished, 1 failed" in proc.stdout
    jobs = {int(p.parent.name): p.parent for p in (tmp_path / "sweep").glob("*/environment.json")}
    threads = [_state(jobs[n]).get("torch_num_threads") for n in (0, 1, 3)]
    assert threads == ["1", default, default]  # vgg/1, vgg/0, mobilenet/0 (mobilenet/1 was killed)
    runs = {(r["tags"]["block"], r["status"]) for r in store_runs(tmp_path / "mlflow.db") if "block" in r["tags"]}
    assert runs == {("vgg", "FINISHED"), ("mobilenet", "FAILED"), ("mobilenet", "FINISHED")}
    (failed,) = [r for r in store_runs(tmp_path / "mlflow.db") if r["status"] == "FAILED" and "block" in r["tags"]]
    assert failed["tags"]["error_stage"] == "benchmark" and "killed by SIGKILL" in failed["tags"]["error"]
    assert not proc.stderr.count("Traceback")
