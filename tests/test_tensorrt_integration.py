"""Real TensorRT on a real GPU: tiny network built, serialized, cached, run, checked against PyTorch.

Skipped (with the reason) where ``import tensorrt`` fails or no CUDA device exists; a user with TensorRT and a GPU
runs them unchanged: ``python -m pytest -m tensorrt``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from blockbench.errors import ConfigError
from blockbench.pipeline import PARITY_TOLERANCE, JobResult, plan_job, run_job
from tests.conftest import TINY

try:
    import tensorrt
except (ImportError, OSError) as exc:  # OSError: the wheel is there but its libraries are not
    pytest.skip(f"import tensorrt failed ({exc}); install with pip install -e '.[tensorrt]'", allow_module_level=True)
if not torch.cuda.is_available():
    pytest.skip("TensorRT tests need a CUDA device; torch sees none", allow_module_level=True)

pytestmark = pytest.mark.tensorrt
MAJOR = int(tensorrt.__version__.split(".")[0])
BASE = [*TINY, "backend=tensorrt", "hardware.device=cuda", "tracking.enabled=false"]


def run(compose_cfg, *overrides: str) -> tuple[JobResult, DictConfig]:
    cfg = compose_cfg(*BASE, *overrides)
    return run_job(cfg), cfg


def engines(cfg: DictConfig) -> list[Path]:
    return sorted((Path(cfg.cache_dir) / "tensorrt" / "engines").glob("*.engine"))


def test_build_run_parity_then_cache_hit(compose_cfg) -> None:
    first, cfg = run(compose_cfg, "precision=fp32")
    assert first.tags["engine_cache"] == "miss" and first.tags["tensorrt_version"] == tensorrt.__version__
    assert first.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE["fp32"]
    assert first.metrics["latency_ms_median"] > 0 and first.metrics["trt_builder_s"] > 0
    assert len(engines(cfg)) == 1 and (Path(cfg.work_dir) / "engine_layers.json").stat().st_size > 0
    second, _ = run(compose_cfg, "precision=fp32")
    assert second.tags["engine_cache"] == "hit" and "trt_builder_s" not in second.metrics
    assert second.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE["fp32"]
    timing = list((Path(cfg.cache_dir) / "tensorrt" / "timing").glob("*.cache"))
    assert len(timing) == 1 and timing[0].stat().st_size > 0


def test_a_corrupt_cached_engine_is_rebuilt(compose_cfg) -> None:
    _, cfg = run(compose_cfg, "precision=tf32")
    (plan,) = engines(cfg)
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))
    again, _ = run(compose_cfg, "precision=tf32")
    assert again.tags["engine_cache"] == "miss" and again.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE["tf32"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_strongly_typed_reduced_precision(compose_cfg, precision: str) -> None:
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 needs sm_80+")
    result, _ = run(compose_cfg, f"precision={precision}")
    assert result.tags["trt_typing"] == "strong"
    assert result.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE[precision]


@pytest.mark.skipif(MAJOR >= 11, reason="weak typing (BuilderFlag.FP16) exists only in TensorRT 10.x")
def test_weak_typing_fp32_graph_plus_fp16_flag(compose_cfg) -> None:
    result, _ = run(compose_cfg, "precision=fp16", "trt.typing=weak")
    assert result.tags["trt_typing"] == "weak"
    assert result.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE["fp16"]


@pytest.mark.skipif(MAJOR < 11, reason="TensorRT 10.x still has weak typing")
def test_weak_typing_is_refused_on_11x(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=re.escape("trt.typing=weak needs TensorRT < 11.0")):
        plan_job(compose_cfg(*BASE, "precision=fp16", "trt.typing=weak"))


@pytest.mark.parametrize("mode", ["compute", "end_to_end"])
def test_cuda_graph_replay(compose_cfg, mode: str) -> None:
    result, _ = run(compose_cfg, "precision=fp16", "trt.cuda_graph=true", f"benchmark.mode={mode}")
    assert result.tags["cuda_graph"] == "on"
    assert result.metrics["parity_max_rel_err"] <= PARITY_TOLERANCE["fp16"]


def test_per_layer_profile_artifact(compose_cfg) -> None:
    result, cfg = run(compose_cfg, "precision=fp16", "trt.layer_profile=true", "trt.engine_cache=false")
    assert result.tags["engine_cache"] == "off"
    report = json.loads((Path(cfg.work_dir) / "layer_profile.json").read_text())
    assert report["layers"] and report["sum_ms"] > 0


def test_parser_errors_name_node_and_op(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from blockbench.backends.tensorrt import bindings
    from blockbench.backends.tensorrt.diagnostics import OnnxParseError
    from blockbench.backends.tensorrt.options import BuildOptions
    from blockbench.backends.tensorrt.settings import TensorRTSettings

    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    options = BuildOptions.resolve(TensorRTSettings(), "fp32")
    with pytest.raises(OnnxParseError) as info:
        bindings.build_plan(path, options, None, bindings.Logger("error"))
    assert "could not parse bad.onnx" in str(info.value) and "NoSuchOp" in str(info.value)
