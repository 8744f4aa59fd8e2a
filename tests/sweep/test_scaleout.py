"""Scaling out: Hydra's Ray and submitit launchers with blockbench's presets, every job logging to a tracking server.

* A real ``mlflow server`` (sqlite backend, artifacts served by the server) on a loopback port, started by a
  fixture and always killed.
* A tiny 4-job sweep through ``hydra/launcher=ray_cpu`` on a Ray instance the sweep starts (``ray.init`` in the
  launcher, 2 CPUs: 2 jobs at once), and the same sweep through ``hydra/launcher=submitit_local`` (2 jobs per
  batch). Each must log 4 FINISHED child runs under 1 parent, no duplicates, artifacts uploaded through the server,
  and the parent must never be taken for stale while its jobs run in other processes; running the same command
  again skips all 4 (resume).
* The presets: one GPU per job (``ray``, ``submitit_slurm``), no GPU visible to CPU-only jobs (``ray_cpu``,
  ``submitit_local``), and the sbatch script ``submitit_slurm`` submits (a stand-in ``sbatch`` records it; no
  Slurm needed).

Run alone: ``python -m pytest -m scaleout``. Skipped, saying why, without the launcher plugins
(``pip install -e ".[ray,slurm]"``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hydra import compose, initialize_config_dir

import blockbench.config.schema  # noqa: F401 - registers the config schemas that composing needs
from tests.helpers import CONF, ROOT, SHARED_CACHE, TINY, stop_session, store_runs
from tests.helpers import mlflow_server as start_mlflow_server

pytestmark = [
    pytest.mark.scaleout,
    # conf/hydra/launcher/*.yaml take the place of the plugins' configs of the same name on purpose
    pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/\w+' is validated against ConfigStore schema:UserWarning"),
]

GRID = ["block=vgg,mobilenet", "norm=bn,ln"]
EXPECTED_RUNS = {f"{b}-{n}-relu-64-fp32-onnxruntime" for b in ("vgg", "mobilenet") for n in ("bn", "ln")}
SWEEP_TIMEOUT_S = 300


def require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[{extra}]')")


# --- processes: everything a test starts is stopped by id ------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 (sqlite store, ``--serve-artifacts``); its URL. Killed at the end."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    args = ("--serve-artifacts", "--artifacts-destination", str(folder / "mlartifacts"))
    with start_mlflow_server(folder / "mlflow.db", folder / "server.log", *args) as url:
        yield url


# --- sweeps ------------------------------------------------------------------------------------------------------


def run_sweep(*args: str, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, int, str]:
    """``python main.py -m ...`` in its own session; (exit code, its pid, output). Whatever it started is stopped."""
    # The session's content cache: these tests read no cache tag, and GRID's exports are those test_pipeline made.
    cmd = [sys.executable, str(ROOT / "main.py"), "-m", *args, f"cache_dir={SHARED_CACHE}"]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_session(proc)
        out, _ = proc.communicate()
        pytest.fail(f"sweep did not end within {SWEEP_TIMEOUT_S} s:\n{out[-6000:]}")
    finally:
        stop_session(proc)
    return proc.returncode, proc.pid, out


def server_runs(url: str, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


def check_sweep(url: str, experiment: str, sweep_dir: Path, driver_pid: int, out: str) -> list[Any]:
    """One parent, 4 FINISHED children linked to it, no duplicates, artifacts on the server; the children."""
    from mlflow.tracking import MlflowClient

    runs = server_runs(url, experiment)
    parents = [r for r in runs if r.data.tags.get("blockbench.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("blockbench.sweep") != "parent"]
    assert len(parents) == 1, out[-4000:]
    parent = parents[0]
    assert len(children) == 4, [c.info.run_name for c in children]
    # the parent ends FINISHED and was never ended as stale while jobs ran in other processes
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["status"] == "finished"
    assert "error" not in parent.data.tags, parent.data.tags.get("error")
    assert parent.data.tags["sweep_dir"] == str(sweep_dir)
    assert parent.data.metrics["jobs_finished"] == 4
    # children: all FINISHED, all linked, every config exactly once
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.info.run_name for c in children) == sorted(EXPECTED_RUNS)
    assert len({c.data.tags["blockbench.config_hash"] for c in children}) == 4
    # every job ran in a launcher worker, not in the process that launched the sweep
    assert str(driver_pid) not in {c.data.tags["blockbench.pid"] for c in children}
    # metrics and artifacts went through the server
    client = MlflowClient(tracking_uri=url)
    for child in children:
        assert child.data.metrics["latency_ms_median"] > 0
        assert child.info.artifact_uri.startswith("mlflow-artifacts:"), child.info.artifact_uri
        assert {"config.yaml", "environment.json", "latencies.csv"} <= {
            a.path for a in client.list_artifacts(child.info.run_id)
        }
    assert sorted(p.parent.name for p in sweep_dir.glob("*/result.json")) == ["0", "1", "2", "3"]
    assert "sweep: 4 jobs, 4 finished, 0 failed, 0 skipped" in out
    return children


def check_resumed(url: str, experiment: str, first_children: list[Any], out: str) -> None:
    """The same sweep again: all 4 skipped, no new child run, a second parent that counts 4 skips."""
    runs = server_runs(url, experiment)
    parents = [r for r in runs if r.data.tags.get("blockbench.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("blockbench.sweep") != "parent"]
    assert "sweep: 4 jobs, 0 finished, 0 failed, 4 skipped" in out, out[-4000:]
    assert sorted(c.info.run_id for c in children) == sorted(c.info.run_id for c in first_children)
    assert len(parents) == 2
    second = max(parents, key=lambda r: r.info.start_time)
    assert second.info.status == "FINISHED"
    assert second.data.metrics["jobs_skipped"] == 4


@pytest.mark.slow
def test_ray_sweep_two_workers_logs_to_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    require("ray", "ray")
    require("hydra_plugins.hydra_ray_launcher", "ray")
    # A short temp dir: Ray's unix sockets live under it (107-character limit); removed afterwards.
    ray_tmp = tempfile.mkdtemp(prefix="bbray-")
    try:
        launcher = [
            "hydra/launcher=ray_cpu",
            "hydra.launcher.ray.init.address=local",  # a Ray instance of this sweep, whatever else runs here
            "hydra.launcher.ray.init.num_cpus=2",  # with remote.num_cpus=1: 2 jobs at once
            "hydra.launcher.ray.init.num_gpus=0",
            "hydra.launcher.ray.init.include_dashboard=false",
            f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
        ]
        args = [*launcher, *TINY, *GRID, f"tracking.uri={mlflow_server}", "tracking.experiment=scaleout-ray"]
        code, pid, out = run_sweep(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp_path=tmp_path)
        assert code == 0, out[-6000:]
        children = check_sweep(mlflow_server, "scaleout-ray", tmp_path / "sweep", pid, out)
        assert len({c.data.tags["blockbench.pid"] for c in children}) >= 2  # two Ray workers ran jobs

        code, _, out = run_sweep(*args, f"hydra.sweep.dir={tmp_path / 'again'}", tmp_path=tmp_path)
        assert code == 0, out[-6000:]
        check_resumed(mlflow_server, "scaleout-ray", children, out)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_submitit_local_sweep_logs_to_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    require("submitit", "slurm")
    require("hydra_plugins.hydra_submitit_launcher", "slurm")
    launcher = ["hydra/launcher=submitit_local", "hydra.sweeper.max_batch_size=2"]  # 2 jobs at once
    args = [*launcher, *TINY, *GRID, f"tracking.uri={mlflow_server}", "tracking.experiment=scaleout-submitit"]
    code, pid, out = run_sweep(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp_path=tmp_path)
    assert code == 0, out[-6000:]
    children = check_sweep(mlflow_server, "scaleout-submitit", tmp_path / "sweep", pid, out)
    assert len({c.data.tags["blockbench.pid"] for c in children}) == 4  # one process per job
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))) == 4

    code, _, out = run_sweep(*args, f"hydra.sweep.dir={tmp_path / 'again'}", tmp_path=tmp_path)
    assert code == 0, out[-6000:]
    check_resumed(mlflow_server, "scaleout-submitit", children, out)


@pytest.mark.slow
def test_slurm_preset_submits_one_gpu_per_job(tmp_path: Path) -> None:
    """The sbatch script of a 4-job sweep, recorded by a stand-in ``sbatch`` that then refuses it."""
    require("submitit", "slurm")
    require("hydra_plugins.hydra_submitit_launcher", "slurm")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_ins = {
        "sbatch": 'cp "$1" "$SBATCH_CAPTURE"\necho "sbatch: error: no cluster here" >&2\nexit 1',
        "srun": "exit 1",  # submitit checks that it exists; never called
    }
    for name, body in stand_ins.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "job.sbatch"
    db = tmp_path / "mlflow.db"
    code, _, out = run_sweep(
        "hydra/launcher=submitit_slurm",
        "hardware.device=cuda",
        *TINY,
        *GRID,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"tracking.uri=sqlite:///{db}",
        tmp_path=tmp_path,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SBATCH_CAPTURE": str(script)},
    )
    assert code != 0 and "no cluster here" in out, out[-4000:]
    text = script.read_text()
    for line in (
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --nodes=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --array=0-3%4",  # 4 jobs, at most min(4, array_parallelism) at once
        "#SBATCH --time=60",
        f"export BLOCKBENCH_ROOT='{ROOT}'",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), f"{line!r} not in:\n{text}"
    assert f"{sys.executable} -u -m submitit.core._submit" in text
    assert store_runs(db) == []  # nothing ran, nothing logged


# --- presets -----------------------------------------------------------------------------------------------------


def launcher_config(name: str) -> Any:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True).hydra


def test_ray_preset_reserves_one_gpu_per_job() -> None:
    launcher = launcher_config("ray").launcher
    assert launcher._target_ == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert launcher.ray.remote.num_gpus == 1
    assert launcher.ray.remote.runtime_env.env_vars.BLOCKBENCH_ROOT == str(ROOT)
    # a key Ray refuses when connecting to a running cluster (the plugin sets it unless present)
    assert "object_store_memory" in launcher.ray.init and launcher.ray.init.object_store_memory is None


def test_cpu_presets_hide_every_gpu() -> None:
    ray_cpu = launcher_config("ray_cpu").launcher
    assert ray_cpu.ray.remote.num_gpus == 0
    assert ray_cpu.ray.remote.runtime_env.env_vars.CUDA_VISIBLE_DEVICES == ""
    assert ray_cpu.ray.remote.runtime_env.env_vars.BLOCKBENCH_ROOT == str(ROOT)
    local = launcher_config("submitit_local").launcher
    assert local._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    assert local.gpus_per_node == 0  # submitit's local executor: CUDA_VISIBLE_DEVICES="" for every job


def test_slurm_preset_reserves_one_gpu_per_job() -> None:
    slurm = launcher_config("submitit_slurm").launcher
    assert slurm._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (slurm.gpus_per_node, slurm.tasks_per_node, slurm.nodes) == (1, 1, 1)
    assert slurm.gpus_per_task is None and slurm.gres is None  # no second, conflicting GPU request


def test_stop_session_ends_what_a_command_started() -> None:
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    leader = subprocess.Popen([sys.executable, "-c", code + "time.sleep(600)"], start_new_session=True)
    deadline = time.monotonic() + 30
    while not psutil.Process(leader.pid).children() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = psutil.Process(leader.pid).children()[0]
    stop_session(leader, grace_s=5)
    assert leader.returncode is not None
    _, alive = psutil.wait_procs([child], timeout=5)
    assert all(proc.status() == psutil.STATUS_ZOMBIE for proc in alive)  # dead; only its parent may not reap it
