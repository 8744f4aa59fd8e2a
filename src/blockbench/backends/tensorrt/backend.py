"""TensorRT backend: ONNX -> engine (cached), run through the named-tensor API on a torch CUDA stream.

One backend, two libraries (``backend.library=tensorrt|tensorrt_rtx``): standard TensorRT and TensorRT-RTX share
this code; what differs sits in :mod:`.library` and behind the version switches of :mod:`.bindings`, the only
module that touches either library, loaded only when a job uses it. Settings, cache keys, error texts and buffer
planning are plain Python. No pycuda: device memory, streams, events and CUDA graphs come from torch.

TensorRT-RTX builds engines ahead of time without a GPU: on a machine without one that it can run on, a job is
build-only (``run.build_only``), and the engine is logged untimed for the GPUs it was built for.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import time
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.backends.base import Backend, BuildResult, InferenceStep, JobContext, Phases
from blockbench.backends.tensorrt.cache import BuildTarget, SharedCacheFile
from blockbench.backends.tensorrt.diagnostics import EngineRuntimeError, layer_rows, unavailable_message
from blockbench.backends.tensorrt.engine import prepare_engine
from blockbench.backends.tensorrt.library import LIBRARIES, Library, load_bindings
from blockbench.backends.tensorrt.options import check_device, onnx_dtype
from blockbench.backends.tensorrt.settings import TensorRTSettings, validate_settings
from blockbench.backends.tensorrt.tensors import allocate, plan_input, plan_outputs
from blockbench.backends.tensorrt.versions import check_release, check_settings
from blockbench.errors import BackendUnavailableError, ConfigError
from blockbench.measure import metric_names as names
from blockbench.measure.attribution import Attribution, NodeIndex

log = logging.getLogger(__name__)

LAYER_INFO_NAME = "engine_layers.json"
LAYER_PROFILE_NAME = "layer_profile.json"
LAYER_PROFILE_ITERATIONS = 20
WARNINGS_TAG_CHARS = 2000  # MLflow tags hold a few thousand characters; the run's log has every warning in full


def _found(lib: Library) -> dict[str, str]:
    """What a user needs to see when the library cannot run: installed distributions, torch's CUDA, GPUs."""
    installed = []
    for name in lib.distributions:
        try:
            installed.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    module = "importable" if importlib.util.find_spec(lib.module) else "not installed"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {
        lib.module: ", ".join(installed) if installed else module,
        "torch": f"{torch.__version__} (CUDA {torch.version.cuda or 'none: CPU build'})",
        "CUDA devices": str(gpus),
    }


def bindings_for(name: str) -> ModuleType:
    """The bindings of library ``name``, turning a missing or broken install into one actionable error."""
    lib = LIBRARIES[name]
    try:
        return load_bindings(name)
    except (ImportError, OSError) as exc:
        problem = f"import {lib.module} failed ({exc})"
        raise BackendUnavailableError(unavailable_message(lib, problem, _found(lib))) from exc


def gpu_identity(device: torch.device) -> BuildTarget:
    props = torch.cuda.get_device_properties(device)
    return BuildTarget(name=props.name, compute_capability=f"{props.major}.{props.minor}")


def build_target(settings: TensorRTSettings, ctx: JobContext) -> BuildTarget:
    """What the engine is built for: this GPU (standard TensorRT), or the chosen compute capabilities (RTX)."""
    if LIBRARIES[settings.library].builds_without_gpu:
        return BuildTarget(
            name=settings.library, compute_capability="+".join(settings.compute_capabilities) or "default"
        )
    return gpu_identity(ctx.device)


