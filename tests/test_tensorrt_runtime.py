"""Engine I/O metadata -> buffers, named-tensor binding, checked enqueue, layer reports and error texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from blockbench.backends.base import JobContext
from blockbench.backends.tensorrt import TensorRTBackend, TensorRTStep, _pretty_json
from blockbench.backends.tensorrt.diagnostics import (
    EngineRuntimeError,
    LayerTimes,
    ParserIssue,
    format_build_failure,
    format_parser_errors,
    unavailable_message,
)
from blockbench.backends.tensorrt.settings import TensorRTBackendSettings, TensorRTSettings
from blockbench.backends.tensorrt.tensors import BufferSpec, TensorInfo, allocate, plan_input, plan_outputs
from tests.tensorrt_double import PLAN_MAGIC, VERSIONS, Script, TensorRTDouble, install

IO = [TensorInfo("input", True, (-1, 3, 64, 64), "float16"), TensorInfo("logits", False, (-1, 10), "float16")]


def test_input_plan_takes_runtime_dims_from_the_job() -> None:
    assert plan_input(IO, (2, 3, 64, 64)) == BufferSpec("input", (2, 3, 64, 64), torch.float16)


@pytest.mark.parametrize(
    ("tensors", "shape", "fragment"),
    [
        (IO, (1, 3, 32, 32), "has shape (-1, 3, 64, 64); the job feeds (1, 3, 32, 32)"),
        (IO, (1, 3, 64), "the job feeds (1, 3, 64)"),
        ([*IO, TensorInfo("mask", True, (1,), "bool")], (1, 3, 64, 64), "2 inputs (input, mask)"),
        ([TensorInfo("input", True, (1, 3, 64, 64), "fp8")], (1, 3, 64, 64), "element type fp8"),
    ],
)
def test_input_plan_refusals(tensors: list[TensorInfo], shape: tuple[int, ...], fragment: str) -> None:
    with pytest.raises(EngineRuntimeError) as info:
        plan_input(tensors, shape)
    assert fragment in str(info.value)


def test_output_plan_uses_the_contexts_resolved_shapes() -> None:
    specs = plan_outputs(IO, {"logits": (4, 10)}.__getitem__)
    assert specs == (BufferSpec("logits", (4, 10), torch.float16),)
    with pytest.raises(EngineRuntimeError, match="unresolved shape"):
        plan_outputs(IO, {"logits": (-1, 10)}.__getitem__)
    with pytest.raises(EngineRuntimeError, match="no outputs"):
        plan_outputs(IO[:1], {}.__getitem__)


def test_allocation_follows_the_specs() -> None:
    buffers = allocate(
        [BufferSpec("a", (2, 3), torch.bfloat16), BufferSpec("b", (5,), torch.int64)], torch.device("cpu")
    )
    assert [(n, tuple(t.shape), t.dtype, t.is_contiguous()) for n, t in buffers.items()] == [
        ("a", (2, 3), torch.bfloat16, True),
        ("b", (5,), torch.int64, True),
    ]


class FakeStream:
    """Stands in for torch.cuda.Stream where the step only needs a handle and a synchronize."""

    cuda_stream = 0x5EED

    def synchronize(self) -> None:
        pass


def ctx(tmp_path: Path, precision: str = "fp16") -> JobContext:
    return JobContext(torch.device("cpu"), precision, 1, 64, tmp_path, tmp_path / "cache", 0, pinned_memory=False)


def engine_from_double(monkeypatch, version: str, script: Script) -> tuple[TensorRTDouble, Any]:
    double, bindings = install(monkeypatch, version, script)
    engine = bindings.deserialize(PLAN_MAGIC + b"{}", bindings.Logger("warning"))
    assert engine is not None
    return double, engine


@pytest.mark.parametrize("version", VERSIONS)
def test_compute_step_binds_buffers_from_engine_metadata(monkeypatch, tmp_path: Path, version: str) -> None:
    script = Script(io=[("input", "INPUT", (-1, 3, 64, 64), "FLOAT"), ("logits", "OUTPUT", (-1, 10), "HALF")])
    double, engine = engine_from_double(monkeypatch, version, script)
    host = torch.randn(1, 3, 64, 64).half()  # weak typing: FP16 run, FP32 engine input
    step = TensorRTStep(engine, host, "compute", ctx(tmp_path), FakeStream(), cuda_graph=False)  # type: ignore[arg-type]
    assert step.input.dtype == torch.float32 and torch.equal(step.input, host.float())
    assert step.outputs[0].shape == (1, 10) and step.outputs[0].dtype == torch.float16
    assert double.calls_to("IExecutionContext.set_input_shape") == [("input", (1, 3, 64, 64))]
    bound = dict(double.calls_to("IExecutionContext.set_tensor_address"))
    assert bound == {"input": step.input.data_ptr(), "logits": step.outputs[0].data_ptr()}
    assert double.calls_to("IExecutionContext.execute_async_v3") == [(0x5EED,)]  # the warm-up enqueue
    step()
    assert len(double.calls_to("IExecutionContext.execute_async_v3")) == 2
    assert step.graph_status == "off" and step.output().dtype == torch.float32


def test_a_failed_enqueue_is_an_error_not_a_silent_timing(monkeypatch, tmp_path: Path) -> None:
    _, engine = engine_from_double(monkeypatch, VERSIONS[1], Script(execute_ok=False))
    with pytest.raises(EngineRuntimeError, match="execute_async_v3 failed"):
        TensorRTStep(engine, torch.randn(1, 3, 64, 64), "compute", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]


def test_dtype_names_cover_the_engine_types(monkeypatch) -> None:
    script = Script(io=[("x", "INPUT", (1,), "BF16"), ("y", "OUTPUT", (1,), "INT64"), ("z", "OUTPUT", (1,), "FP8")])
    _, engine = engine_from_double(monkeypatch, VERSIONS[0], script)
    assert [t.dtype for t in engine.io_tensors()] == ["bfloat16", "int64", "DataType.FP8"]


def test_a_non_plan_does_not_deserialize(monkeypatch) -> None:
    _, bindings = install(monkeypatch, VERSIONS[0])
    assert bindings.deserialize(b"garbage", bindings.Logger("warning")) is None


def test_layer_information_and_profile_artifacts(monkeypatch, tmp_path: Path) -> None:
    double, engine = engine_from_double(monkeypatch, VERSIONS[0], Script(layers=["conv1 + relu1", "pool", "gemm"]))
    assert json.loads(engine.layer_information()) == {"Layers": ["conv1 + relu1", "pool", "gemm"]}
    assert str(double.calls_to("EngineInspector.get_engine_information")[0][0]) == "LayerInformationFormat.JSON"
    step = TensorRTStep(engine, torch.randn(1, 3, 64, 64), "compute", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]
    backend = TensorRTBackend(TensorRTBackendSettings(trt=TensorRTSettings(layer_profile=True)), ctx(tmp_path))
    backend.engine = engine
    extra = backend.after_benchmark(step)
    assert extra.tags == {"cuda_graph": "off"}
    report = json.loads((tmp_path / "layer_profile.json").read_text())
    assert extra.engine_files == [tmp_path / "layer_profile.json"]
    assert report["iterations"] == 20 and [row["name"] for row in report["layers"]] == ["conv1 + relu1", "pool", "gemm"]
    assert report["layers"][0]["ms"] == pytest.approx(0.5) and report["sum_ms"] == pytest.approx(1.5)


def test_layer_times_average_per_inference() -> None:
    times = LayerTimes()
    for _ in range(4):
        times.add("a", 1.0)
        times.add("b", 3.0)
    report = times.report(4)
    assert [(r["name"], r["ms"], r["percent"]) for r in report["layers"]] == [("a", 1.0, 25.0), ("b", 3.0, 75.0)]


def test_parser_error_format() -> None:
    issues = [
        ParserIssue(
            "ErrorCode.UNSUPPORTED_NODE", "Unsupported: Erf in bf16 ", 7, "/act/Erf", "Erf", ("gelu",), "x.cpp:3 f"
        ),
    ]
    text = format_parser_errors(Path("/w/model.onnx"), issues, "10.16.1.11")
    assert text == (
        "TensorRT 10.16.1.11 could not parse model.onnx (1 error):\n"
        "  1. node 7 '/act/Erf' (Erf): UNSUPPORTED_NODE: Unsupported: Erf in bf16 [in local function gelu] "
        "(parser: x.cpp:3 f)"
    )
    assert "without an error" in format_parser_errors(Path("m.onnx"), [], "11.4.0.106")


def test_build_failure_without_logged_errors_says_how_to_see_more() -> None:
    assert "trt.log_level=verbose" in format_build_failure(Path("m.onnx"), [], "11.4.0.106")


def test_unavailable_message_has_problem_findings_and_install_command() -> None:
    text = unavailable_message("import tensorrt failed (No module named 'tensorrt')", {"tensorrt": "not installed"})
    assert text.startswith("backend=tensorrt cannot run here: import tensorrt failed")
    assert "Found: tensorrt: not installed." in text and 'pip install -e ".[tensorrt]"' in text and "cu12" in text


def test_layer_json_is_pretty_printed_when_it_parses() -> None:
    assert _pretty_json('{"a": 1}') == '{\n  "a": 1\n}' and _pretty_json("not json") == "not json"


def test_close_releases_the_tensorrt_objects(monkeypatch, tmp_path: Path) -> None:
    _, engine = engine_from_double(monkeypatch, VERSIONS[0], Script())
    backend = TensorRTBackend(TensorRTBackendSettings(), ctx(tmp_path))
    backend.engine = engine
    backend.close()
    assert backend.engine is None
    assert (engine.context, engine.engine, engine.runtime, engine._execute) == (None, None, None, None)
