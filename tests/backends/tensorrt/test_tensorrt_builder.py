"""Standard TensorRT 10.x / 11.x: settings -> builder calls, through the recording double of each real API surface.

Standard TensorRT's wheels install nowhere here, so its release-specific calls (the STRONGLY_TYPED flag on 10.x,
weak typing, the timing cache) are proven on the double. The same mapping is proven against the real TensorRT-RTX,
building real engines, in ``tests/backends/tensorrt/test_tensorrt_rtx_builder.py``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from blockbench.backends.tensorrt.diagnostics import EngineBuildError, OnnxParseError
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.errors import ConfigError
from tests.tensorrt_gpu_double import CACHE_MAGIC, PLAN_MAGIC, VERSIONS, Script, TensorRTDouble, install

V10, V11 = VERSIONS


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not parsed by the double")
    return path


def build(
    monkeypatch: pytest.MonkeyPatch,
    onnx_file: Path,
    version: str,
    precision: str = "fp16",
    script: Script | None = None,
    saved_cache: bytes | None = None,
    **settings: Any,
) -> tuple[TensorRTDouble, bytes, bytes | None]:
    double, bindings = install(monkeypatch, version, script)
    options = BuildOptions.resolve(TensorRTSettings(**settings), precision)
    built = bindings.build_plan(onnx_file, options, saved_cache, bindings.Logger("warning"))
    assert built.network_layers == len(double.script.layers)
    return double, built.plan, built.timing_cache


def flags(double: TensorRTDouble, call: str) -> list[str]:
    return [str(args[0]) for args in double.calls_to(f"IBuilderConfig.{call}")]


def test_strong_typing_on_10x_sets_the_network_flag_and_no_precision_flag(monkeypatch, onnx_file) -> None:
    double, plan, _ = build(monkeypatch, onnx_file, V10)
    strongly_typed = 1 << int(double.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert double.calls_to("Builder.create_network") == [(strongly_typed,)]
    assert flags(double, "set_flag") == ["BuilderFlag.TF32"]
    assert plan.startswith(PLAN_MAGIC)


def test_11x_networks_need_no_flag_and_get_no_precision_flag(monkeypatch, onnx_file) -> None:
    double, _, _ = build(monkeypatch, onnx_file, V11)
    assert double.calls_to("Builder.create_network") == [(0,)]
    assert flags(double, "set_flag") == ["BuilderFlag.TF32"]
    assert not hasattr(double.BuilderFlag, "FP16")  # the double enforces 11.x's surface


@pytest.mark.parametrize(("precision", "flag"), [("fp16", "BuilderFlag.FP16"), ("bf16", "BuilderFlag.BF16")])
def test_weak_typing_on_10x_is_the_papers_fp32_graph_plus_flag(
    monkeypatch, onnx_file, precision: str, flag: str
) -> None:
    double, _, _ = build(monkeypatch, onnx_file, V10, precision, typing="weak")
    assert double.calls_to("Builder.create_network") == [(0,)]
    assert flags(double, "set_flag") == ["BuilderFlag.TF32", flag]


def test_weak_typing_on_11x_is_refused_even_past_check(monkeypatch, onnx_file) -> None:
    with pytest.raises(
        ConfigError, match=re.escape("backend.typing=weak needs TensorRT < 11.0; chosen: TensorRT 11.4.0.106")
    ):
        build(monkeypatch, onnx_file, V11, typing="weak")


@pytest.mark.parametrize("version", VERSIONS)
def test_fp32_clears_tf32_and_tf32_keeps_it(monkeypatch, onnx_file, version: str) -> None:
    double, _, _ = build(monkeypatch, onnx_file, version, "fp32")
    assert flags(double, "clear_flag") == ["BuilderFlag.TF32"] and flags(double, "set_flag") == []
    double, _, _ = build(monkeypatch, onnx_file, version, "tf32")
    assert flags(double, "set_flag") == ["BuilderFlag.TF32"] and flags(double, "clear_flag") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_builder_setting_maps_to_its_call(monkeypatch, onnx_file, version: str) -> None:
    double, _, _ = build(
        monkeypatch,
        onnx_file,
        version,
        workspace_gb=4,
        builder_optimization_level=5,
        avg_timing_iterations=4,
        max_aux_streams=0,
        tiling_optimization_level="moderate",
        hardware_compatibility_level="same_compute_capability",
        profiling_verbosity="layer_names_only",
    )
    assert [(str(pool), size) for pool, size in double.calls_to("IBuilderConfig.set_memory_pool_limit")] == [
        ("MemoryPoolType.WORKSPACE", 4 * 2**30)
    ]
    assigned = {
        name[15:-1]: str(args[0])
        for name, args in double.calls
        if name.startswith("IBuilderConfig.") and name[-1] == "="
    }
    assert assigned["builder_optimization_level"] == "5"
    assert assigned["avg_timing_iterations"] == "4"
    assert assigned["max_aux_streams"] == "0"
    assert assigned["tiling_optimization_level"] == "TilingOptimizationLevel.MODERATE"
    assert assigned["hardware_compatibility_level"] == "HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY"
    assert assigned["profiling_verbosity"] == "ProfilingVerbosity.LAYER_NAMES_ONLY"


def test_defaults_leave_tensorrts_own_defaults_alone(monkeypatch, onnx_file) -> None:
    double, _, _ = build(monkeypatch, onnx_file, V10)
    called = {name for name, _ in double.calls}
    for untouched in ("set_memory_pool_limit", "max_aux_streams=", "tiling_optimization_level="):
        assert f"IBuilderConfig.{untouched}" not in called
    assert str(double.calls_to("IBuilderConfig.profiling_verbosity=")[0][0]) == "ProfilingVerbosity.DETAILED"
    assert (
        str(double.calls_to("IBuilderConfig.hardware_compatibility_level=")[0][0]) == "HardwareCompatibilityLevel.NONE"
    )
    assert double.calls_to("IBuilderConfig.progress_monitor=")  # build phases are logged


def test_settings_change_the_plan(monkeypatch, onnx_file) -> None:
    _, first, _ = build(monkeypatch, onnx_file, V10)
    _, second, _ = build(monkeypatch, onnx_file, V10, builder_optimization_level=5)
    assert first != second


class TestTimingCache:
    def test_a_saved_cache_is_loaded_used_and_returned_updated(self, monkeypatch, onnx_file) -> None:
        saved = CACHE_MAGIC + b"entries"
        double, _, learnt = build(monkeypatch, onnx_file, V10, saved_cache=saved)
        assert double.calls_to("IBuilderConfig.create_timing_cache") == [(saved,)]
        assert double.calls_to("IBuilderConfig.set_timing_cache") == [(saved, False)]
        assert learnt == saved + b"+learnt"

    def test_a_mismatched_cache_is_replaced_by_an_empty_one(self, monkeypatch, onnx_file, caplog) -> None:
        script = Script(timing_cache_accepted=False)
        with caplog.at_level(logging.WARNING):
            double, _, learnt = build(monkeypatch, onnx_file, V11, script=script, saved_cache=CACHE_MAGIC + b"old")
        assert [args[0] for args in double.calls_to("IBuilderConfig.create_timing_cache")] == [
            CACHE_MAGIC + b"old",
            b"",
        ]
        assert learnt == CACHE_MAGIC + b"+learnt" and "starting empty" in caplog.text

    def test_unreadable_cache_bytes_start_an_empty_cache(self, monkeypatch, onnx_file, caplog) -> None:
        with caplog.at_level(logging.WARNING):
            _, _, learnt = build(monkeypatch, onnx_file, V10, saved_cache=b"garbage")
        assert learnt == CACHE_MAGIC + b"+learnt" and "cannot read the saved cache" in caplog.text

    def test_disabled(self, monkeypatch, onnx_file) -> None:
        double, _, learnt = build(monkeypatch, onnx_file, V10, timing_cache=False)
        assert learnt is None and not double.calls_to("IBuilderConfig.create_timing_cache")

    def test_combining_with_another_jobs_cache(self, monkeypatch) -> None:
        double, bindings = install(monkeypatch, V11)
        merged = bindings.combine_timing_caches(CACHE_MAGIC + b"a", CACHE_MAGIC + b"b", bindings.Logger("warning"))
        assert double.calls_to("ITimingCache.combine") == [(CACHE_MAGIC + b"b", False)]
        assert merged == CACHE_MAGIC + b"a|" + CACHE_MAGIC + b"b+learnt"


@pytest.mark.parametrize("version", VERSIONS)
def test_parser_failure_reports_every_error_cleanly(monkeypatch, onnx_file, version: str) -> None:
    script = Script(
        parse_ok=False,
        parser_errors=[
            {
                "code": "UNSUPPORTED_NODE",
                "desc": "No importer registered for op: FancyOp",
                "node": 3,
                "node_name": "/stage0/fancy",
                "node_operator": "FancyOp",
            },
            {"code": "INVALID_GRAPH", "desc": "Graph has no outputs", "node": -1},
        ],
    )
    with pytest.raises(OnnxParseError) as info:
        build(monkeypatch, onnx_file, version, script=script)
    lines = str(info.value).splitlines()
    assert lines[0] == f"TensorRT {version} could not parse model.onnx (2 errors):"
    assert lines[1].startswith("  1. node 3 '/stage0/fancy' (FancyOp): UNSUPPORTED_NODE: No importer registered for op")
    assert lines[2].startswith("  2. graph: INVALID_GRAPH: Graph has no outputs")
    assert "Traceback" not in str(info.value)


def test_build_failure_carries_tensorrts_errors(monkeypatch, onnx_file) -> None:
    script = Script(build_ok=False, build_errors=["[optimizer] could not find any implementation for node conv1"])
    with pytest.raises(EngineBuildError) as info:
        build(monkeypatch, onnx_file, V10, script=script)
    assert "could not build an engine from model.onnx" in str(info.value)
    assert "could not find any implementation for node conv1" in str(info.value)


def test_the_logger_routes_messages_and_keeps_errors(monkeypatch, caplog) -> None:
    double, bindings = install(monkeypatch, V10)
    logger = bindings.Logger("warning")
    with caplog.at_level(logging.DEBUG, logger="blockbench.backends.tensorrt.bindings_tensorrt"):
        logger.log(double.ILogger.VERBOSE, "tactic 17")
        logger.log(double.ILogger.WARNING, "weights below fp16 range")
        logger.log(double.ILogger.ERROR, "out of memory")
    assert "tactic 17" not in caplog.text and "weights below fp16 range" in caplog.text
    assert logger.errors == ["out of memory"]
    verbose = bindings.Logger("verbose")
    with caplog.at_level(logging.INFO, logger="blockbench.backends.tensorrt.bindings_tensorrt"):
        verbose.log(double.ILogger.VERBOSE, "tactic 18")
    assert "tactic 18" in caplog.text


def test_unsupported_setting_also_refused_inside_bindings(monkeypatch) -> None:
    double, bindings = install(monkeypatch, V10)
    monkeypatch.setattr(bindings, "VERSION", replace(bindings.VERSION, minor=7, text="10.7.0"))
    options = BuildOptions.resolve(TensorRTSettings(tiling_optimization_level="fast"), "fp16")
    config = double.Builder(bindings.Logger("warning")).create_builder_config()
    with pytest.raises(
        ConfigError, match=re.escape("needs TensorRT >= 10.8 or TensorRT-RTX >= 1.7; chosen: TensorRT 10.7.0")
    ):
        bindings.configure(config, options)
