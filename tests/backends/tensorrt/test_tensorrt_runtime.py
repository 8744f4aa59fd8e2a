"""Engine I/O metadata -> buffers, named-tensor binding, checked enqueue, layer reports and error texts.

Running an engine needs a GPU, so execution is tested on the GPU double (``tests/tensorrt_gpu_double.py``), for
standard TensorRT and for TensorRT-RTX's runtime (runtime config, built-in CUDA graph, runtime cache). The same
paths run for real in ``tests/backends/tensorrt/test_tensorrt_integration.py`` on a machine with a GPU the
library runs on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from blockbench.backends.base import JobContext
from blockbench.backends.tensorrt.backend import TensorRTBackend, TensorRTStep, _pretty_json
from blockbench.backends.tensorrt.cache import BuildTarget, SharedCacheFile
from blockbench.backends.tensorrt.diagnostics import (
    EngineRuntimeError,
    LayerTimes,
    ParserIssue,
    format_build_failure,
    format_parser_errors,
    unavailable_message,
)
from blockbench.backends.tensorrt.library import LIBRARIES
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.backends.tensorrt.tensors import BufferSpec, TensorInfo, allocate, plan_input, plan_outputs
from tests.tensorrt_gpu_double import (
    PLAN_MAGIC,
    RTX_VERSION,
    RUNTIME_CACHE_MAGIC,
    VERSIONS,
    Script,
    TensorRTDouble,
    install,
)

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


def engine_from_double(
    monkeypatch, version: str, script: Script, library_name: str = "tensorrt", runtime: Any = None
) -> tuple[TensorRTDouble, Any]:
    double, bindings = install(monkeypatch, version, script, library_name)
    engine = bindings.deserialize(PLAN_MAGIC + b"{}", bindings.Logger("warning"), runtime)
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


def test_end_to_end_step_issues_copy_in_compute_and_copy_out_as_separate_phases(monkeypatch, tmp_path: Path) -> None:
    script = Script(io=[("input", "INPUT", (1, 3, 64, 64), "FLOAT"), ("logits", "OUTPUT", (1, 10), "FLOAT")])
    double, engine = engine_from_double(monkeypatch, VERSIONS[1], script)
    host = torch.randn(1, 3, 64, 64)
    compute = TensorRTStep(engine, host, "compute", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]
    assert compute.phases() is None
    step = TensorRTStep(engine, host, "end_to_end", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]
    phases = step.phases()
    assert phases is not None
    step.input.zero_()
    phases.h2d()
    assert torch.equal(step.input, host)  # the copy-in alone refills the device input
    enqueued = len(double.calls_to("IExecutionContext.execute_async_v3"))
    phases.compute()
    assert len(double.calls_to("IExecutionContext.execute_async_v3")) == enqueued + 1
    step.outputs[0].fill_(7.0)
    phases.d2h()
    assert torch.equal(step.host_outputs[0], step.outputs[0])  # the copy-out alone fills the host output


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
    backend = TensorRTBackend(TensorRTSettings(layer_profile=True), ctx(tmp_path))
    backend.engine = engine
    extra = backend.after_benchmark(step)
    assert extra.tags == {"cuda_graph": "off", "cuda_graph_mechanism": "none"}
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
    text = format_parser_errors(Path("/w/model.onnx"), issues, "TensorRT 10.16.1.11")
    assert text == (
        "TensorRT 10.16.1.11 could not parse model.onnx (1 error):\n"
        "  1. node 7 '/act/Erf' (Erf): UNSUPPORTED_NODE: Unsupported: Erf in bf16 [in local function gelu] "
        "(parser: x.cpp:3 f)"
    )
    assert "without an error" in format_parser_errors(Path("m.onnx"), [], "11.4.0.106")


def test_build_failure_without_logged_errors_says_how_to_see_more() -> None:
    assert "backend.log_level=verbose" in format_build_failure(Path("m.onnx"), [], "11.4.0.106")


def test_unavailable_message_has_problem_findings_and_install_command() -> None:
    problem = "import tensorrt failed (No module named 'tensorrt')"
    text = unavailable_message(LIBRARIES["tensorrt"], problem, {"tensorrt": "not installed"})
    assert text.startswith("backend=tensorrt backend.library=tensorrt cannot run here: import tensorrt failed")
    assert "Found: tensorrt: not installed." in text and 'pip install -e ".[tensorrt]"' in text and "cu12" in text
    rtx = unavailable_message(
        LIBRARIES["tensorrt_rtx"], "import tensorrt_rtx failed", {"tensorrt_rtx": "not installed"}
    )
    assert 'pip install -e ".[tensorrt-rtx]"' in rtx and "builds without a GPU" in rtx


def test_layer_json_is_pretty_printed_when_it_parses() -> None:
    assert _pretty_json('{"a": 1}') == '{\n  "a": 1\n}' and _pretty_json("not json") == "not json"


def test_close_releases_the_tensorrt_objects(monkeypatch, tmp_path: Path) -> None:
    _, engine = engine_from_double(monkeypatch, VERSIONS[0], Script())
    backend = TensorRTBackend(TensorRTSettings(), ctx(tmp_path))
    backend.engine = engine
    backend.close()
    assert backend.engine is None
    assert (engine.context, engine.engine, engine.runtime, engine._execute) == (None, None, None, None)


class TestTensorRTRTXRuntime:
    """TensorRT-RTX's runtime path: a runtime config per context, its own CUDA graph, its JIT runtime cache."""

    def engine(self, monkeypatch, cuda_graph: bool, runtime_cache: bytes | None, script: Script | None = None):
        install_double, bindings = install(monkeypatch, RTX_VERSION, script or Script(), "tensorrt_rtx")
        options = bindings.RuntimeOptions(cuda_graph=cuda_graph, runtime_cache=runtime_cache)
        engine = bindings.deserialize(PLAN_MAGIC + b"{}", bindings.Logger("warning"), options)
        assert engine is not None
        return install_double, engine

    def test_builtin_cuda_graph_and_an_empty_runtime_cache(self, monkeypatch, tmp_path: Path) -> None:
        double, engine = self.engine(monkeypatch, cuda_graph=True, runtime_cache=b"")
        assert [str(a[0]) for a in double.calls_to("IRuntimeConfig.cuda_graph_strategy=")] == [
            "CudaGraphStrategy.WHOLE_GRAPH_CAPTURE"
        ]
        assert double.calls_to("IRuntimeConfig.create_runtime_cache") == [()]
        assert not double.calls_to("IRuntimeCache.deserialize")  # nothing saved yet: start empty
        (config,) = double.calls_to("ICudaEngine.create_execution_context")[0]
        assert type(config).__name__ == "RuntimeConfig" and engine.runtime_cache_status == "miss"
        step = TensorRTStep(engine, torch.randn(1, 3, 64, 64), "compute", ctx(tmp_path), FakeStream(), True)  # type: ignore[arg-type]
        assert (step.graph, step.graph_status, step.graph_mechanism) == (None, "on", "library")  # no torch capture
        step()
        assert len(double.calls_to("IExecutionContext.execute_async_v3")) == 2

    def test_without_a_graph_the_strategy_is_disabled(self, monkeypatch) -> None:
        double, engine = self.engine(monkeypatch, cuda_graph=False, runtime_cache=None)
        assert [str(a[0]) for a in double.calls_to("IRuntimeConfig.cuda_graph_strategy=")] == [
            "CudaGraphStrategy.DISABLED"
        ]
        assert not double.calls_to("IRuntimeConfig.create_runtime_cache") and engine.runtime_cache_bytes() is None
        assert engine.runtime_cache_status == "off"

    @pytest.mark.parametrize(("accepted", "status"), [(True, "hit"), (False, "miss")])
    def test_a_saved_runtime_cache_is_offered_and_kept_only_if_accepted(
        self, monkeypatch, accepted: bool, status: str
    ) -> None:
        saved = RUNTIME_CACHE_MAGIC + b"old kernels"
        double, engine = self.engine(monkeypatch, False, saved, Script(runtime_cache_accepted=accepted))
        assert double.calls_to("IRuntimeCache.deserialize") == [(saved,)] and engine.runtime_cache_status == status

    def test_the_runtime_cache_is_persisted_after_the_benchmark(self, monkeypatch, tmp_path: Path) -> None:
        _, engine = self.engine(monkeypatch, cuda_graph=False, runtime_cache=b"")
        step = TensorRTStep(engine, torch.randn(1, 3, 64, 64), "compute", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]
        backend = TensorRTBackend(TensorRTSettings(library="tensorrt_rtx"), ctx(tmp_path))
        backend.engine = engine
        file = SharedCacheFile(
            tmp_path / "runtime", RTX_VERSION, BuildTarget("NVIDIA GeForce RTX 4090", "8.9"), "tensorrt_rtx"
        )
        backend.runtime_cache = file
        backend.after_benchmark(step)
        assert file.path.name == "tensorrt_rtx-1.7.1.116-nvidia-geforce-rtx-4090-sm89.cache"
        assert file.load() == RUNTIME_CACHE_MAGIC + b"kernels"


