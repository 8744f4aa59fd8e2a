"""Sweeps that survive: failure isolation, resume, kill -9, Ctrl-C, concurrent writers, bad input, caches, secrets.

End-to-end tests run ``main.py`` in subprocesses with tiny widths; faults are injected with ``BLOCKBENCH_FAULT``
(:mod:`blockbench.faults`). Unit tests drive :mod:`blockbench.cache`, :mod:`blockbench.tracking` and
:mod:`blockbench.resume` directly against temporary sqlite stores.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import torch
from hydra import compose, initialize_config_dir
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench.axes.blocks import ACTIVATIONS, BLOCKS, NORMS
from blockbench.build.cache import CacheError, ContentCache
from blockbench.config.schema import BENCHMARK_MODES, COMPLEXITY_COUNTERS, PRECISIONS
from blockbench.errors import EXPLAINED_EXIT, ConfigError
from blockbench.job import faults
from blockbench.job.plan import plan_job
from blockbench.recording import resume
from blockbench.tracking import (
    CONFIG_HASH_TAG,
    HEARTBEAT_TAG,
    HOST_TAG,
    PID_STARTED_TAG,
    PID_TAG,
    STAGE_TAG,
    Heartbeat,
    StaleRunError,
    Tracker,
    redact,
    redact_params,
)
from tests.helpers import ROOT, TINY, store_runs

SECRET_ENV = {
    "MLFLOW_TRACKING_PASSWORD": "hunter2-tracking-password",
    "MLFLOW_TRACKING_TOKEN": "tok-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
}


# --- helpers -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store with its schema created (a fresh one costs each test seconds of migrations)."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    Tracker(f"sqlite:///{db}", "template")
    return db


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> Path:
    """``tmp_path/mlflow.db``, a copy of the migrated template (no runs), where ``bb`` points ``tracking.uri``."""
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    return tmp_path / "mlflow.db"


def bb(*args: str, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python main.py`` with the store, outputs and cache under ``tmp_path`` and extra environment."""
    return subprocess.run(
        _main_cmd(args, tmp_path),
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _main_cmd(args: tuple[str, ...], tmp_path: Path) -> list[str]:
    flags = [a for a in args if a in ("-m", "--multirun")]  # Hydra wants flags before the overrides
    return [
        sys.executable,
        str(ROOT / "main.py"),
        *flags,
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"cache_dir={tmp_path / 'cache'}",
        *(a for a in args if a not in flags),
    ]


def sweep(*args: str, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A tiny ``-m`` sweep; every call uses the same sweep folder, as re-running the same command would."""
    return bb("-m", *TINY, *args, f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp_path=tmp_path, env=env)


def children(tmp_path: Path) -> list[dict]:
    return [r for r in store_runs(tmp_path / "mlflow.db") if r["tags"].get("blockbench.sweep") != "parent"]


def parents(tmp_path: Path) -> list[dict]:
    return [r for r in store_runs(tmp_path / "mlflow.db") if r["tags"].get("blockbench.sweep") == "parent"]


def finished_per_block(tmp_path: Path) -> Counter[str]:
    return Counter(r["tags"]["block"] for r in children(tmp_path) if r["status"] == "FINISHED")


def artifacts(tmp_path: Path, run_id: str) -> Path:
    (folder,) = (tmp_path / "mlartifacts").glob(f"*/{run_id}/artifacts")
    return folder


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


# --- failure isolation and resume ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_failed_job_is_recorded_the_sweep_goes_on_and_a_rerun_resumes(tmp_path: Path) -> None:
    fault = {faults.ENV: "build@block.name=mobilenet"}
    first = sweep("block=vgg,mobilenet,resnet", tmp_path=tmp_path, env=fault)
    assert first.returncode == 1, output(first)[-3000:]
    assert "3 jobs, 2 finished, 1 failed, 0 skipped" in first.stdout
    assert "FAILED mobilenet-bn-relu-64-fp32-onnxruntime [build]: InjectedFault: injected fault" in first.stdout
    (failed,) = [r for r in children(tmp_path) if r["status"] != "FINISHED"]
    assert failed["status"] == "FAILED" and failed["tags"]["block"] == "mobilenet"
    assert failed["tags"]["error_stage"] == "build" and "injected fault" in failed["tags"]["error"]
    assert "InjectedFault" in (artifacts(tmp_path, failed["run_id"]) / "error.txt").read_text()
    (parent,) = parents(tmp_path)
    assert parent["status"] == "FAILED" and parent["metrics"]["jobs_failed"] == 1

    again = sweep("block=vgg,mobilenet,resnet", tmp_path=tmp_path)
    assert again.returncode == 0, output(again)[-3000:]
    assert "3 jobs, 1 finished, 0 failed, 2 skipped" in again.stdout
    assert "skipped vgg-bn-relu-64-fp32-onnxruntime: already FINISHED as run" in again.stdout
    assert finished_per_block(tmp_path) == {"vgg": 1, "mobilenet": 1, "resnet": 1}
    hashes = {r["tags"][CONFIG_HASH_TAG] for r in children(tmp_path)}
    assert len(hashes) == 3  # the failed and the redone mobilenet run share one hash
    redone = next(r for r in children(tmp_path) if r["tags"]["block"] == "mobilenet" and r["status"] == "FINISHED")
    assert redone["tags"]["export_cache"] == "hit"  # exported before the failure: the re-run skips the export
    assert sorted(p["metrics"]["jobs_skipped"] for p in parents(tmp_path)) == [0, 2]


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_kill_9_mid_sweep_then_rerun_leaves_every_config_finished_exactly_once(tmp_path: Path) -> None:
    killed = sweep(
        "block=vgg,mobilenet,resnet", tmp_path=tmp_path, env={faults.ENV: "benchmark=kill@block.name=mobilenet"}
    )
    assert killed.returncode == -signal.SIGKILL
    running = [r for r in store_runs(tmp_path / "mlflow.db") if r["status"] == "RUNNING"]
    assert {r["tags"].get("block", "parent") for r in running} == {"mobilenet", "parent"}

    resumed = sweep("block=vgg,mobilenet,resnet", tmp_path=tmp_path)
    assert resumed.returncode == 0, output(resumed)[-3000:]
    assert "3 jobs, 2 finished, 0 failed, 1 skipped" in resumed.stdout
    assert "is stale: process" in output(resumed)
    assert finished_per_block(tmp_path) == {"vgg": 1, "mobilenet": 1, "resnet": 1}
    runs = store_runs(tmp_path / "mlflow.db")
    assert not [r for r in runs if r["status"] == "RUNNING"]
    stale = [r for r in runs if r["status"] == "KILLED"]
    assert len(stale) == 2 and all(r["tags"]["error"].startswith("stale: process") for r in stale)
    assert {r["tags"]["error_stage"] for r in stale} == {"benchmark", "sweep"}


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_force_reruns_a_finished_config_and_a_corrupt_export_is_rebuilt(tmp_path: Path) -> None:
    first = sweep("block=vgg", tmp_path=tmp_path)
    assert first.returncode == 0, output(first)[-3000:]
    (entry,) = (tmp_path / "cache" / "onnx").glob("*/model.onnx")
    entry.write_bytes(entry.read_bytes()[:-10] + b"corrupted!")

    forced = sweep("block=vgg", "run.force=true", tmp_path=tmp_path)
    assert forced.returncode == 0, output(forced)[-3000:]
    assert "1 jobs, 1 finished, 0 failed, 0 skipped" in forced.stdout
    assert "is bad (model.onnx does not match its SHA-256); it will be rebuilt" in output(forced)
    runs = children(tmp_path)
    assert len(runs) == 2 and all(r["status"] == "FINISHED" for r in runs)
    assert len({r["tags"][CONFIG_HASH_TAG] for r in runs}) == 1
    assert [r["tags"]["export_cache"] for r in runs] == ["miss", "miss"]
    assert ContentCache(tmp_path / "cache", "onnx").lookup(entry.parent.name) is not None


# --- interrupts ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_ctrl_c_ends_the_run_killed_and_stops_the_sweep_cleanly(tmp_path: Path) -> None:
    proc = sweep("block=vgg,mobilenet,resnet", tmp_path=tmp_path, env={faults.ENV: "build=sigint@block.name=mobilenet"})
    assert proc.returncode == 130, output(proc)[-3000:]
    assert "Traceback" not in output(proc)
    assert "sweep interrupted (SIGINT): 2 jobs, 1 finished, 0 failed, 0 skipped, 1 killed" in proc.stdout
    runs = children(tmp_path)
    assert {r["tags"]["block"]: r["status"] for r in runs} == {"vgg": "FINISHED", "mobilenet": "KILLED"}  # no resnet
    killed = next(r for r in runs if r["status"] == "KILLED")
    assert killed["tags"]["error_stage"] == "build" and killed["tags"]["status"] == "killed"
    (parent,) = parents(tmp_path)
    assert parent["status"] == "KILLED"


@pytest.mark.usefixtures("store")
def test_sigterm_ends_a_single_run_killed(tmp_path: Path) -> None:
    proc = bb(*TINY, tmp_path=tmp_path, env={faults.ENV: "benchmark=sigterm"})
    assert proc.returncode == 143, output(proc)[-3000:]
    assert "Traceback" not in output(proc)
    (run,) = store_runs(tmp_path / "mlflow.db")
    assert run["status"] == "KILLED" and run["tags"]["error_stage"] == "benchmark"
    assert run["tags"]["error"] == "Terminated: received SIGTERM"


# --- concurrency --------------------------------------------------------------------------------------------------

_WRITER = """
import sys
from blockbench.tracking import Tracker
uri, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tracker = Tracker(uri, "stress")
for i in range(n):
    run = tracker.start_run(f"{tag}-{i}", {"writer": tag})
    tracker.log_params(run, {f"p{j}": str(j) for j in range(30)})
    tracker.log_metrics(run, {f"m{j}": float(j) for j in range(10)})
    tracker.set_tags(run, {"i": str(i)})
    tracker.finish(run)
"""


def test_concurrent_writers_on_a_fresh_store_lose_nothing(tmp_path: Path) -> None:
    """Without the store lock, MLflow's schema migration races on a fresh sqlite file and writers crash."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, uri, tag, "12"], stderr=subprocess.PIPE, text=True)
        for tag in "abc"
    ]
    errors = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], "\n".join(errors)[-3000:]
    runs = store_runs(tmp_path / "mlflow.db")
    assert len(runs) == 36 and all(r["status"] == "FINISHED" for r in runs)
    assert all(len(r["metrics"]) == 10 and r["tags"]["i"] for r in runs)
    assert Counter(r["tags"]["writer"] for r in runs) == {"a": 12, "b": 12, "c": 12}


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_two_concurrent_sweeps_on_one_store_run_each_config_exactly_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            _main_cmd(("-m", *TINY, blocks, f"hydra.sweep.dir={tmp_path / name}"), tmp_path),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, blocks in (("a", "block=vgg,mobilenet,resnet"), ("b", "block=resnet,convnext,mobilenet"))
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    assert finished_per_block(tmp_path) == {"vgg": 1, "mobilenet": 1, "resnet": 1, "convnext": 1}
    runs = store_runs(tmp_path / "mlflow.db")
    assert all(r["status"] == "FINISHED" for r in runs) and len(parents(tmp_path)) == 2
    assert all(len(r["metrics"]) >= 17 for r in children(tmp_path))
    assert sum(o.count(": skipped, ") for o in outs) == 2  # resnet and mobilenet, in whichever sweep came second


