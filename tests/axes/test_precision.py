"""Precisions: one registry for every module; INT8 through ONNX Runtime, torch.compile (PT2E) and TensorRT-RTX on
this CPU; BF16 where a backend has a real path; refusals that name the reason; top-1 agreement with PyTorch FP32."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from blockbench.axes.precisions import PRECISIONS, TOLERANCE
from blockbench.config.paths import project_root
from blockbench.errors import ConfigError
from blockbench.job.plan import plan_job
from blockbench.job.run import run_job
from blockbench.measure import metric_names as names
from blockbench.recording.layout import INT8_ONNX_FILE
from blockbench.report.data import PRECISION_NAMES, PRECISION_ORDER
from tests.helpers import TINY

OFF = ("tracking.enabled=false", "benchmark=sweep", "benchmark.min_iters=5", "benchmark.min_s=0",
       "benchmark.warmup_s=0")  # fmt: skip


def test_every_precision_config_has_one_record_and_every_reader_uses_it() -> None:
    files = {p.stem for p in (project_root() / "conf" / "precision").glob("*.yaml")}
    assert files == set(PRECISIONS)
    assert PRECISION_ORDER == tuple(PRECISIONS) and PRECISION_NAMES == {n: p.label for n, p in PRECISIONS.items()}
    assert TOLERANCE == {n: p.tolerance for n, p in PRECISIONS.items()}
    assert [n for n, p in PRECISIONS.items() if p.quantized] == ["int8"]


def test_int8_on_onnx_runtime_runs_a_calibrated_qdq_graph_and_says_which_kernels_ran(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, *OFF, "backend=onnxruntime", "precision=int8", "block=resnet", "norm=bn")
    result = run_job(cfg)
    work = Path(cfg.work_dir)
    graph = onnx.load(str(work / INT8_ONNX_FILE))
    ops = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert "QLinearConv" in result.tags["ort_kernels"]  # ONNX Runtime fused Q/DQ pairs into int8 convolutions
    assert result.metrics[names.PARITY_REL_L2] <= TOLERANCE["int8"] and result.tags["parity"] == "pass"
    assert result.metrics[names.TOP1_AGREEMENT] >= 0.9
    assert result.tags["export_cache"] == "miss" and result.tags["reference_cache"] == "miss"
    again = run_job(cfg)  # the quantized graph and the references come from their caches: the same bytes
    assert again.tags["export_cache"] == "hit" and again.tags["reference_cache"] == "hit"
    assert again.metrics[names.PARITY_REL_L2] == result.metrics[names.PARITY_REL_L2]
    assert again.metrics[names.TOP1_AGREEMENT] == result.metrics[names.TOP1_AGREEMENT]


@pytest.mark.slow
def test_int8_on_torch_compile_is_pt2e_lowered_by_inductor(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, *OFF, "backend=torch", "backend.mode=compile", "precision=int8", "block=convnext")
    result = run_job(cfg)
    assert result.tags["int8_fp32_modules"] == "stages.1.0.shortcut,stages.3.0.shortcut"
    assert result.metrics[names.PARITY_REL_L2] <= TOLERANCE["int8"]
    assert result.metrics[names.TOP1_AGREEMENT] >= 0.9 and result.metrics[names.LATENCY_MEDIAN] > 0


def test_bf16_on_torch_cpu_logs_its_agreement_with_fp32(compose_cfg) -> None:
    result = run_job(compose_cfg(*TINY, *OFF, "backend=torch", "precision=bf16"))
    assert result.metrics[names.PARITY_REL_L2] <= TOLERANCE["bf16"]
    assert 0.9 <= result.metrics[names.TOP1_AGREEMENT] <= 1.0
    assert names.TOP1_AGREEMENT not in run_job(compose_cfg(*TINY, *OFF, "backend=torch")).metrics  # FP32: moot


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["backend=onnxruntime", "precision=bf16"], "no bfloat16 convolution kernel"),
        (["backend=torch", "precision=int8"], "needs backend.mode=compile"),
        (["backend=torch", "backend.mode=cuda_graph", "precision=int8"], "cuda_graph"),
        (["backend=tensorrt", "backend.library=tensorrt_rtx", "backend.typing=weak", "precision=int8"],
         "use backend.typing=strong"),
        (["precision=int8", "precision.calibration_samples=0"], "precision.calibration_samples"),
    ],
)  # fmt: skip
def test_impossible_precisions_are_refused_before_work(compose_cfg, overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        plan_job(compose_cfg(*TINY, *overrides))
