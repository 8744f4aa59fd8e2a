"""ONNX Runtime backend: CPU execution provider, or the CUDA provider with I/O bound to device buffers."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.backends.base import Backend, BuildResult, InferenceStep, JobContext
from blockbench.backends.onnxruntime.settings import OnnxRuntimeSettings
from blockbench.errors import BackendUnavailableError, ConfigError
from blockbench.measure.attribution import Attribution, NodeIndex, merge

log = logging.getLogger(__name__)

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
# Precisions each provider runs natively; anything else is refused before work starts.
SUPPORTED_PRECISIONS = {CPU_EP: ("fp32", "int8"), CUDA_EP: ("fp32", "tf32", "fp16")}
# Why the CPU provider refuses bf16 (the refusal names it): Conv takes bfloat16 only from opset 22, and ONNX
# Runtime's CPU provider has no kernel for Conv(22) in bfloat16 (NOT_IMPLEMENTED at session creation).
REFUSAL_NOTES = {(CPU_EP, "bf16"): " (its CPU provider has no bfloat16 convolution kernel)"}
OPTIMIZED_MODEL_NAME = "model.ort.onnx"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend=onnxruntime needs ONNX Runtime ({exc}); install one build: pip install -e '.[cpu]', or "
            "pip install -e '.[gpu]' for the CUDA provider (not both: they share one package folder)"
        ) from exc
    return onnxruntime


def resolve_providers(settings: OnnxRuntimeSettings, ctx: JobContext) -> list[str]:
    """The provider list for this job: configured, or the natural one for the device; validated."""
    ort = _ort()
    providers = list(settings.providers) if settings.providers else ([CUDA_EP, CPU_EP] if ctx.is_cuda else [CPU_EP])
    known, available = ort.get_all_providers(), ort.get_available_providers()
    for provider in providers:
        if provider not in known:
            raise ConfigError(
                f"backend.providers contains {provider!r}, which is not an ONNX Runtime provider; "
                f"available here: {', '.join(available)}"
            )
        if provider not in available:
            hint = (
                " (the CUDA provider is in the GPU build: pip uninstall onnxruntime, then pip install -e '.[gpu]')"
                if provider == CUDA_EP
                else ""
            )
            raise ConfigError(
                f"backend.providers contains {provider!r}, which this onnxruntime "
                f"{ort.__version__} build lacks{hint}; available here: {', '.join(available)}"
            )
    if providers[0] not in SUPPORTED_PRECISIONS:
        raise ConfigError(
            f"backend.providers[0]={providers[0]!r} is not supported by blockbench; "
            f"choose one of: {', '.join(SUPPORTED_PRECISIONS)}"
        )
    if ctx.is_cuda != (providers[0] == CUDA_EP):
        raise ConfigError(
            f"backend.providers[0]={providers[0]!r} does not match hardware.device={ctx.device}; "
            f"use {CUDA_EP} for cuda devices and {CPU_EP} for cpu"
        )
    return providers


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    settings_class = OnnxRuntimeSettings

    def __init__(self, settings: OnnxRuntimeSettings, ctx: JobContext) -> None:
        super().__init__(settings, ctx)
        self.session: Any = None
        self.onnx_path: Path | None = None
        self.host_input: torch.Tensor | None = None
        # CUDA: the stream the provider runs on (its user_compute_stream), so the harness's CUDA events bracket
        # the provider's kernels; ONNX Runtime treats stream 0 as none, hence a stream of our own.
        self.stream: torch.cuda.Stream | None = None

    @classmethod
    def check(cls, settings: OnnxRuntimeSettings, ctx: JobContext) -> None:
        provider = resolve_providers(settings, ctx)[0]
        allowed = SUPPORTED_PRECISIONS[provider]
        if ctx.precision not in allowed:
            raise ConfigError(
                f"precision={ctx.precision} is not supported by backend=onnxruntime with {provider}"
                f"{REFUSAL_NOTES.get((provider, ctx.precision), '')}; choose one of: {', '.join(allowed)}"
            )

    def _session_options(self) -> Any:
        ort = _ort()
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "layout": getattr(
                ort.GraphOptimizationLevel, "ORT_ENABLE_LAYOUT", ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            ),
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.settings.graph_optimization_level]
        options.execution_mode = {
            "sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
            "parallel": ort.ExecutionMode.ORT_PARALLEL,
        }[self.settings.execution_mode]
        options.intra_op_num_threads = self.settings.intra_op_threads or self.ctx.cpu_threads
        options.inter_op_num_threads = self.settings.inter_op_threads
        options.optimized_model_filepath = str(self.ctx.work_dir / OPTIMIZED_MODEL_NAME)
        options.log_severity_level = 3
        return options

    def _provider_options(self, providers: list[str]) -> list[tuple[str, dict[str, str]]]:
        result = []
        for provider in providers:
            options: dict[str, str] = {}
            if provider == CUDA_EP:
                settings = self.settings
                options = {
                    "device_id": str(self.ctx.device.index or 0),
                    "use_tf32": "1" if self.ctx.precision == "tf32" else "0",
                    "cudnn_conv_algo_search": settings.cudnn_conv_algo_search.upper(),
                    "enable_cuda_graph": "1" if settings.cuda_graph else "0",
                    "prefer_nhwc": "1" if settings.prefer_nhwc else "0",
                    "cudnn_conv_use_max_workspace": "1" if settings.cudnn_conv_use_max_workspace else "0",
                }
                if self.stream is not None:
                    options["user_compute_stream"] = str(self.stream.cuda_stream)
            result.append((provider, options))
        return result

    def build(self, model: nn.Module, onnx_path: Path | None) -> BuildResult:
        ort = _ort()
        assert onnx_path is not None, "onnxruntime needs the ONNX export"
        providers = resolve_providers(self.settings, self.ctx)
        self.onnx_path = onnx_path
        if providers[0] == CUDA_EP:
            self.stream = torch.cuda.Stream(device=self.ctx.device)
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=self._session_options(), providers=self._provider_options(providers)
        )
        used = self.session.get_providers()
        if used[0] != providers[0]:
            raise BackendUnavailableError(
                f"onnxruntime {ort.__version__} fell back to {used[0]} instead of {providers[0]}: its CUDA provider "
                "could not load (it needs CUDA 13's cuBLAS, cuRAND and runtime and cuDNN 9, e.g. those of a CUDA 13 "
                "build of torch; ONNX Runtime's log above names the library)"
            )
        optimized = self.ctx.work_dir / OPTIMIZED_MODEL_NAME
        return BuildResult(
            engine_files=[optimized] if optimized.exists() else [],
            tags={"ort_providers": ",".join(used), "ort_version": ort.__version__},
        )

    def step(self, host_input: torch.Tensor, mode: str) -> InferenceStep:
        self.host_input = host_input
        if mode == "compute" and self.settings.io_binding:
            return _BoundStep(self.session, host_input, self.ctx, self.stream)
        return _HostStep(self.session, host_input, self.ctx)

    @classmethod
    def attribution_refusal(cls, settings: OnnxRuntimeSettings, ctx: JobContext) -> str | None:
        if resolve_providers(settings, ctx)[0] != CPU_EP:
            return "ONNX Runtime's CUDA provider profiles host-side kernel launches, not GPU time"
        return None

    def attribute(self, step: InferenceStep, iterations: int) -> Attribution:
        """A second session on the same graph with ONNX Runtime's profiler on: per-node kernel times, joined to
        the exported graph's module scopes by node (or rewritten node's output) name."""
        assert self.onnx_path is not None
        nodes, runs = self._profile(iterations)
        index = NodeIndex.from_onnx(self.onnx_path)
        rows = [
            index.row(e["name"].removesuffix("_kernel_time"), e["dur"] / 1000.0, op=e["args"]["op_name"]) for e in nodes
        ]
        wall = sum(e["dur"] for e in runs) / 1000.0 / len(runs) if runs else float("nan")
        return Attribution(merge(rows, iterations), "onnxruntime session profiling, joined by ONNX node names", wall)

    def after_benchmark(self, step: InferenceStep) -> BuildResult:
        """INT8: which kernels ONNX Runtime ran (QLinearConv where it fused a Q/DQ pair around a Conv, Conv where it
        runs the dequantized FP32 convolution), from one profiled inference."""
        if not PRECISIONS[self.ctx.precision].quantized:
            return BuildResult()
        nodes, _ = self._profile(1)
        counts = Counter(e["args"]["op_name"] for e in nodes)
        return BuildResult(tags={"ort_kernels": ", ".join(f"{op} {n}" for op, n in counts.most_common())})

    def _profile(self, iterations: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(node kernel events, model_run events) of ``iterations`` warm runs of a profiling session on the same
        graph and options; the first (cold) run is left out."""
        ort = _ort()
        assert self.onnx_path is not None and self.host_input is not None
        options = self._session_options()
        options.optimized_model_filepath = ""
        options.enable_profiling = True
        options.profile_file_prefix = str(self.ctx.work_dir / "ort_profile")
        session = ort.InferenceSession(str(self.onnx_path), sess_options=options, providers=[CPU_EP])
        feed = {session.get_inputs()[0].name: self.host_input.numpy()}
        for _ in range(iterations + 1):
            session.run(None, feed)
        trace = Path(session.end_profiling())
        events = json.loads(trace.read_text())
        trace.unlink()
        runs = sorted((e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"),
                      key=lambda e: e["ts"])[1:]  # fmt: skip
        warm_from = runs[0]["ts"] if runs else 0
        nodes = [
            e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= warm_from
        ]
        return nodes, runs

    def runtime_state(self) -> dict[str, str]:
        """The session's options as ONNX Runtime holds them, and the providers it runs with."""
        if self.session is None:
            return {}
        options = self.session.get_session_options()
        state = {
            "ort_intra_op_threads": str(options.intra_op_num_threads),
            "ort_inter_op_threads": str(options.inter_op_num_threads),
            "ort_execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
            "ort_graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
            "ort_providers": ",".join(self.session.get_providers()),
        }
        for provider, values in self.session.get_provider_options().items():
            for key in (
                "cudnn_conv_algo_search",
                "use_tf32",
                "prefer_nhwc",
                "enable_cuda_graph",
                "cudnn_conv_use_max_workspace",
            ):
                if key in values:
                    state[f"ort_{provider}_{key}"] = str(values[key])
        return state

    def close(self) -> None:
        self.session = None


class _HostStep(InferenceStep):
    """``session.run`` on host arrays: ORT copies in and out itself (end_to_end, or no I/O binding)."""

    def __init__(self, session: Any, host_input: torch.Tensor, ctx: JobContext) -> None:
        self.session = session
        self.feed = {session.get_inputs()[0].name: host_input.numpy()}
        self.result: np.ndarray | None = None

    def __call__(self) -> None:
        self.result = self.session.run(None, self.feed)[0]

    def output(self) -> torch.Tensor:
        assert self.result is not None
        return torch.from_numpy(self.result).float()

    def run_on(self, data: torch.Tensor) -> torch.Tensor:
        name = next(iter(self.feed))
        return torch.from_numpy(self.session.run(None, {name: data.numpy()})[0]).float()


class _BoundStep(InferenceStep):
    """I/O bound once to pre-allocated buffers. CUDA: device buffers, and each run is enqueued on ``stream`` (the
    provider's compute stream) without ONNX Runtime's end-of-run synchronization, so the harness times it between
    CUDA events on that stream like the torch backend's steps; CPU: a synchronous run timed by the host clock."""

    def __init__(
        self, session: Any, host_input: torch.Tensor, ctx: JobContext, stream: torch.cuda.Stream | None = None
    ) -> None:
        self.session = session
        self.ctx = ctx
        self.stream = stream
        self.run_options = _ort().RunOptions()
        if stream is not None:
            self.run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        output_meta = session.get_outputs()[0]
        self.input = host_input.to(ctx.device).contiguous()
        out_shape = [ctx.batch_size if not isinstance(d, int) else d for d in output_meta.shape]
        self.output_buffer = torch.empty(out_shape, dtype=host_input.dtype, device=ctx.device)
        if ctx.is_cuda:
            torch.cuda.synchronize(ctx.device)  # the buffers are written on torch's stream, read on the provider's
        self.binding = session.io_binding()
        device_type = "cuda" if ctx.is_cuda else "cpu"
        device_id = ctx.device.index or 0
        element_type = self.input.numpy().dtype.type if not ctx.is_cuda else _numpy_type(host_input.dtype)
        self.binding.bind_input(
            session.get_inputs()[0].name,
            device_type,
            device_id,
            element_type,
            list(self.input.shape),
            self.input.data_ptr(),
        )
        self.binding.bind_output(
            output_meta.name, device_type, device_id, element_type, out_shape, self.output_buffer.data_ptr()
        )

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding, self.run_options)

    def output(self) -> torch.Tensor:
        if self.stream is not None:
            self.stream.synchronize()
        return self.output_buffer.float().cpu()

    def run_on(self, data: torch.Tensor) -> torch.Tensor:
        if self.stream is not None:
            self.stream.synchronize()
            with torch.cuda.stream(self.stream):
                self.input.copy_(data)
        else:
            self.input.copy_(data)
        self()
        return self.output()


def _numpy_type(dtype: torch.dtype) -> type:
    return {torch.float32: np.float32, torch.float16: np.float16}[dtype]