# --- bad input ----------------------------------------------------------------------------------------------------

# (arguments, the message's key phrase). Every one: exit code 2, that message, no traceback, nothing written.
BAD_INPUTS = [
    # config groups: an option that does not exist, with the ones that do (and the closest)
    (["block=foo"], "block='foo' is not an option of config group block; choose one of: convnext, mobilenet"),
    (["block=vgx"], "did you mean 'vgg'?"),
    (["norm=layer"], "norm='layer' is not an option of config group norm"),
    (["act=silu"], "act='silu' is not an option of config group act; choose one of: gelu, relu"),
    (["precision=fp8"], "precision='fp8' is not an option of config group precision"),
    (["backend=tensorflow"], "backend='tensorflow' is not an option of config group backend"),
    (["resolution=512"], "choose one of: 64, 256, 1024; or any size: resolution.size=N"),
    (["resolution=33"], "resolution='33' is not an option of config group resolution"),
    (["-m", "block=vgg,foo", "hydra.sweep.dir={tmp}/sweep"], "block='foo' is not an option of config group block"),
    (["-m", "block=[vgg,mobilenet]"], "To run each, sweep them: python main.py -m block=vgg,mobilenet"),
    (["+experiment=nope"], "experiment='nope' is not an option of config group experiment"),
    # keys: unknown ones (also added with '+'), with the closest match and the keys that exist
    (["blok=vgg"], "blok: no such setting; did you mean 'block'?"),
    (["foo.bar=1"], "foo.bar: no such setting"),
    (["benchmark.warmpu_s=1"], "did you mean 'warmup_s'? settings of benchmark:"),
    (["+model.width=2"], "model.width: no such setting; settings of model: channels, blocks_per_stage"),
    (["backend.intra_op_thread=2"], "backend.intra_op_thread: no such setting of backend=onnxruntime"),
    # the override grammar, naming the argument
    (["model.channels=[8,8"], "argument 'model.channels=[8,8' is not a valid override"),
    (["-m", "block=vgg,"], "argument 'block=vgg,' is not a valid override"),
    # values
    (["resolution.size=-64"], "resolution.size=-64 is not allowed; it must be a multiple of 32 and >= 32"),
    (["resolution.size=63"], "resolution.size=63 is not allowed; it must be a multiple of 32"),
    (["resolution.size=16"], "resolution.size=16 is not allowed; it must be a multiple of 32 and >= 32"),
    (["benchmark.min_iters=0"], "benchmark.min_iters=0 is not allowed; it must be >= 1"),
    (["benchmark.min_s=nan"], "benchmark.min_s=nan is not allowed; it must be a finite number"),
    (["benchmark.min_iters=many"], "Value 'many' of type 'str' could not be converted to Integer"),
    (["benchmark.mode=latency"], "benchmark.mode='latency' is not allowed; choose one of: compute, end_to_end"),
    (["benchmark.batch_size=0"], "benchmark.batch_size=0 is not allowed; it must be >= 1"),
    (["benchmark.warmup_iters=-1"], "benchmark.warmup_iters=-1 is not allowed; it must be >= 0"),
    (["model.channels=[8,8,16]"], "model.channels=[8, 8, 16] is not allowed; it needs 5 positive widths"),
    (["model.blocks_per_stage=0"], "model.blocks_per_stage=0 is not allowed; it must be >= 1"),
    (["complexity.counter=fvcore"], "complexity.counter='fvcore' is not allowed; choose one of: thop, ptflops"),
    (["export.opset=12"], "export.opset=12 is not allowed; the dynamo exporter needs >= 18"),
    (["hardware.cpu_threads=-1"], "hardware.cpu_threads=-1 is not allowed; it must be >= 0"),
    (["seed=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
    (["~block"], "block has no value"),
    (["tracking.experiment="], "tracking.experiment='' is not allowed; name the MLflow experiment"),
    (
        ["backend=tensorrt", "backend.typing=loose"],
        "backend.typing='loose' is not allowed; choose one of: strong, weak",
    ),
    (["backend=tensorrt", "backend.library=tensorrt_llm"], "backend.library='tensorrt_llm' is not allowed"),
    # what this machine cannot do: refused before any work, with both numbers and the knob
    (["backend.providers=[FooExecutionProvider]"], "'FooExecutionProvider', which is not an ONNX Runtime provider"),
    (["precision=fp16"], "precision=fp16 is not supported by backend=onnxruntime with CPUExecutionProvider"),
    (["hardware.device=cuda:7"], "hardware.device='cuda:7'"),
    (["hardware.device=tpu"], "hardware.device='tpu' is not allowed; choose one of: cpu, cuda, cuda:N"),
    (["model.channels=[64,128,256,512,1024]", "resolution.size=16384"], "needs at least"),
    (["resolution.size=1048576"], "Lower resolution.size or benchmark.batch_size"),
    (["resolution.size=1073741824"], "one input image alone needs"),  # shape arithmetic would overflow
    (["model.channels=[64,128,256,512,1024]", "benchmark.batch_size=1000000"], "activations at batch 1000000"),
    # places: checked by writing, so permission bits and virtual file systems cannot fool the check
    (["hydra.run.dir={tmp}/a-file/out"], "hydra.run.dir='{tmp}/a-file/out' cannot be created: {tmp}/a-file is a file"),
    (["hydra.run.dir=/proc/blockbench-out"], "hydra.run.dir='/proc/blockbench-out' is not writable"),
    (["cache_dir={tmp}/a-file/cache"], "cache_dir='{tmp}/a-file/cache' cannot be created: {tmp}/a-file is a file"),
    (["cache_dir=/proc/bbcache"], "cache_dir='/proc/bbcache' is not writable"),
    (["tracking.uri=sqlite:///{tmp}/a-file/mlflow.db"], "tracking.uri='sqlite:///{tmp}/a-file/mlflow.db' cannot be"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking.uri='http://127.0.0.1:9' cannot be reached"),
    (["-m", "block=vgg,resnet", "hydra.sweep.dir={tmp}/a-file/sweep"], "hydra.sweep.dir='{tmp}/a-file/sweep' cannot"),
    # run options and sweeps
    (["run.stale_after_s=1"], "run.stale_after_s=1.0 is not allowed; it must be >= 2 x run.heartbeat_s"),
    (["run.heartbeat_s=0"], "run.heartbeat_s=0.0 is not allowed; it must be > 0"),
    (["run.prebuild_workers=-1"], "run.prebuild_workers=-1 is not allowed; it must be >= 0"),
    (["-m", "block=vgg,resnet", "run.prebuild_workers=-2"], "run.prebuild_workers=-2 is not allowed; it must be >= 0"),
    (
        ["-m", "block=vgg,resnet", "hydra/launcher=submitit_local", "run.prebuild_workers=2"],
        "run.prebuild_workers=2 needs Hydra's basic sweeper and launcher",
    ),
    # a sweep whose every job is refused: each job's message, and no parent run either
    (["-m", "resolution.size=33,65", "hydra.sweep.dir={tmp}/sweep"], "resolution.size=65 is not allowed"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_gives_one_clear_message_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    proc = bb(*TINY, *(a.format(tmp=tmp_path) for a in args), tmp_path=tmp_path)
    out = output(proc)
    assert proc.returncode == EXPLAINED_EXIT, out[-3000:]
    assert message.format(tmp=tmp_path) in out, out[-3000:]
    assert "Traceback" not in out
    assert store_runs(tmp_path / "mlflow.db") == []
    assert not list(tmp_path.rglob("model.onnx")) and not (tmp_path / "cache").exists()


# Arbitrary text plus what a user can type that means something to OmegaConf (missing, interpolations).
_TEXT = st.text(max_size=12) | st.sampled_from(["", "???", "${oops}", "${bb:nope}", "${", "x${model.seed}"])
_VALUES = {
    "block.name": st.sampled_from(BLOCKS) | _TEXT,
    "norm.name": st.sampled_from(NORMS) | _TEXT,
    "act.name": st.sampled_from(ACTIVATIONS) | _TEXT,
    "precision.name": st.sampled_from(PRECISIONS) | _TEXT,
    "resolution.size": st.integers(-(2**40), 2**40) | st.sampled_from([32, 64, 96, 1024]),
    "model.channels": st.lists(st.integers(-2, 64), max_size=7),
    "model.blocks_per_stage": st.integers(-3, 64),
    "model.num_classes": st.integers(-3, 10**6),
    "benchmark.mode": st.sampled_from(BENCHMARK_MODES) | _TEXT,
    "benchmark.batch_size": st.integers(-3, 1024),
    "benchmark.warmup_iters": st.integers(-3, 10**6),
    "benchmark.min_iters": st.integers(-3, 10**6),
    "benchmark.warmup_s": st.floats(),
    "benchmark.min_s": st.floats(),
    "benchmark.max_s": st.floats(),
    "complexity.counter": st.sampled_from(COMPLEXITY_COUNTERS) | _TEXT,
    "export.opset": st.integers(-1, 40),
    "hardware.device": st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:3", "cpu:0", "cuda:-1"]) | _TEXT,
    "hardware.cpu_threads": st.integers(-3, 512),
    "backend.intra_op_threads": st.integers(-3, 512),
    "backend.graph_optimization_level": st.sampled_from(["all", "basic", "disable"]) | _TEXT,
    "backend.providers": st.none()
    | st.lists(st.sampled_from(["CPUExecutionProvider", "CUDAExecutionProvider"]) | _TEXT),
    "run.heartbeat_s": st.floats(),
    "run.stale_after_s": st.floats(),
}


def _names_key(message: str, key: str) -> bool:
    group = key.removesuffix(".name")
    return key in message or f"{group}=" in message or f"{group} " in message


@pytest.fixture(scope="module")
def base_cfg(tmp_path_factory: pytest.TempPathFactory) -> DictConfig:
    """The tiny default config, composed once (composition dominates a property test's time)."""
    tmp = tmp_path_factory.mktemp("property")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*TINY, f"work_dir={tmp / 'work'}", f"cache_dir={tmp / 'cache'}"])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_validation_accepts_or_refuses_naming_the_key(base_cfg: DictConfig, data: st.DataObject) -> None:
    """Any mix of typed values: plan_job accepts, or raises ConfigError naming one of the keys set."""
    cfg = copy.deepcopy(base_cfg)
    keys = data.draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=3, unique=True))
    try:
        for key in keys:
            OmegaConf.update(cfg, key, data.draw(_VALUES[key], label=key), merge=False)
    except OmegaConfBaseException:
        reject()  # malformed interpolation syntax: Hydra refuses it while parsing the override
    try:
        plan_job(cfg)
    except ConfigError as exc:
        assert any(_names_key(str(exc), key) for key in keys), (keys, str(exc))


# --- secrets ------------------------------------------------------------------------------------------------------


def test_redact_removes_credentials_from_uris_queries_env_values_and_key_ids(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-tracking-password")
    assert redact("https://alice:s3cret@mlflow.example:5000/x") == "https://***@mlflow.example:5000/x"
    assert redact("s3://bucket/x?X-Amz-Signature=abc123&v=1") == "s3://bucket/x?X-Amz-Signature=***&v=1"
    assert redact("pw is hunter2-tracking-password.") == "pw is ***."
    assert redact("key AKIAIOSFODNN7EXAMPLE used") == "key *** used"
    assert redact("sqlite:////tmp/mlflow.db and cuda:0") == "sqlite:////tmp/mlflow.db and cuda:0"
    params = redact_params({"tracking.uri": "http://bob:pw@host", "backend.api_token": "x", "block.name": "vgg"})
    assert params == {"tracking.uri": "http://***@host", "backend.api_token": "***", "block.name": "vgg"}


@pytest.mark.usefixtures("store")
def test_secrets_never_reach_params_tags_or_artifacts(tmp_path: Path) -> None:
    proc = bb(*TINY, "tracking.run_name=bench-hunter2-tracking-password", tmp_path=tmp_path, env=SECRET_ENV)
    assert proc.returncode == 0, output(proc)[-3000:]
    (run,) = store_runs(tmp_path / "mlflow.db")
    folder = artifacts(tmp_path, run["run_id"])
    assert (folder / ".hydra" / "overrides.yaml").exists() and (folder / "config.yaml").exists()
    stored = (tmp_path / "mlflow.db").read_bytes() + b"".join(
        p.read_bytes() for p in (tmp_path / "mlartifacts").rglob("*") if p.is_file()
    )
    for secret in SECRET_ENV.values():
        assert secret.encode() not in stored
    assert b"hunter2-tracking-password" in (tmp_path / "run" / ".hydra" / "overrides.yaml").read_bytes()


def test_tracker_redacts_uri_credentials_in_params_tags_and_text_artifacts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "secrets")
    run = tracker.start_run("r", {"note": "server https://alice:pa55word@host"})
    tracker.log_params(
        run, {"tracking.uri": "https://alice:pa55word@host", "aws": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"}
    )
    hydra_dir = tmp_path / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "overrides.yaml").write_text("- tracking.uri=https://alice:pa55word@host\n")
    tracker.log_artifact(run, hydra_dir, ".hydra")
    tracker.fail(run, RuntimeError("cannot reach https://alice:pa55word@host"), "tracking")
    stored = (tmp_path / "mlflow.db").read_bytes() + b"".join(
        p.read_bytes() for p in (tmp_path / "mlartifacts").rglob("*") if p.is_file()
    )
    assert b"pa55word" not in stored and b"wJalrXUtnFEMI" not in stored
    assert b"https://***@host" in stored
    assert "pa55word" in (hydra_dir / "overrides.yaml").read_text()  # the local file is left as it was


# --- stale runs, claims -------------------------------------------------------------------------------------------


def _dead_pid() -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


def test_stale_runs_are_reaped_and_live_or_foreign_runs_kept(tmp_path: Path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "stale")
    pid, started = _dead_pid()
    now = time.time()
    owners = {
        "dead-pid": {PID_TAG: str(pid), PID_STARTED_TAG: f"{started:.3f}"},
        "reused-pid": {PID_TAG: str(os.getpid()), PID_STARTED_TAG: "12345.000"},
        "silent-remote": {HOST_TAG: "elsewhere", HEARTBEAT_TAG: f"{now - 3600:.3f}"},
        "live": {},
        "live-remote": {HOST_TAG: "elsewhere", HEARTBEAT_TAG: f"{now - 10:.3f}"},
    }
    ids = {}
    for name, tags in owners.items():
        ids[name] = tracker.start_run(name, {})
        tracker.set_tags(ids[name], {STAGE_TAG: "build", **tags})
    foreign = tracker.client.create_run(tracker.experiment_id, run_name="not-ours").info.run_id

    reaped = tracker.reap_stale(stale_after_s=600)
    assert set(reaped) == {ids["dead-pid"], ids["reused-pid"], ids["silent-remote"]}
    for name, run_id in [*ids.items(), ("foreign", foreign)]:
        run = tracker.client.get_run(run_id)
        assert run.info.status == ("KILLED" if run_id in reaped else "RUNNING"), name
        if run_id in reaped:
            assert run.data.tags["error"].startswith("stale: process") and run.data.tags["error_stage"] == "build"


def test_claim_skips_finished_or_live_configs_and_finish_refuses_a_reaped_run(tmp_path: Path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "claims")
    first = tracker.claim("h1", "job", {}, None, skip_done=True, stale_after_s=600)
    assert not first.skipped
    live = tracker.claim("h1", "job", {}, None, skip_done=True, stale_after_s=600)
    assert live.skipped and live.run_id == first.run_id and "RUNNING as run" in live.reason
    tracker.finish(first.run_id)
    done = tracker.claim("h1", "job", {}, None, skip_done=True, stale_after_s=600)
    assert done.skipped and "already FINISHED" in done.reason
    forced = tracker.claim("h1", "job", {}, None, skip_done=False, stale_after_s=600)
    assert not forced.skipped and forced.run_id != first.run_id
    tracker.client.set_terminated(forced.run_id, "KILLED")  # what another process's reap_stale does
    with pytest.raises(StaleRunError, match="ended as KILLED by another process"):
        tracker.finish(forced.run_id)


def test_heartbeat_refreshes_a_live_run_until_it_ends(tmp_path: Path) -> None:
    heartbeat = Heartbeat()  # the test's own, so no other run of this process keeps its thread going
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "heartbeat", heartbeat=heartbeat)
    run = tracker.start_run("r", {})

    def beat() -> float:
        return float(tracker.client.get_run(run).data.tags[HEARTBEAT_TAG])

    first = beat()
    tracker.keep_alive(run, interval_s=0.1)
    assert heartbeat.wait_for_beats(run, 2, timeout_s=60), "no two heartbeats within 60 s"
    assert beat() > first
    tracker.finish(run)
    last = beat()
    assert heartbeat.join(timeout_s=60), "the heartbeat thread still runs after its only run ended"
    assert beat() == last  # with the thread gone, no beat can follow