def test_attribution_profiles_layers_and_joins_them_to_the_onnx_modules(monkeypatch, tmp_path: Path) -> None:
    """The backend's attribution on the double: the per-layer profiler over plain enqueues (0.5 ms a layer), each
    layer joined through its name to the tiny ConvNeXt's ONNX nodes and their module scopes."""
    layers = ["node_Conv_111 + node_relu", "node_conv2d_1", "{ForeignNode[node_mean...node_add_1]}", "node_add_2"]
    _, engine = engine_from_double(monkeypatch, VERSIONS[0], Script(layers=layers))
    step = TensorRTStep(engine, torch.randn(1, 3, 64, 64), "compute", ctx(tmp_path), FakeStream(), False)  # type: ignore[arg-type]
    backend = TensorRTBackend(TensorRTSettings(), ctx(tmp_path))
    backend.engine, backend.onnx_path = engine, Path(__file__).parents[2] / "data" / "convnext_ln_gelu_tiny.onnx"
    found = backend.attribute(step, 4)
    assert found.method.startswith("TensorRT IProfiler")
    assert [(r.scope, r.op_class, r.ms) for r in found.rows] == [
        ("stem", "fused: conv+act", 0.5),
        ("stages.0.0.dwconv", "dwconv", 0.5),
        ("stages.0.0.norm", "norm", 0.5),
        ("stages.0.0", "add", 0.5),
    ]
    assert found.total_ms == pytest.approx(2.0) and found.profiled_ms > 0
