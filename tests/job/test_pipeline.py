"""End to end through ``main.py`` in subprocesses: real exports, engines, benchmarks and MLflow stores."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from blockbench.axes.precisions import TOLERANCE as PARITY_TOLERANCE
from blockbench.job.execute import parity
from tests.helpers import SHARED_CACHE, TINY, run_main, store_runs

pytestmark = pytest.mark.slow

# main.py forked from the session's server (tests/helpers/main_server.py); the content cache shared where a test is
# not about what the cache holds (none of these reads a cache tag).
FAST = {"forked": True, "cache_dir": SHARED_CACHE}

REQUIRED_METRICS = (
    "params_count",
    "macs",
    "latency_ms_mean",
    "latency_ms_median",
    "latency_ms_min",
    "latency_ms_max",
    "latency_ms_std",
    "latency_cov",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
    "throughput_qps",
    "first_inference_ms",
    "export_s",
    "build_s",
    "peak_memory_mb",
    "parity_max_abs_err",
)


def artifact_files(db: Path, run_id: str) -> set[str]:
    root = db.parent / "mlartifacts"
    matches = list(root.glob(f"*/{run_id}/artifacts"))
    assert matches, f"no artifact folder for {run_id} under {root}"
    return {str(p.relative_to(matches[0])) for p in matches[0].rglob("*") if p.is_file()}


def assert_sane_metrics(metrics: dict[str, float]) -> None:
    missing = [name for name in REQUIRED_METRICS if name not in metrics]
    assert not missing, missing
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0 < metrics["latency_ms_min"] <= metrics["latency_ms_median"] <= metrics["latency_ms_max"]
    assert metrics["latency_ms_median"] <= metrics["latency_ms_p99"] + 1e-9
    assert metrics["params_count"] > 0 and metrics["macs"] > 0 and metrics["peak_memory_mb"] > 0
    assert metrics["throughput_qps"] == pytest.approx(1000 / metrics["latency_ms_median"], rel=1e-6)


@pytest.mark.parametrize(
    ("backend_args", "engine_expected"),
    [
        (["backend=onnxruntime"], True),
        (["backend=onnxruntime", "benchmark.mode=end_to_end", "backend.intra_op_threads=1"], True),
        (["backend=torch"], False),
        (["backend=torch", "precision=bf16", "backend.channels_last=true"], False),
    ],
)
@pytest.mark.usefixtures("store")
def test_single_run_logs_a_complete_mlflow_run(tmp_path: Path, backend_args: list[str], engine_expected: bool) -> None:
    proc = run_main(*TINY, "block=resnet", "norm=ln", "act=gelu", *backend_args, tmp_path=tmp_path, **FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlflow ui --backend-store-uri sqlite:///" in proc.stdout
    (run,) = store_runs(tmp_path / "mlflow.db")
    assert run["status"] == "FINISHED"
    assert_sane_metrics(run["metrics"])
    tags = run["tags"]
    assert tags["backend"] == backend_args[0].split("=")[1] and tags["status"] == "finished"
    assert tags["git_commit"] and tags["device_name"]
    if "benchmark.mode=end_to_end" in backend_args:  # on the CPU the input already is where the engine reads it
        assert tags["end_to_end_split"].startswith("none") and "h2d_ms_median" not in run["metrics"]
    assert "bound_by" not in tags and "enqueue_ms_median" not in run["metrics"]  # GPU-only rules
    files = artifact_files(tmp_path / "mlflow.db", run["run_id"])
    assert {"config.yaml", "environment.json", "latencies.csv", ".hydra/config.yaml"} <= files
    assert ("onnx/model.onnx" in files) == engine_expected
    assert any(f.startswith("engine/") for f in files) == engine_expected
    (env_file,) = tmp_path.glob(f"mlartifacts/*/{run['run_id']}/artifacts/environment.json")
    env = json.loads(env_file.read_text())
    assert env["packages"]["torch"].split("+")[0] == torch.__version__.split("+")[0]


def test_torch_compile_runs_on_cpu(tmp_path: Path) -> None:
    proc = run_main(*TINY, "backend=torch", "backend.mode=compile", "tracking.enabled=false", tmp_path=tmp_path, **FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "latency median" in proc.stdout
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.usefixtures("store")
def test_sweep_logs_children_under_one_parent(tmp_path: Path) -> None:
    sweep = ["-m", *TINY, "block=vgg,mobilenet", "norm=bn,ln", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = run_main(*sweep, tmp_path=tmp_path, **FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = store_runs(tmp_path / "mlflow.db")
    parents = [r for r in runs if r["tags"].get("blockbench.sweep") == "parent"]
    children = [r for r in runs if "mlflow.parentRunId" in r["tags"]]
    assert len(parents) == 1 and len(children) == 4 and len(runs) == 5
    assert {c["tags"]["mlflow.parentRunId"] for c in children} == {parents[0]["run_id"]}
    assert {(c["tags"]["block"], c["tags"]["norm"]) for c in children} == {
        ("vgg", "bn"),
        ("vgg", "ln"),
        ("mobilenet", "bn"),
        ("mobilenet", "ln"),
    }
    assert all(r["status"] == "FINISHED" for r in runs)
    assert "4 jobs, 4 finished, 0 failed" in proc.stdout


@pytest.mark.usefixtures("store")
def test_sweep_goes_on_past_a_failed_job_and_exits_non_zero(tmp_path: Path) -> None:
    sweep = ["-m", *TINY, "precision=fp16,fp32", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = run_main(*sweep, tmp_path=tmp_path, **FAST)
    assert proc.returncode != 0
    assert "2 jobs, 1 finished, 1 failed" in proc.stdout
    assert "precision=fp16 is not supported by backend=onnxruntime" in proc.stdout
    runs = store_runs(tmp_path / "mlflow.db")
    children = [r for r in runs if "mlflow.parentRunId" in r["tags"]]
    parent = next(r for r in runs if r["tags"].get("blockbench.sweep") == "parent")
    assert [c["tags"]["precision"] for c in children] == ["fp32"] and children[0]["status"] == "FINISHED"
    assert parent["status"] == "FAILED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["block=foo"], "block='foo' is not an option of config group block"),
        (["resolution.size=100"], "resolution.size=100 is not allowed; it must be a multiple of 32"),
        (["precision=fp16"], "precision=fp16 is not supported by backend=onnxruntime with CPUExecutionProvider"),
    ],
)
def test_bad_input_gives_one_clear_message_and_no_run(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_main(*TINY, *args, tmp_path=tmp_path, forked=True)  # its own cache folder: nothing written there
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert message in output
    assert "Traceback" not in output
    assert store_runs(tmp_path / "mlflow.db") == []


def test_parity_measures_relative_error_and_rejects_nan() -> None:
    ref = torch.tensor([[3.0, -4.0]])  # ||ref|| = 5
    abs_err, rel_err = parity(torch.tensor([[3.1, -4.0]]), ref)
    assert abs_err == pytest.approx(0.1) and rel_err == pytest.approx(0.02)
    assert rel_err > PARITY_TOLERANCE["fp32"] and rel_err <= PARITY_TOLERANCE["bf16"]
    from blockbench.errors import ParityError

    with pytest.raises(ParityError, match="NaN"):
        parity(torch.tensor([[float("nan"), 0.0]]), ref)
    with pytest.raises(ParityError, match="shape"):
        parity(torch.zeros(1, 3), ref)


def stored_copies(tmp_path: Path, name: str) -> list[Path]:
    return sorted(tmp_path.glob(f"mlartifacts/*/*/artifacts/*/{name}"))


@pytest.mark.usefixtures("store")
def test_identical_model_files_are_stored_once_and_referenced(tmp_path: Path) -> None:
    args = [*TINY, "tracking.large_file_mb=0"]  # tiny files count as large here
    first = run_main(*args, tmp_path=tmp_path, **FAST)
    second = run_main(*args, tmp_path=tmp_path, **FAST)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    runs = sorted(store_runs(tmp_path / "mlflow.db"), key=lambda r: r["metrics"]["artifact_mb"], reverse=True)
    holder, referrer = runs
    assert len(stored_copies(tmp_path, "model.onnx")) == 1
    (ref,) = tmp_path.glob(f"mlartifacts/*/{referrer['run_id']}/artifacts/onnx/model.onnx.ref.json")
    reference = json.loads(ref.read_text())
    assert reference["run_id"] == holder["run_id"] and reference["artifact"] == "onnx/model.onnx"
    (stored,) = stored_copies(tmp_path, "model.onnx")
    assert reference["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert referrer["tags"]["content_sha256/onnx/model.onnx"] == reference["sha256"]
    assert referrer["metrics"]["artifact_mb"] < holder["metrics"]["artifact_mb"]
    assert "MiB of artifacts stored" in second.stdout


@pytest.mark.usefixtures("store")
def test_a_sweep_sharing_one_export_stores_it_once_unless_asked_for_all(tmp_path: Path) -> None:
    sweep = ["-m", *TINY, "backend.intra_op_threads=1,2", "tracking.large_file_mb=0"]
    proc = run_main(*sweep, f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp_path=tmp_path, **FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(stored_copies(tmp_path, "model.onnx")) == 1
    every = run_main(*sweep, "tracking.keep_model_files=all", "run.force=true", f"hydra.sweep.dir={tmp_path / 's2'}",
                     tmp_path=tmp_path, **FAST)  # fmt: skip
    assert every.returncode == 0, every.stderr[-3000:]
    assert len(stored_copies(tmp_path, "model.onnx")) == 3


@pytest.mark.parametrize(("policy", "status"), [("warn", "FINISHED"), ("fail", "FAILED")])
@pytest.mark.usefixtures("store")
def test_a_parity_failure_never_loses_the_latency(compose_cfg, tmp_path: Path, monkeypatch, policy, status) -> None:
    from blockbench.axes import precisions
    from blockbench.errors import ParityError
    from blockbench.job.run import run_job

    monkeypatch.setitem(precisions.TOLERANCE, "fp32", 0.0)  # any rounding difference is now a failure
    cfg = compose_cfg(  # inline: the patched tolerance must reach the code that measures
        *TINY,
        "run.isolation=inline",
        f"benchmark.parity={policy}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"cache_dir={SHARED_CACHE}",
    )
    if policy == "fail":
        with pytest.raises(ParityError, match="latency is measured and logged anyway"):
            run_job(cfg)
    else:
        assert run_job(cfg).tags["parity"] == "fail"
    (run,) = store_runs(tmp_path / "mlflow.db")
    assert run["status"] == status and run["tags"]["parity"] == "fail"
    assert run["metrics"]["latency_ms_median"] > 0 and run["metrics"]["parity_rel_l2_err"] > 0