# --- resume hash --------------------------------------------------------------------------------------------------


def test_config_hash_ignores_where_results_go_and_tracks_what_they_depend_on(compose_cfg, monkeypatch) -> None:
    cpu = torch.device("cpu")

    def digest(*overrides: str) -> str:
        return resume.config_hash(resume.fingerprint(compose_cfg(*TINY, *overrides), cpu))

    base = digest()
    for neutral in (
        "tracking.uri=sqlite:////elsewhere/mlflow.db",
        "tracking.experiment=other",
        "tracking.run_name=x",
        "work_dir=/elsewhere",
        "cache_dir=/elsewhere",
        "run.force=true",
        "benchmark.progress=true",
    ):
        assert digest(neutral) == base, neutral
    changed = [
        digest(o) for o in ("block=resnet", "seed=1", "resolution.size=96", "precision=tf32", "benchmark.min_iters=6")
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    monkeypatch.setattr(resume, "package_version", lambda name: "0.0-other")
    assert digest() != base
    cfg = compose_cfg(*TINY, "hardware.device=cuda")
    assert resume.result_config(cfg, torch.device("cuda", 0))["hardware"]["device"] == "cuda:0"


# --- caches -------------------------------------------------------------------------------------------------------


def _writer(content: bytes, counter: list[int]):
    def build(folder: Path) -> None:
        counter.append(1)
        (folder / "engine.plan").write_bytes(content)

    return build


def test_cache_hit_miss_and_verified_reads(tmp_path: Path) -> None:
    cache, builds = ContentCache(tmp_path, "engines"), []
    first = cache.get_or_build({"model": "vgg"}, _writer(b"plan-bytes", builds))
    second = cache.get_or_build({"model": "vgg"}, _writer(b"other", builds))
    assert (first.hit, second.hit, len(builds)) == (False, True, 1)
    assert second.read_bytes("engine.plan") == b"plan-bytes"
    copies = second.materialize(tmp_path / "work")
    assert copies["engine.plan"].read_bytes() == b"plan-bytes"
    assert cache.get_or_build({"model": "resnet"}, _writer(b"x", builds)).key != first.key


def test_cache_rebuilds_a_bad_entry_and_never_loads_a_swapped_file(tmp_path: Path, caplog) -> None:
    cache, builds = ContentCache(tmp_path, "engines"), []
    entry = cache.get_or_build({"model": "vgg"}, _writer(b"good", builds))
    (entry.path / "engine.plan").write_bytes(b"evil")
    assert cache.lookup(entry.key) is None and "does not match its SHA-256" in caplog.text
    rebuilt = cache.get_or_build({"model": "vgg"}, _writer(b"good", builds))
    assert not rebuilt.hit and len(builds) == 2 and rebuilt.read_bytes("engine.plan") == b"good"
    (rebuilt.path / "engine.plan").write_bytes(b"swapped after the check")
    with pytest.raises(CacheError, match="changed after it was verified"):
        rebuilt.read_bytes("engine.plan")
    with pytest.raises(CacheError, match="changed after it was verified"):
        rebuilt.materialize(tmp_path / "work")
    assert not (tmp_path / "work" / "engine.plan").exists()


def test_cache_refuses_foreign_entries_and_leaves_nothing_after_a_failed_build(tmp_path: Path) -> None:
    cache, builds = ContentCache(tmp_path, "engines"), []
    entry = cache.get_or_build({"model": "vgg"}, _writer(b"a", builds))
    other_key = ContentCache.key_for({"model": "resnet"})
    (tmp_path / "engines" / other_key).symlink_to(entry.path)  # an entry filed under someone else's key
    assert cache.lookup(other_key) is None
    outside = tmp_path / "outside.plan"
    outside.write_bytes(b"a")
    manifest = json.loads((entry.path / "manifest.json").read_text())
    files = {"../../outside.plan": manifest["files"]["engine.plan"]}  # right hash, but outside the entry
    (entry.path / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
    assert cache.lookup(entry.key) is None

    def broken(folder: Path) -> None:
        (folder / "half.plan").write_bytes(b"half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_build({"model": "mobilenet"}, broken)
    key = ContentCache.key_for({"model": "mobilenet"})
    (tmp_path / "engines" / f"{key}.tmp-killed").mkdir()  # what a kill -9 mid-build leaves
    assert not (tmp_path / "engines" / key).exists()
    cache.get_or_build({"model": "mobilenet"}, _writer(b"m", builds))
    assert not list((tmp_path / "engines").glob(f"{key}.tmp-*"))


_BUILDER = """
import logging, sys, time, pathlib
from blockbench.build.cache import ContentCache
root, log, events = (pathlib.Path(arg) for arg in sys.argv[1:4])

def event(line):
    with events.open("a") as f:
        f.write(line + "\\n")

class WaitingForTheLock(logging.Handler):
    # filelock logs each failed try while it waits for a lock another process holds
    def emit(self, record):
        if "not acquired" in record.getMessage() and not self.seen:
            self.seen = True
            event("second builder waiting for the lock")

handler = WaitingForTheLock()
handler.seen = False
logging.getLogger("filelock").addHandler(handler)
logging.getLogger("filelock").setLevel(logging.DEBUG)

def build(folder):
    with log.open("a") as f:
        f.write("built\\n")
    event("build started")
    deadline = time.monotonic() + 60
    while "waiting for the lock" not in events.read_text():  # hold the lock until the second builder waits
        if time.monotonic() > deadline:
            raise RuntimeError("the second builder never waited for the lock")
        time.sleep(0.01)
    (folder / "engine.plan").write_bytes(b"x" * 1_000_000)
    event("build finished")

entry = ContentCache(root, "engines").get_or_build({"model": "vgg"}, build)
print(len(entry.read_bytes("engine.plan")), entry.hit)
"""


def test_two_processes_building_one_entry_build_it_once(tmp_path: Path) -> None:
    """The second builder starts while the first builds, and the first finishes only once the second waits."""
    log, events = tmp_path / "builds.log", tmp_path / "events.log"
    events.touch()

    def builder() -> subprocess.Popen[str]:
        args = [sys.executable, "-c", _BUILDER, str(tmp_path), str(log), str(events)]
        return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)

    first = builder()
    deadline = time.monotonic() + 120
    while "build started" not in events.read_text():  # the first builder holds the entry's lock
        assert first.poll() is None and time.monotonic() < deadline, "the first builder never started building"
        time.sleep(0.01)
    procs = [first, builder()]
    outs = sorted(p.communicate(timeout=120)[0].split() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [["1000000", "False"], ["1000000", "True"]]
    assert log.read_text() == "built\n"
    assert events.read_text().splitlines() == ["build started", "second builder waiting for the lock", "build finished"]


# --- fault injection grammar --------------------------------------------------------------------------------------


def test_fault_specs_parse_and_bad_ones_are_refused(compose_cfg) -> None:
    (fault,) = faults.parse("benchmark=kill@block.name=vgg,norm.name=bn")
    assert (fault.stage, fault.action, fault.when) == (
        "benchmark",
        "kill",
        (("block.name", "vgg"), ("norm.name", "bn")),
    )
    cfg = compose_cfg()
    assert fault.matches("benchmark", cfg) and not fault.matches("export", cfg)
    for bad in ("export=explode", "export@block", "=error"):
        with pytest.raises(ConfigError, match=faults.ENV):
            faults.parse(bad)
    with pytest.raises(ConfigError, match="is not a config value"):
        faults.parse("export@block=vgg")[0].matches("export", cfg)
