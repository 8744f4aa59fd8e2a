"""Real TensorRT-RTX engines built through ``main.py`` on a machine without a GPU: build-only runs, end to end.

Every block with BN and with LN at its paper width, 64x64, FP16, GELU (ReLU adds no layer kind the tiny set does not
build); every paper variant (4 blocks x BN/LN x ReLU/GELU) at tiny width, FP32, through the engine cache (16 misses,
then byte-identical hits, then a corrupt entry rebuilt); and a planted operator no library knows, which must end
in one parser error. The count of engines built is printed in the test summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blockbench.backends.tensorrt.cache import PLAN_FILE
from blockbench.job.faults import PLANTED_NODE, PLANTED_OP
from blockbench.measure import metric_names as names
from tests.helpers import ENGINES_BUILT, ROOT, TINY, store_runs
from tests.helpers import main_py as forked_main_py

pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras: pip install -e .[test]")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("store")]  # a migrated store: not about creating one

RTX = ["backend=tensorrt", "backend.library=tensorrt_rtx", "benchmark.progress=false"]
VARIANTS = ["block=vgg,resnet,mobilenet,convnext", "norm=bn,ln", "act=relu,gelu"]
LATENCY_METRICS = (names.LATENCY_MEDIAN, names.LATENCY_P99, names.PARITY_REL_L2)


def main_py(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python main.py`` with the store, caches, outputs and sweep folders under ``tmp_path``."""
    cmd = [
        sys.executable,
        str(ROOT / "main.py"),
        *args,
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return forked_main_py(cmd, cwd=tmp_path, env=full_env, timeout=1200)  # forked from the session's main.py server


def children(tmp_path: Path) -> list[dict]:
    return [r for r in store_runs(tmp_path / "mlflow.db") if r["tags"].get("blockbench.sweep") != "parent"]


def engine_artifacts(tmp_path: Path, run_id: str) -> list[Path]:
    """The engine files a run logged: stored with the run, or referred to (``.ref.json``) in its LoggedModel's."""
    found = list(tmp_path.glob(f"mlartifacts/*/{run_id}/artifacts/engine/*.engine"))
    for ref in tmp_path.glob(f"mlartifacts/*/{run_id}/artifacts/engine/*.engine.ref.json"):
        reference = json.loads(ref.read_text())
        (stored,) = tmp_path.glob(f"mlartifacts/*/models/{reference['model_id']}/artifacts/{ref.name[:-9]}")
        assert sha256(stored) == reference["sha256"] and stored.stat().st_size == reference["bytes"]
        found.append(stored)
    return sorted(found)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_built_not_timed(run: dict, tmp_path: Path) -> Path:
    """A FINISHED build-only run: engine artifact and build facts logged, no latency, no parity."""
    assert run["status"] == "FINISHED", run["tags"].get("error")
    tags, metrics = run["tags"], run["metrics"]
    assert tags["build_only"] == "true" and "TensorRT-RTX builds engines without a GPU" in tags["build_only_reason"]
    assert tags["tensorrt_library"] == "tensorrt_rtx" and tags["tensorrt_version"]
    assert metrics[names.ENGINE_SIZE_MB] > 0 and metrics[names.BUILD_S] > 0 and metrics[names.NETWORK_LAYERS] > 0
    assert metrics["params_count"] > 0 and metrics["macs"] > 0
    assert not [m for m in LATENCY_METRICS if m in metrics]
    (artifact,) = engine_artifacts(tmp_path, run["run_id"])
    assert artifact.stat().st_size == pytest.approx(metrics[names.ENGINE_SIZE_MB] * 2**20, abs=1)
    return artifact


def test_every_block_and_norm_builds_at_paper_width(tmp_path: Path) -> None:
    proc = main_py(tmp_path, "-m", *RTX, *VARIANTS[:2], "act=gelu", "precision=fp16", "tracking.log_onnx=false")
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "8 jobs, 8 finished, 0 failed" in proc.stdout
        runs = children(tmp_path)
        assert len(runs) == 8
        for run in runs:
            assert_built_not_timed(run, tmp_path)
            assert run["tags"]["engine_cache"] == "miss" and run["metrics"][names.BUILDER_S] > 0
            if run["tags"]["norm"] == "ln":  # the paper's hand-written LayerNorm in FP16: the library warns
                assert "layernorm" in run["tags"]["tensorrt_layernorm_warning"].lower()
            ENGINES_BUILT.append(
                f"{run['tags']['block']}-{run['tags']['norm']}-{run['tags']['act']}-64-fp16 paper width: "
                f"{run['metrics'][names.ENGINE_SIZE_MB]:.1f} MiB, {run['metrics'][names.NETWORK_LAYERS]:.0f} layers, "
                f"built in {run['metrics'][names.BUILDER_S]:.1f} s"
            )
        sizes = {run["tags"]["block"]: run["metrics"][names.ENGINE_SIZE_MB] for run in runs}
        assert sizes["vgg"] > 100 and 10 < sizes["mobilenet"] < 40  # FP16 weights: 94 M vs 10.6 M parameters
    finally:
        shutil.rmtree(tmp_path / "mlartifacts", ignore_errors=True)  # ~3 GB of engines
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)


