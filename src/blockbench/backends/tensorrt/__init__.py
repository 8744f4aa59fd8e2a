"""TensorRT backend: ONNX -> engine (cached), run through the named-tensor API on a torch CUDA stream.

Only :mod:`.bindings` imports ``tensorrt``, and only when a job uses this backend; everything around it (settings,
version switches, cache keys, error texts, buffer planning) is plain Python. No pycuda: device memory, streams,
events and CUDA graphs come from torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blockbench.backends.base import Backend, BuildResult, InferenceStep, JobContext
from blockbench.backends.tensorrt.cache import GpuIdentity
from blockbench.backends.tensorrt.diagnostics import EngineRuntimeError, unavailable_message
from blockbench.backends.tensorrt.engine import prepare_engine
from blockbench.backends.tensorrt.options import check_device, onnx_dtype
from blockbench.backends.tensorrt.settings import TensorRTBackendSettings, validate_settings
from blockbench.backends.tensorrt.tensors import allocate, plan_input, plan_outputs
from blockbench.backends.tensorrt.versions import NEWEST_CHECKED_MAJOR, check_release, check_settings
from blockbench.errors import BackendUnavailableError

log = logging.getLogger(__name__)

LAYER_INFO_NAME = "engine_layers.json"
LAYER_PROFILE_NAME = "layer_profile.json"
LAYER_PROFILE_ITERATIONS = 20
_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu13-bindings", "tensorrt-cu12-bindings")


def _found() -> dict[str, str]:
    """What a user needs to see when TensorRT cannot run: installed distributions, torch's CUDA, GPUs."""
    installed = []
    for name in _DISTRIBUTIONS:
        try:
            installed.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    module = "importable" if importlib.util.find_spec("tensorrt") else "not installed"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {
        "tensorrt": ", ".join(installed) if installed else module,
        "torch": f"{torch.__version__} (CUDA {torch.version.cuda or 'none: CPU build'})",
        "CUDA devices": str(gpus),
    }


def _bindings() -> Any:
    """Import the TensorRT-facing module, turning a missing or broken install into one actionable error."""
    try:
        from blockbench.backends.tensorrt import bindings
    except (ImportError, OSError) as exc:
        raise BackendUnavailableError(unavailable_message(f"import tensorrt failed ({exc})", _found())) from exc
    return bindings


def gpu_identity(device: torch.device) -> GpuIdentity:
    props = torch.cuda.get_device_properties(device)
    return GpuIdentity(name=props.name, compute_capability=f"{props.major}.{props.minor}")


