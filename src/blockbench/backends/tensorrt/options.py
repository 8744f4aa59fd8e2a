"""Settings + precision -> exactly what the builder is told (pure, so the mapping is unit-tested without a GPU), and
the other plain data that crosses the bindings' boundary: what a build returns, how an engine is deserialized."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.errors import ConfigError

# Precisions whose engines weak typing builds from an FP32 graph plus a BuilderFlag (TensorRT 10.x).
REDUCED_PRECISIONS = ("fp16", "bf16")
AMPERE = (8, 0)


@dataclass(frozen=True)
class BuildOptions:
    """The builder calls one job makes; ``bindings.build_plan`` applies them one to one."""

    strongly_typed: bool  # 10.x: STRONGLY_TYPED network flag; 11.x networks are always strongly typed
    weak_precision: str | None  # "fp16" / "bf16": BuilderFlag set on a weakly typed 10.x network
    tf32: bool  # BuilderFlag.TF32 (TensorRT's default is on); cleared for strict FP32
    workspace_bytes: int | None
    optimization_level: int
    avg_timing_iterations: int
    max_aux_streams: int | None
    tiling_optimization_level: str | None
    hardware_compatibility_level: str
    profiling_verbosity: str
    timing_cache: bool
    compute_capabilities: tuple[str, ...]  # TensorRT-RTX build targets ("8.6", ...); empty: the library's default

    @classmethod
    def resolve(cls, settings: TensorRTSettings, precision: str) -> BuildOptions:
        weak = settings.typing == "weak"
        return cls(
            strongly_typed=not weak,
            weak_precision=precision if weak and precision in REDUCED_PRECISIONS else None,
            tf32=precision not in ("fp32", "int8"),  # int8: what stays in FP32 between Q/DQ pairs stays strict
            workspace_bytes=None if settings.workspace_gb is None else int(settings.workspace_gb * 2**30),
            optimization_level=settings.builder_optimization_level,
            avg_timing_iterations=settings.avg_timing_iterations,
            max_aux_streams=settings.max_aux_streams,
            tiling_optimization_level=settings.tiling_optimization_level,
            hardware_compatibility_level=settings.hardware_compatibility_level,
            profiling_verbosity=settings.profiling_verbosity,
            timing_cache=settings.timing_cache,
            compute_capabilities=tuple(settings.compute_capabilities),
        )


def onnx_dtype(settings: TensorRTSettings, run_dtype: torch.dtype) -> torch.dtype:
    """Weak typing builds reduced precision from an FP32 graph; strong typing takes the run's type from the graph."""
    return torch.float32 if settings.typing == "weak" else run_dtype


def check_device(
    settings: TensorRTSettings,
    precision: str,
    capability: tuple[int, int],
    gpu_name: str,
    runnable: tuple[str, ...] | None,
    library_label: str,
) -> None:
    """What this GPU cannot do, refused before any work.

    ``runnable``: the compute capabilities the library's runtime runs on (TensorRT-RTX lists them), or None when
    the library runs on any GPU it supports at all (standard TensorRT).
    """
    cc = f"{capability[0]}.{capability[1]}"
    if runnable is not None and cc not in runnable:
        raise ConfigError(
            f"backend.library={settings.library} cannot run on this GPU: {gpu_name} has compute capability {cc}, "
            f"and {library_label} runs on {', '.join(runnable)}. Use backend.library=tensorrt (standard TensorRT), "
            "or run.build_only=true to build and log the engine without timing it"
        )
    found = f"{gpu_name} is sm_{capability[0]}{capability[1]}"
    if precision == "bf16" and capability < AMPERE:
        raise ConfigError(f"precision=bf16 with backend=tensorrt needs an Ampere or newer GPU (sm_80+); {found}")
    if settings.hardware_compatibility_level == "ampere_plus" and capability < AMPERE:
        raise ConfigError(f"backend.hardware_compatibility_level=ampere_plus needs an Ampere or newer GPU; {found}")


@dataclass(frozen=True)
class BuiltPlan:
    """What one build produced: the serialized engine and what the builder said about it."""

    plan: bytes
    timing_cache: bytes | None  # the updated timing cache, when one was used
    network_layers: int  # layers of the parsed network, before TensorRT fuses them
    warnings: tuple[str, ...]  # the builder's warnings (e.g. TensorRT-RTX on FP16 LayerNorm overflow)


@dataclass(frozen=True)
class RuntimeOptions:
    """How an execution context is made: TensorRT-RTX's built-in CUDA graph and its runtime cache."""

    cuda_graph: bool = False  # TensorRT-RTX: WHOLE_GRAPH_CAPTURE (standard TensorRT: the step captures it)
    runtime_cache: bytes | None = None  # TensorRT-RTX: saved cache (b"" = start empty); None = no runtime cache
