"""Settings -> builder calls, parse errors, build failures and version gating against the real TensorRT-RTX.

TensorRT-RTX builds engines without a GPU, so these tests build real engines on any machine it installs on
(the test extras install it). What they prove for TensorRT-RTX, ``tests/backends/tensorrt/test_tensorrt_builder.py``
proves for
standard TensorRT 10.x / 11.x on the GPU double, since standard TensorRT installs nowhere here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from blockbench.backends.tensorrt.diagnostics import EngineBuildError, OnnxParseError
from blockbench.backends.tensorrt.library import load_bindings
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.build.export import export_onnx
from blockbench.errors import ConfigError

trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras: pip install -e .[test]")
RTX = TensorRTSettings(library="tensorrt_rtx")


@pytest.fixture(scope="module")
def bindings() -> Any:
    return load_bindings("tensorrt_rtx")


class ConvNormGemm(nn.Module):
    """The smallest network with what the paper's networks have: conv, a hand-written channel LN, GELU, a GEMM."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = nn.functional.gelu((x - mean) / torch.sqrt(var + 1e-6))
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny network exported in FP32 and FP16, as the pipeline exports (dynamo exporter, opset 18)."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        model = ConvNormGemm().eval().to(dtype)
        files[name] = folder / f"{name}.onnx"
        export_onnx(model, torch.randn(1, 3, 32, 32, dtype=dtype), files[name], 18)
    return files


def configured(bindings: Any, settings: TensorRTSettings, precision: str = "fp32") -> Any:
    """A real IBuilderConfig after ``bindings.configure``: what TensorRT-RTX was told, read back from it."""
    builder = trt.Builder(bindings.Logger("error"))
    config = builder.create_builder_config()
    bindings.configure(config, BuildOptions.resolve(settings, precision))
    return config


def test_every_builder_setting_reaches_the_real_config(bindings: Any) -> None:
    config = configured(
        bindings,
        replace(
            RTX,
            workspace_gb=2,
            builder_optimization_level=5,
            avg_timing_iterations=4,
            max_aux_streams=0,
            tiling_optimization_level="moderate",
            profiling_verbosity="layer_names_only",
            compute_capabilities=["8.6", "12.0"],
        ),
    )
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 2 * 2**30
    assert config.builder_optimization_level == 5
    assert config.avg_timing_iterations == 4
    assert config.max_aux_streams == 0
    assert config.tiling_optimization_level == trt.TilingOptimizationLevel.MODERATE
    assert config.profiling_verbosity == trt.ProfilingVerbosity.LAYER_NAMES_ONLY
    assert config.num_compute_capabilities == 2
    assert [config.get_compute_capability(i) for i in range(2)] == [
        trt.ComputeCapability.SM86,
        trt.ComputeCapability.SM120,
    ]


def test_defaults_leave_the_librarys_own_defaults_alone(bindings: Any) -> None:
    fresh = trt.Builder(bindings.Logger("error")).create_builder_config()
    config = configured(bindings, RTX)
    pool = trt.MemoryPoolType.WORKSPACE
    assert config.get_memory_pool_limit(pool) == fresh.get_memory_pool_limit(pool)
    assert config.num_compute_capabilities == 0  # the library's own target list
    assert config.max_aux_streams == fresh.max_aux_streams
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED


@pytest.mark.parametrize(("precision", "tf32"), [("fp32", False), ("tf32", True), ("fp16", True)])
def test_strict_fp32_clears_tf32(bindings: Any, precision: str, tf32: bool) -> None:
    assert configured(bindings, RTX, precision).get_flag(trt.BuilderFlag.TF32) == tf32


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        (replace(RTX, typing="weak"), "backend.typing=weak needs TensorRT < 11.0; chosen: TensorRT-RTX 1."),
        (replace(RTX, hardware_compatibility_level="ampere_plus"), "backend.hardware_compatibility_level needs"),
    ],
)
def test_knobs_the_library_lacks_are_refused_inside_the_bindings_too(
    bindings: Any, settings: TensorRTSettings, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        configured(bindings, settings, "fp16")


def test_a_real_build_returns_the_plan_and_what_the_builder_said(bindings: Any, onnx_files: dict[str, Path]) -> None:
    logger = bindings.Logger("warning")
    built = bindings.build_plan(onnx_files["fp32"], BuildOptions.resolve(RTX, "fp32"), None, logger)
    assert len(built.plan) > 10_000 and built.network_layers > 5
    targeted = bindings.build_plan(
        onnx_files["fp32"], BuildOptions.resolve(replace(RTX, compute_capabilities=["8.9"]), "fp32"), None, logger
    )
    assert targeted.plan != built.plan  # the targets are compiled into the plan


def test_the_fp16_layernorm_warning_is_kept(bindings: Any, onnx_files: dict[str, Path], caplog) -> None:
    logger = bindings.Logger("warning")
    with caplog.at_level(logging.WARNING):
        built = bindings.build_plan(onnx_files["fp16"], BuildOptions.resolve(RTX, "fp16"), None, logger)
    layernorm = [w for w in built.warnings if "layernorm" in w.lower()]
    assert layernorm, built.warnings
    assert "layernorm" in caplog.text.lower()  # and in the run's log


def test_a_real_parser_error_names_node_and_op(bindings: Any, tmp_path: Path) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    with pytest.raises(OnnxParseError) as info:
        bindings.build_plan(path, BuildOptions.resolve(RTX, "fp32"), None, bindings.Logger("error"))
    message = str(info.value)
    assert message.startswith(f"TensorRT-RTX {trt.__version__} could not parse bad.onnx (1 error):")
    assert "'mystery' (NoSuchOp)" in message and "Traceback" not in message


def test_a_real_build_failure_carries_the_librarys_errors(bindings: Any, onnx_files: dict[str, Path]) -> None:
    """TensorRT-RTX cannot compile an FP32 GEMM for Turing: the build fails with its own words."""
    options = BuildOptions.resolve(replace(RTX, compute_capabilities=["7.5"]), "fp32")
    with pytest.raises(EngineBuildError) as info:
        bindings.build_plan(onnx_files["fp32"], options, None, bindings.Logger("error"))
    assert "could not build an engine from fp32.onnx" in str(info.value)
    assert "SM75" in str(info.value)


def test_the_logger_routes_real_severities(bindings: Any, caplog) -> None:
    logger = bindings.Logger("warning")
    with caplog.at_level(logging.DEBUG, logger="blockbench.backends.tensorrt.bindings_tensorrt_rtx"):
        logger.log(trt.ILogger.VERBOSE, "tactic 17")
        logger.log(trt.ILogger.WARNING, "weights below fp16 range")
        logger.log(trt.ILogger.ERROR, "out of memory")
    assert "tactic 17" not in caplog.text and "weights below fp16 range" in caplog.text
    assert logger.errors == ["out of memory"] and logger.warnings == ["weights below fp16 range"]


def test_compute_capabilities_are_the_librarys_targets(bindings: Any) -> None:
    targets = bindings.compute_capabilities()
    assert list(targets) == ["7.5", "8.0", "8.6", "8.9", "12.0", "12.1"]
    members = {m for m in trt.ComputeCapability.__members__ if m not in ("NONE", "CURRENT")}
    assert {str(v).rsplit(".", 1)[-1] for v in targets.values()} == members  # every target the library has