class TensorRTBackend(Backend):
    name = "tensorrt"
    settings_class = TensorRTBackendSettings

    def __init__(self, settings: TensorRTBackendSettings, ctx: JobContext) -> None:
        super().__init__(settings, ctx)
        self.trt = settings.trt
        self.engine: Any = None
        self.stream: torch.cuda.Stream | None = None

    @classmethod
    def check(cls, settings: TensorRTBackendSettings, ctx: JobContext) -> None:
        validate_settings(settings.trt)
        if not ctx.is_cuda:
            problem = f"it needs a CUDA device and this job has hardware.device={ctx.device}"
            raise BackendUnavailableError(unavailable_message(problem, _found()))
        bindings = _bindings()
        check_release(bindings.VERSION)
        if bindings.VERSION.major > NEWEST_CHECKED_MAJOR:
            log.warning("TensorRT %s is newer than the API surfaces blockbench is checked against", bindings.VERSION)
        check_settings(settings.trt, bindings.VERSION)
        capability = torch.cuda.get_device_capability(ctx.device)
        check_device(settings.trt, ctx.precision, capability, torch.cuda.get_device_name(ctx.device))

    @classmethod
    def onnx_dtype(cls, settings: TensorRTBackendSettings, ctx: JobContext) -> torch.dtype:
        return onnx_dtype(settings.trt, ctx.dtype)

    def build(self, model: nn.Module, onnx_path: Path | None) -> BuildResult:
        assert onnx_path is not None, "tensorrt builds from the ONNX export"
        # TensorRT builds, deserializes and runs on the calling thread's current device.
        torch.cuda.set_device(self.ctx.device)
        self.stream = torch.cuda.Stream(self.ctx.device)
        gpu = gpu_identity(self.ctx.device)
        prepared = prepare_engine(onnx_path, self.trt, self.ctx.precision, gpu, self.ctx.cache_dir, self.ctx.work_dir)
        self.engine = prepared.engine
        layer_info = self.ctx.work_dir / LAYER_INFO_NAME
        layer_info.write_text(_pretty_json(self.engine.layer_information()))
        metrics = {"engine_size_mb": prepared.plan_bytes / 2**20, "engine_layers": float(self.engine.num_layers)}
        if prepared.builder_s is not None:
            metrics["trt_builder_s"] = prepared.builder_s
        return BuildResult(
            engine_files=[prepared.plan_path, layer_info],
            tags={
                "engine_cache": prepared.cache,
                "tensorrt_version": str(_bindings().VERSION),
                "trt_typing": self.trt.typing,
            },
            metrics=metrics,
        )

    def step(self, host_input: torch.Tensor, mode: str) -> InferenceStep:
        assert self.engine is not None and self.stream is not None, "build() first"
        return TensorRTStep(self.engine, host_input, mode, self.ctx, self.stream, self.trt.cuda_graph)

    def after_benchmark(self, step: InferenceStep) -> BuildResult:
        assert isinstance(step, TensorRTStep)
        result = BuildResult(tags={"cuda_graph": step.graph_status})
        if self.trt.layer_profile:
            times = self.engine.profile_layers(step.handle, LAYER_PROFILE_ITERATIONS, step.stream.synchronize)
            path = self.ctx.work_dir / LAYER_PROFILE_NAME
            path.write_text(json.dumps(times.report(LAYER_PROFILE_ITERATIONS), indent=2))
            result.engine_files.append(path)
        return result

    def close(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()
        if self.engine is not None:
            self.engine.release()
        self.engine = None
        self.stream = None
        if self.ctx.is_cuda:
            torch.cuda.empty_cache()


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


class TensorRTStep(InferenceStep):
    """Torch buffers bound once by name; ``compute`` enqueues (or replays the captured enqueue), ``end_to_end``
    adds the host->device copy before and the device->host copies after, all on the step's stream."""

    def __init__(
        self,
        engine: Any,
        host_input: torch.Tensor,
        mode: str,
        ctx: JobContext,
        stream: torch.cuda.Stream,
        cuda_graph: bool,
    ) -> None:
        self.engine = engine
        self.stream = stream
        self.handle = stream.cuda_stream
        tensors = engine.io_tensors()
        input_spec = plan_input(tensors, tuple(host_input.shape))
        engine.set_input_shape(input_spec.name, input_spec.shape)
        output_specs = plan_outputs(tensors, engine.tensor_shape)
        self.buffers = allocate([input_spec, *output_specs], ctx.device)
        for name, buffer in self.buffers.items():
            engine.bind(name, buffer.data_ptr())
        self.input = self.buffers[input_spec.name]
        self.outputs = [self.buffers[spec.name] for spec in output_specs]
        # The engine's input type (FP32 under weak typing) is fixed once here, outside the timed copy.
        source = host_input.to(input_spec.dtype)
        self.input.copy_(source)
        self.host_input: torch.Tensor | None = None
        self.host_outputs: list[torch.Tensor] = []
        if mode == "end_to_end":
            self.host_input = source.pin_memory() if ctx.pinned_memory and not source.is_pinned() else source
            self.host_outputs = [
                torch.empty(spec.shape, dtype=spec.dtype, pin_memory=ctx.pinned_memory) for spec in output_specs
            ]
        # First enqueue outside the timed loop: TensorRT finishes lazy set-up here, and capture needs it done.
        engine.enqueue(self.handle)
        stream.synchronize()
        self.graph: torch.cuda.CUDAGraph | None = self._capture() if cuda_graph else None
        self.graph_status = "on" if self.graph is not None else ("fallback" if cuda_graph else "off")

    def _capture(self) -> torch.cuda.CUDAGraph | None:
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: other threads' CUDA calls (e.g. a progress bar) cannot invalidate the capture.
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self.engine.enqueue(self.handle)
            with torch.cuda.stream(self.stream):
                graph.replay()
            self.stream.synchronize()
        except (RuntimeError, EngineRuntimeError) as exc:
            log.warning("cuda_graph: capturing the TensorRT enqueue failed (%s); running without a CUDA graph", exc)
            torch.cuda.synchronize(self.stream.device)
            self.engine.enqueue(self.handle)  # the plain path must still work after a failed capture
            self.stream.synchronize()
            return None
        return graph

    def __call__(self) -> None:
        if self.host_input is None and self.graph is None:
            self.engine.enqueue(self.handle)
            return
        with torch.cuda.stream(self.stream):
            if self.host_input is not None:
                self.input.copy_(self.host_input, non_blocking=True)
            if self.graph is not None:
                self.graph.replay()
            else:
                self.engine.enqueue(self.handle)
            for host, device in zip(self.host_outputs, self.outputs, strict=True):
                host.copy_(device, non_blocking=True)

    def output(self) -> torch.Tensor:
        self.stream.synchronize()
        first = self.host_outputs[0] if self.host_outputs else self.outputs[0]
        return first.float().cpu()
