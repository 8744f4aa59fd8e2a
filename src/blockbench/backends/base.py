"""The one small interface every inference backend implements, and the job facts they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.backends.settings import BackendSettings

if TYPE_CHECKING:
    from blockbench.measure.attribution import Attribution


@dataclass(frozen=True)
class JobContext:
    """What a backend needs to know about the job, resolved and validated."""

    device: torch.device
    precision: str
    batch_size: int
    resolution: int
    work_dir: Path
    cache_dir: Path
    cpu_threads: int
    pinned_memory: bool = True
    build_only: bool = False  # build and log the engine, never run or time it (run.build_only, or automatic)
    seed: int = 0  # the run's seed: quantizers draw their calibration inputs from it
    calibration_samples: int = 32  # precision=int8: calibration inputs
    # Where engines and the caches that pick their kernels live (TensorRT's engines and timing cache, inductor's
    # caches and autotuning picks); None: under ``cache_dir``, shared by every run. A fresh trial gets an empty one.
    engine_cache_dir: Path | None = None

    @property
    def engines_dir(self) -> Path:
        return self.engine_cache_dir or self.cache_dir

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision].dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 3, self.resolution, self.resolution)


@dataclass
class BuildResult:
    """What building an engine produced: files to log as the engine artifact, tags and extra metrics."""

    engine_files: list[Path] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Phases:
    """An end-to-end inference as its three parts, issued in this order (each on the step's stream, or each
    synchronous): host->device copy of the input, the engine's compute, device->host copy of the output."""

    h2d: Callable[[], None]
    compute: Callable[[], None]
    d2h: Callable[[], None]

    def __call__(self) -> None:
        self.h2d()
        self.compute()
        self.d2h()


class InferenceStep(ABC):
    """One inference in a given mode, callable repeatedly by the harness.

    ``stream`` set: the harness times each call with CUDA events recorded on that stream (the step enqueues
    its work there). ``stream`` None: the call is synchronous (it waits for the device itself) and the harness
    times it with the host clock.
    """

    stream: torch.cuda.Stream | None = None

    def phases(self) -> Phases | None:
        """The call as copy-in, compute and copy-out, so the harness can time each; None where the step issues
        no copies of its own (compute mode, a CPU device, or a runtime that copies inside one opaque call)."""
        return None

    def context(self) -> AbstractContextManager[object]:
        """Entered once around the harness's whole loop (stream, no_grad, ...), so each timed call does no
        set-up work between the start event and the device work."""
        return nullcontext()

    @abstractmethod
    def __call__(self) -> None: ...

    @abstractmethod
    def output(self) -> torch.Tensor:
        """The last call's output as a CPU float32 tensor (for parity checks)."""

    def run_on(self, data: torch.Tensor) -> torch.Tensor:
        """The engine's output for another input of the job's shape, as a CPU float32 tensor (top-1 agreement after
        the timed loop; the step's input buffer then holds ``data``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot run on another input")


class Backend(ABC):
    """Builds an engine for one job and hands the harness an :class:`InferenceStep` per mode."""

    name: ClassVar[str]
    settings_class: ClassVar[type[BackendSettings]]
    needs_onnx: ClassVar[bool] = True

    def __init__(self, settings: Any, ctx: JobContext) -> None:
        self.settings = settings
        self.ctx = ctx

    @classmethod
    @abstractmethod
    def check(cls, settings: Any, ctx: JobContext) -> None:
        """Raise :class:`~blockbench.errors.ConfigError` if this job cannot run here; do no work."""

    @classmethod
    def build_only_reason(cls, settings: Any, ctx: JobContext) -> str | None:
        """Why this job can build its engine here but not run it (the job is then build-only), or None."""
        return None

    @classmethod
    def onnx_dtype(cls, settings: Any, ctx: JobContext) -> torch.dtype:
        """Element type of the exported graph; TensorRT's weak typing builds FP16 from an FP32 graph."""
        return ctx.dtype

    @abstractmethod
    def build(self, model: nn.Module, onnx_path: Path | None) -> BuildResult:
        """Make the engine from the run-dtype model and/or its ONNX export."""

    @abstractmethod
    def step(self, host_input: torch.Tensor, mode: str) -> InferenceStep:
        """An inference step for ``mode`` (``compute`` or ``end_to_end``) fed from ``host_input``."""

    @classmethod
    def attribution_refusal(cls, settings: Any, ctx: JobContext) -> str | None:
        """Why this engine's time cannot be attributed here (``benchmark.attribution=true`` is then refused before
        any work), or None."""
        return f"backend={cls.name} has no profiler hook"

    def attribute(self, step: InferenceStep, iterations: int) -> Attribution:
        """Profile ``iterations`` inferences of ``step`` after the timed loop (never during it) and join each
        kernel, node or layer to the network's modules (:mod:`blockbench.measure.attribution`)."""
        raise NotImplementedError(f"backend={self.name} has no profiler hook")

    def runtime_state(self) -> dict[str, str]:
        """The engine's own settings in effect as it is timed (threads, execution mode, compiler options), read
        from the live runtime rather than the config: recorded with the run's measured state."""
        return {}

    def after_benchmark(self, step: InferenceStep) -> BuildResult:
        """Work after the timed loop that must not perturb it (e.g. a per-layer profile); extra artifacts."""
        return BuildResult()

    @classmethod  # noqa: B027 - optional hook: most backends time nothing while building
    def forget_prebuild_timings(cls, cache_dir: Path, since: float) -> None:
        """Drop choices builders made by timing on a shared GPU since ``since`` (:mod:`blockbench.sweep.prebuild`)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends just drop references
        """Release engines, sessions and graphs so the next job in this process starts clean."""
