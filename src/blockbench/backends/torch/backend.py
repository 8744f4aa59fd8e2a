"""PyTorch backend: eager, eager replayed in a CUDA graph, or torch.compile (optionally graph-replayed)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path

import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.backends.base import Backend, BuildResult, InferenceStep, JobContext, Phases
from blockbench.backends.torch.profile import compiled_rows, eager_rows
from blockbench.backends.torch.quantize import fp32_modules, quantize_pt2e
from blockbench.backends.torch.settings import (
    SELF_GRAPHED_COMPILE_MODES,
    TorchSettings,
)
from blockbench.build.quantize import calibration_inputs
from blockbench.errors import ConfigError
from blockbench.measure.attribution import Attribution

log = logging.getLogger(__name__)

CPU_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
GRAPH_WARMUP_ITERS = 3
INDUCTOR_CACHE = "inductor"  # inside the project cache dir


class TorchBackend(Backend):
    name = "torch"
    settings_class = TorchSettings
    needs_onnx = False

    def __init__(self, settings: TorchSettings, ctx: JobContext) -> None:
        super().__init__(settings, ctx)
        self.module: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.model: nn.Module | None = None  # the eager network (profiled for eager and CUDA-graph attribution)
        self.frozen_before: bool | None = None  # inductor's global freezing before an int8 build set it
        self.stream = torch.cuda.Stream(ctx.device) if ctx.is_cuda else None
        self.capture_failed = False
        # inductor's cache counters, read only where it compiles (importing dynamo costs seconds in a fresh worker)
        self.cache_counts_before = _fx_graph_cache_counts() if settings.mode in ("compile", "aoti") else (0, 0)

    @classmethod
    def check(cls, settings: TorchSettings, ctx: JobContext) -> None:
        if settings.mode == "cuda_graph" and not ctx.is_cuda:
            raise ConfigError("backend.mode=cuda_graph needs a CUDA device (hardware.device=cuda); this job is on cpu")
        if PRECISIONS[ctx.precision].quantized and ctx.is_cuda:
            raise ConfigError(
                f"precision={ctx.precision} with backend=torch runs on CPUs only: inductor lowers PT2E int8 to oneDNN "
                "CPU kernels and has no int8 convolution path on CUDA; on a GPU use backend=tensorrt"
            )
        if PRECISIONS[ctx.precision].quantized and settings.mode != "compile":
            raise ConfigError(
                f"precision={ctx.precision} with backend=torch needs backend.mode=compile (PT2E int8 lowered by "
                f"inductor); backend.mode={settings.mode} would run the quantized graph as FP32 reference operators"
            )
        if not ctx.is_cuda and ctx.precision not in CPU_PRECISIONS:
            raise ConfigError(
                f"precision={ctx.precision} needs a CUDA device with backend=torch; on cpu choose one of: "
                f"{', '.join(CPU_PRECISIONS)}"
            )

    @property
    def graphed(self) -> bool:
        """Whether the harness replays a CUDA graph we captured (not inductor's own graphs)."""
        if self.settings.mode == "cuda_graph":
            return True
        if self.settings.mode == "aoti":
            return self.ctx.is_cuda and self.settings.compile_cuda_graph
        return (
            self.settings.mode == "compile"
            and self.ctx.is_cuda
            and self.settings.compile_cuda_graph
            and self.settings.compile_mode not in SELF_GRAPHED_COMPILE_MODES
        )

    def build(self, model: nn.Module, onnx_path: Path | None) -> BuildResult:
        memory_format = torch.channels_last if self.settings.channels_last else torch.contiguous_format
        model = model.to(device=self.ctx.device, memory_format=memory_format)
        self.model = model
        # Off, cuDNN picks kernels by heuristic: the FP16 depthwise 7x7 at 64x64 then runs 5-7x slower than TF32.
        torch.backends.cudnn.benchmark = self.settings.cudnn_benchmark
        engine_files: list[Path] = []
        if self.settings.mode in ("compile", "aoti"):
            # Inductor's FX-graph and kernel caches live in the project cache, shared by every job and sweep. Set,
            # not defaulted: inductor writes its default (/tmp) into the variable the first time anything in the
            # process asks for it (meta-device ops do), and prebuild workers and timed jobs must share one place.
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.ctx.engines_dir / INDUCTOR_CACHE)
        tags: dict[str, str] = {}
        if self.settings.mode == "compile":
            freezing = self.settings.freezing
            if PRECISIONS[self.ctx.precision].quantized:
                tags["int8_fp32_modules"] = ",".join(fp32_modules(model))
                model = self._quantized(model, memory_format)
                # Freezing folds the quantize/dequantize pairs into int8 kernels. It must be inductor's global
                # setting here (the options= form leaves oneDNN's weight prepacking to tracing, which fails);
                # close() restores it for the next job.
                self.frozen_before = torch._inductor.config.freezing
                torch._inductor.config.freezing = freezing = True
            log.info("build: torch.compile(mode=%s, freezing=%s)", self.settings.compile_mode, freezing)
            # A mode is a preset of inductor options; spelled out so freezing can join it (mode= and options= exclude).
            options = torch._inductor.list_mode_options(self.settings.compile_mode) | {"freezing": freezing}
            self.module = torch.compile(model, options=options, fullgraph=True)
        elif self.settings.mode == "aoti":
            package = self.ctx.work_dir / "model.pt2"
            self.module = _aoti_package(model, self.ctx, memory_format, package, self.settings.freezing)
            engine_files.append(package)
        else:
            self.module = model
        tags |= {"torch_mode": self.settings.mode, "cuda_graph": str(self.graphed).lower()}
        return BuildResult(engine_files=engine_files, tags=tags)

    def _quantized(self, model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
        """PT2E INT8 of ``model``, calibrated on inputs drawn from the run's seed (:mod:`.quantize`)."""
        ctx = self.ctx
        example = torch.randn(ctx.input_shape).contiguous(memory_format=memory_format)
        inputs = [torch.from_numpy(x) for x in calibration_inputs(ctx.input_shape, ctx.calibration_samples, ctx.seed)]
        log.info("build: PT2E INT8 quantization, %d calibration inputs", len(inputs))
        return quantize_pt2e(model, example, inputs)

    def step(self, host_input: torch.Tensor, mode: str) -> InferenceStep:
        assert self.module is not None, "build() first"
        memory_format = torch.channels_last if self.settings.channels_last else torch.contiguous_format
        return _TorchStep(self, host_input, mode, memory_format)

    @classmethod
    def attribution_refusal(cls, settings: TorchSettings, ctx: JobContext) -> str | None:
        if settings.mode in ("compile", "aoti") and not ctx.is_cuda:
            return "inductor's CPU kernels run inside one compiled call, invisible to the profiler"
        if settings.mode == "compile" and settings.compile_mode in SELF_GRAPHED_COMPILE_MODES:
            return f"compile_mode={settings.compile_mode} replays inductor's own CUDA graphs, opaque to the profiler"
        return None

    def attribute(self, step: InferenceStep, iterations: int) -> Attribution:
        """Eager and CUDA graph: the eager forward's kernels (the graph replays exactly those) by module range;
        compiled: inductor's kernels, launched un-graphed, by the operators their names list."""
        assert isinstance(step, _TorchStep) and self.model is not None and self.module is not None
        module, model, data = self.module, self.model, step.input
        with step.context():
            if self.settings.mode in ("compile", "aoti"):
                rows, wall = compiled_rows(lambda: module(data), iterations, self.ctx.device)
                method = "torch.profiler: inductor's kernels by the aten ops their names list (no module scopes)"
            else:
                rows, wall = eager_rows(model, lambda: model(data), iterations, self.ctx.device)
                method = "torch.profiler with a range per module" + (
                    " (the eager kernels the CUDA graph replays)" if self.graphed else ""
                )
        return Attribution(rows, method, wall)

    def after_benchmark(self, step: InferenceStep) -> BuildResult:
        tags = {"cuda_graph": "false (capture failed)"} if self.capture_failed else {}
        if self.settings.mode in ("compile", "aoti"):
            (hits_now, misses_now), (hits_before, misses_before) = _fx_graph_cache_counts(), self.cache_counts_before
            hits, misses = hits_now - hits_before, misses_now - misses_before
            tags["compile_cache"] = (
                "hit" if hits and not misses else "miss" if misses and not hits else f"{hits} hit, {misses} miss"
            )
        return BuildResult(tags=tags)

    @classmethod
    def forget_prebuild_timings(cls, cache_dir: Path, since: float) -> None:
        """Delete inductor's runtime-autotuning picks (``*.best_config`` beside each kernel) written since ``since``.

        Prebuild workers share the GPU, so their kernel timings are noisy; the timed job re-tunes alone.
        """
        removed = 0
        for path in (cache_dir / INDUCTOR_CACHE).rglob("*.best_config"):
            with suppress(FileNotFoundError):
                if path.stat().st_mtime >= since:
                    path.unlink()
                    removed += 1
        log.info("prebuild: dropped %d kernel autotuning picks made on the shared GPU", removed)

    def runtime_state(self) -> dict[str, str]:
        """The mode, and for compiled modes the inductor options that pick and tune kernels."""
        state = {"torch_mode": self.settings.mode}
        if self.settings.mode in ("compile", "aoti"):
            inductor = torch._inductor.config
            tuning = ("max_autotune", "max_autotune_gemm", "coordinate_descent_tuning", "freezing", "compile_threads")
            for key in tuning:
                state[f"inductor_{key}"] = str(getattr(inductor, key, None))
            state["inductor_triton_cudagraphs"] = str(inductor.triton.cudagraphs)
            state["inductor_fx_graph_cache"] = str(inductor.fx_graph_cache)
        return state

    def close(self) -> None:
        self.module = None
        self.model = None
        if self.frozen_before is not None:
            torch._inductor.config.freezing = self.frozen_before
            self.frozen_before = None
        torch.backends.cudnn.benchmark = False
        if self.ctx.is_cuda:
            torch.cuda.synchronize(self.ctx.device)
            torch.cuda.empty_cache()
        if self.settings.mode in ("compile", "aoti"):
            # Only a compiled mode has dynamo state to clear; on a GPU, reset() imports inductor (seconds in a
            # fresh worker process that never needed it).
            torch._dynamo.reset()


def _fx_graph_cache_counts() -> tuple[int, int]:
    """Inductor's process-wide FX-graph cache (hits, misses + bypasses) so far; a job reports its own delta."""
    from torch._dynamo.utils import counters

    inductor = counters["inductor"]
    return inductor["fxgraph_cache_hit"], inductor["fxgraph_cache_miss"] + inductor["fxgraph_cache_bypass"]


def _aoti_package(
    model: nn.Module, ctx: JobContext, memory_format: torch.memory_format, package: Path, freezing: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Export, AOT-compile into a ``.pt2`` package (the torch world's engine file) and load it back."""
    example = torch.randn(ctx.input_shape, device=ctx.device, dtype=ctx.dtype).contiguous(memory_format=memory_format)
    log.info("build: AOTInductor package %s", package.name)
    with torch.no_grad():
        program = torch.export.export(model, (example,))
        path = torch._inductor.aoti_compile_and_package(
            program, package_path=str(package), inductor_configs={"freezing": freezing}
        )
    runner = torch._inductor.aoti_load_package(path)
    return lambda x: runner(x)


class _TorchStep(InferenceStep):
    """Static input/output buffers; end_to_end adds the host->device and device->host copies on the stream."""

    def __init__(self, backend: TorchBackend, host_input: torch.Tensor, mode: str, fmt: torch.memory_format) -> None:
        self.module = backend.module
        self.stream = backend.stream
        self.end_to_end = mode == "end_to_end" and backend.ctx.is_cuda
        self.host_input = host_input
        self.input = host_input.to(backend.ctx.device).contiguous(memory_format=fmt)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.backend = backend
        with torch.no_grad():
            if backend.graphed:
                self.result = self._capture()
            else:
                self.result = self._forward()
        self.host_output = (
            torch.empty(self.result.shape, dtype=self.result.dtype, pin_memory=backend.ctx.pinned_memory)
            if self.end_to_end
            else None
        )

    def _forward(self) -> torch.Tensor:
        assert self.module is not None
        if self.stream is None:
            return self.module(self.input)
        with torch.cuda.stream(self.stream):
            return self.module(self.input)

    def _capture(self) -> torch.Tensor:
        """Record one forward into a CUDA graph; if capture fails, warn and run un-graphed."""
        assert self.stream is not None
        for _ in range(GRAPH_WARMUP_ITERS):  # allocator, cuDNN and autotuning settle before capture
            self._forward()
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.stream):
                result = self.module(self.input)  # type: ignore[misc]
        except RuntimeError as exc:
            log.warning("build: CUDA graph capture failed (%s); timing un-graphed launches instead", exc)
            torch.cuda.synchronize()
            self.backend.capture_failed = True
            return self._forward()
        self.graph = graph
        return result

    def context(self) -> AbstractContextManager[object]:
        stack = ExitStack()
        stack.enter_context(torch.no_grad())
        if self.stream is not None:
            stack.enter_context(torch.cuda.stream(self.stream))
        return stack

    def phases(self) -> Phases | None:
        return Phases(self._copy_in, self._compute, self._copy_out) if self.end_to_end else None

    def _copy_in(self) -> None:
        self.input.copy_(self.host_input, non_blocking=True)

    def _compute(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.result = self.module(self.input)  # type: ignore[misc]

    def _copy_out(self) -> None:
        assert self.host_output is not None
        self.host_output.copy_(self.result, non_blocking=True)

    def __call__(self) -> None:
        """Runs inside :meth:`context` (no_grad, the step's stream current): launches only."""
        if self.end_to_end:
            self._copy_in()
            self._compute()
            self._copy_out()
        else:
            self._compute()

    def output(self) -> torch.Tensor:
        if self.stream is not None:
            self.stream.synchronize()
        return self.result.float().cpu()

    def run_on(self, data: torch.Tensor) -> torch.Tensor:
        with self.context():
            self.input.copy_(data)
            self._compute()
        return self.output()