def test_tiny_fp32_engines_miss_then_hit_byte_identical_then_rebuild_a_corrupt_entry(tmp_path: Path) -> None:
    first = main_py(tmp_path, "-m", *TINY, *RTX, *VARIANTS, "precision=fp32")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    built = {r["tags"]["blockbench.config_hash"]: r for r in children(tmp_path)}
    assert len(built) == 16 and all(r["tags"]["engine_cache"] == "miss" for r in built.values())
    first_bytes = {h: sha256(assert_built_not_timed(r, tmp_path)) for h, r in built.items()}
    ENGINES_BUILT.extend(
        f"{r['tags']['block']}-{r['tags']['norm']}-{r['tags']['act']}-64-fp32 tiny" for r in built.values()
    )

    # Every block once more (LN-GELU, the largest graphs): each loads its engine from the cache.
    again = main_py(tmp_path, "-m", *TINY, *RTX, VARIANTS[0], "norm=ln", "act=gelu", "precision=fp32", "run.force=true")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    rerun = [r for r in children(tmp_path) if r["run_id"] not in {b["run_id"] for b in built.values()}]
    assert len(rerun) == 4
    for run in rerun:
        assert run["tags"]["engine_cache"] == "hit" and names.BUILDER_S not in run["metrics"]
        assert sha256(assert_built_not_timed(run, tmp_path)) == first_bytes[run["tags"]["blockbench.config_hash"]]

    entries = sorted((tmp_path / "cache" / "tensorrt" / "engines").glob(f"*/{PLAN_FILE}"))
    assert len(entries) == 16
    one = [*TINY, *RTX, "block=mobilenet", "norm=ln", "act=gelu", "precision=fp32"]
    (target,) = [
        r
        for r in built.values()
        if (r["tags"]["block"], r["tags"]["norm"], r["tags"]["act"]) == ("mobilenet", "ln", "gelu")
    ]
    for entry in entries:  # damage every entry: whichever is this config's must not be trusted
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    rebuilt = main_py(tmp_path, *one)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert f"is bad ({PLAN_FILE} does not match its SHA-256); it will be rebuilt" in rebuilt.stdout + rebuilt.stderr
    (last,) = [
        r
        for r in children(tmp_path)
        if r["run_id"] not in {*first_bytes, *(x["run_id"] for x in built.values()), *(x["run_id"] for x in rerun)}
    ]
    assert last["tags"]["engine_cache"] == "miss"
    assert sha256(assert_built_not_timed(last, tmp_path)) == first_bytes[target["tags"]["blockbench.config_hash"]]
    ENGINES_BUILT.append("mobilenet-ln-gelu-64-fp32 tiny (rebuilt over a corrupt cache entry)")


def test_a_planted_unknown_operator_is_one_parser_error_and_a_failed_run(tmp_path: Path) -> None:
    proc = main_py(tmp_path, *TINY, *RTX, "precision=fp16", env={"BLOCKBENCH_FAULT": "build=unknown_op"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "could not parse model.onnx (1 error)" in output
    assert f"'{PLANTED_NODE}' ({PLANTED_OP})" in output and "Traceback" not in output
    (run,) = store_runs(tmp_path / "mlflow.db")
    assert run["status"] == "FAILED" and run["tags"]["error_stage"] == "build"
    assert PLANTED_OP in run["tags"]["error"]
    assert not engine_artifacts(tmp_path, run["run_id"])
    assert not list((tmp_path / "cache" / "tensorrt" / "engines").glob(f"*/{PLAN_FILE}"))


def test_an_int8_paper_network_builds_as_an_explicitly_quantized_engine(tmp_path: Path) -> None:
    """ConvNeXt-LN-GELU at paper width, INT8: the QDQ graph (LN's chain and GELU left in FP32 between Q/DQ pairs)
    builds in TensorRT-RTX with no precision flag; the engine is smaller than the FP16 one (8-bit weights)."""
    proc = main_py(tmp_path, *RTX, "block=convnext", "norm=ln", "act=gelu", "precision=int8")
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        (run,) = children(tmp_path)
        assert_built_not_timed(run, tmp_path)
        mib = run["metrics"][names.ENGINE_SIZE_MB]
        assert 83.7 < mib < 130  # 83.7 M parameters at one byte each, plus the FP32 layers' weights
        onnx_files = {p.name for p in tmp_path.glob(f"mlartifacts/*/{run['run_id']}/artifacts/onnx/*")}
        assert "model.int8.onnx" in onnx_files or "model.int8.onnx.ref.json" in onnx_files
        ENGINES_BUILT.append(f"convnext-ln-gelu-64-int8 paper width: {mib:.1f} MiB (QDQ, explicitly quantized)")
    finally:
        shutil.rmtree(tmp_path / "mlartifacts", ignore_errors=True)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