class TensorRTBackend(Backend):
    name = "tensorrt"
    settings_class = TensorRTSettings

    def __init__(self, settings: TensorRTSettings, ctx: JobContext) -> None:
        super().__init__(settings, ctx)
        self.engine: Any = None
        self.stream: torch.cuda.Stream | None = None
        self.bindings = bindings_for(settings.library)
        self.runtime_cache: SharedCacheFile | None = None
        self.onnx_path: Path | None = None

    @classmethod
    def build_only_reason(cls, settings: TensorRTSettings, ctx: JobContext) -> str | None:
        lib = LIBRARIES.get(settings.library)
        if lib is not None and lib.builds_without_gpu and not ctx.is_cuda:
            return (
                f"{lib.label} builds engines without a GPU, and this job has none (hardware.device={ctx.device}); "
                "to time the engine, run on a GPU it runs on with hardware.device=cuda"
            )
        return None

    @classmethod
    def check(cls, settings: TensorRTSettings, ctx: JobContext) -> None:
        validate_settings(settings)
        if PRECISIONS[ctx.precision].quantized and settings.typing != "strong":
            raise ConfigError(
                f"precision={ctx.precision} with backend.typing={settings.typing}: an explicitly quantized network "
                "takes its precision from the graph's QuantizeLinear/DequantizeLinear pairs; use backend.typing=strong"
            )
        lib = LIBRARIES[settings.library]
        if not ctx.is_cuda and not lib.builds_without_gpu:
            problem = f"it needs a CUDA device and this job has hardware.device={ctx.device}"
            raise BackendUnavailableError(unavailable_message(lib, problem, _found(lib)))
        bindings = bindings_for(settings.library)
        check_release(bindings.VERSION)
        if bindings.VERSION.release > lib.newest_checked:
            log.warning("%s is newer than the API surfaces blockbench is checked against", bindings.VERSION.label)
        check_settings(settings, bindings.VERSION)
        if settings.compute_capabilities:
            targets = bindings.compute_capabilities()
            unknown = [c for c in settings.compute_capabilities if c not in targets]
            if unknown:
                raise BackendUnavailableError(
                    f"backend.compute_capabilities={list(settings.compute_capabilities)}: {', '.join(unknown)} is not "
                    f"a target of {bindings.VERSION.label}; choose from: {', '.join(targets)}"
                )
        if ctx.is_cuda and not ctx.build_only:
            capability = torch.cuda.get_device_capability(ctx.device)
            runnable = tuple(bindings.compute_capabilities()) if lib.builds_without_gpu else None
            label = bindings.VERSION.label
            check_device(settings, ctx.precision, capability, torch.cuda.get_device_name(ctx.device), runnable, label)
            chosen = settings.compute_capabilities
            here = f"{capability[0]}.{capability[1]}"
            if chosen and here not in chosen:
                raise BackendUnavailableError(
                    f"backend.compute_capabilities={list(chosen)} leaves out this GPU's compute capability {here}: "
                    "the engine would not run here. Add it, use [], or set run.build_only=true"
                )

    @classmethod
    def onnx_dtype(cls, settings: TensorRTSettings, ctx: JobContext) -> torch.dtype:
        return onnx_dtype(settings, ctx.dtype)

    def build(self, model: nn.Module, onnx_path: Path | None) -> BuildResult:
        assert onnx_path is not None, "tensorrt builds from the ONNX export"
        self.onnx_path = onnx_path
        settings, bindings = self.settings, self.bindings
        runtime = None
        if not self.ctx.build_only:
            # TensorRT builds, deserializes and runs on the calling thread's current device.
            torch.cuda.set_device(self.ctx.device)
            self.stream = torch.cuda.Stream(self.ctx.device)
            saved_runtime_cache = None
            if settings.uses_runtime_cache:
                self.runtime_cache = SharedCacheFile(
                    self.ctx.engines_dir / "tensorrt" / "runtime",
                    str(bindings.VERSION),
                    gpu_identity(self.ctx.device),
                    settings.library,
                )
                saved_runtime_cache = self.runtime_cache.load() or b""
            runtime = bindings.RuntimeOptions(cuda_graph=settings.cuda_graph, runtime_cache=saved_runtime_cache)
        target = build_target(settings, self.ctx)
        prepared = prepare_engine(
            bindings,
            onnx_path,
            settings,
            self.ctx.precision,
            target,
            self.ctx.engines_dir,
            self.ctx.work_dir,
            runtime,
            has_gpu=self.ctx.is_cuda,
        )
        self.engine = prepared.engine
        files = [prepared.plan_path]
        metrics = {names.ENGINE_SIZE_MB: prepared.plan_bytes / 2**20}
        if prepared.network_layers is not None:
            metrics[names.NETWORK_LAYERS] = float(prepared.network_layers)
        if prepared.builder_s is not None:
            metrics[names.BUILDER_S] = prepared.builder_s
        tags = {
            "engine_cache": prepared.cache,
            "tensorrt_library": settings.library,
            "tensorrt_version": str(bindings.VERSION),
            "trt_typing": settings.typing,
            "engine_target": target.compute_capability,
        }
        if self.engine is not None:
            layer_info = self.ctx.work_dir / LAYER_INFO_NAME
            layer_info.write_text(_pretty_json(self.engine.layer_information()))
            files.append(layer_info)
            metrics[names.ENGINE_LAYERS] = float(self.engine.num_layers)
            tags["runtime_cache"] = self.engine.runtime_cache_status
        tags.update(_warning_tags(prepared.warnings))
        return BuildResult(engine_files=files, tags=tags, metrics=metrics)

    def step(self, host_input: torch.Tensor, mode: str) -> InferenceStep:
        assert self.engine is not None and self.stream is not None, "build() first (and not build-only)"
        return TensorRTStep(self.engine, host_input, mode, self.ctx, self.stream, self.settings.cuda_graph)

    def after_benchmark(self, step: InferenceStep) -> BuildResult:
        assert isinstance(step, TensorRTStep)
        result = BuildResult(tags={"cuda_graph": step.graph_status, "cuda_graph_mechanism": step.graph_mechanism})
        if self.settings.layer_profile:
            times = self.engine.profile_layers(step.handle, LAYER_PROFILE_ITERATIONS, step.stream.synchronize)
            path = self.ctx.work_dir / LAYER_PROFILE_NAME
            path.write_text(json.dumps(times.report(LAYER_PROFILE_ITERATIONS), indent=2))
            result.engine_files.append(path)
        if self.runtime_cache is not None:
            data = self.engine.runtime_cache_bytes()
            if data:
                self.runtime_cache.save(data, None, lambda ours, _theirs: ours)
        return result

    @classmethod
    def attribution_refusal(cls, settings: TensorRTSettings, ctx: JobContext) -> str | None:
        return None

    def attribute(self, step: InferenceStep, iterations: int) -> Attribution:
        """TensorRT's per-layer profiler over plain enqueues, each layer joined to the ONNX nodes it runs (the
        inspector's layer metadata at ``profiling_verbosity=detailed``, else the layer's name)."""
        assert isinstance(step, TensorRTStep) and self.onnx_path is not None
        begin = time.perf_counter()
        times = self.engine.profile_layers(step.handle, iterations, step.stream.synchronize)
        wall = (time.perf_counter() - begin) * 1000.0 / iterations  # each enqueue was synchronized
        per_inference = {name: total / iterations for name, total in times.total_ms.items()}
        rows = layer_rows(per_inference, self.engine.layer_information(), NodeIndex.from_onnx(self.onnx_path))
        method = "TensorRT IProfiler per layer, joined to ONNX nodes by layer metadata or name"
        return Attribution(rows, method, wall)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()
        if self.engine is not None:
            self.engine.release()
        self.engine = None
        self.stream = None
        if self.ctx.is_cuda:
            torch.cuda.empty_cache()


def _warning_tags(warnings: tuple[str, ...]) -> dict[str, str]:
    """The builder's warnings as tags (each one is also in the run's log, in full)."""
    if not warnings:
        return {}
    tags = {"tensorrt_build_warnings": " | ".join(w.strip() for w in warnings)[:WARNINGS_TAG_CHARS]}
    layernorm = [w for w in warnings if "layernorm" in w.lower().replace(" ", "")]
    if layernorm:
        tags["tensorrt_layernorm_warning"] = layernorm[0].strip()[:WARNINGS_TAG_CHARS]
    return tags


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
        # TensorRT-RTX replays its own CUDA graph inside execute_async_v3 (set on the execution context); standard
        # TensorRT's enqueue is captured here with torch.
        builtin = bool(engine.builtin_cuda_graph)
        self.graph: torch.cuda.CUDAGraph | None = self._capture() if cuda_graph and not builtin else None
        self.graph_status = "on" if self.graph is not None or builtin else ("fallback" if cuda_graph else "off")
        self.graph_mechanism = "library" if builtin else ("torch_capture" if self.graph is not None else "none")

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

    def context(self) -> AbstractContextManager[object]:
        return torch.cuda.stream(self.stream)  # the copies and the graph replay go to the step's stream

    def phases(self) -> Phases | None:
        return Phases(self._copy_in, self._compute, self._copy_out) if self.host_input is not None else None

    def _copy_in(self) -> None:
        assert self.host_input is not None
        self.input.copy_(self.host_input, non_blocking=True)

    def _compute(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.engine.enqueue(self.handle)

    def _copy_out(self) -> None:
        for host, device in zip(self.host_outputs, self.outputs, strict=True):
            host.copy_(device, non_blocking=True)

    def __call__(self) -> None:
        """Runs inside :meth:`context` (the step's stream current): launches only."""
        if self.host_input is None:
            self._compute()
        else:
            self._copy_in()
            self._compute()
            self._copy_out()

    def output(self) -> torch.Tensor:
        self.stream.synchronize()
        first = self.host_outputs[0] if self.host_outputs else self.outputs[0]
        return first.float().cpu()

    def run_on(self, data: torch.Tensor) -> torch.Tensor:
        with self.context():
            self.input.copy_(data)
            self._compute()
        self.stream.synchronize()
        return self.outputs[0].float().cpu()
