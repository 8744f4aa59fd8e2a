"""Schema of the TensorRT backend's settings (no ``tensorrt`` import: composing a config stays light).

The knobs live in one top-level node, ``trt`` (``trt.workspace_gb=4``), which ``conf/backend/tensorrt.yaml`` fills
only when ``backend=tensorrt`` is chosen. With any other backend ``trt`` is null, so a ``trt.*`` override is a
composition error, and so is a typo'd key or a wrong type. ``backend`` holds the name and a reference, ``trt: ${trt}``,
which is how :func:`blockbench.backends.parse_settings` hands the knobs to the backend; overriding through that
reference (``backend.trt.workspace_gb=4``) is refused too, so every knob has exactly one spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blockbench.backends.base import BackendSettings
from blockbench.errors import ConfigError

TYPINGS = ("strong", "weak")
PROFILING_VERBOSITIES = ("detailed", "layer_names_only", "none")
HARDWARE_COMPATIBILITY_LEVELS = ("none", "ampere_plus", "same_compute_capability")
TILING_OPTIMIZATION_LEVELS = ("none", "fast", "moderate", "full")
LOG_LEVELS = ("error", "warning", "info", "verbose")
OPTIMIZATION_LEVELS = range(6)


@dataclass
class TensorRTSettings:
    """The ``trt.*`` knobs; defaults and comments in ``conf/backend/tensorrt.yaml``."""

    typing: str = "strong"
    workspace_gb: float | None = None
    builder_optimization_level: int = 3
    avg_timing_iterations: int = 1
    max_aux_streams: int | None = None
    tiling_optimization_level: str | None = None
    hardware_compatibility_level: str = "none"
    profiling_verbosity: str = "detailed"
    timing_cache: bool = True
    engine_cache: bool = True
    cuda_graph: bool = False
    layer_profile: bool = False
    log_level: str = "warning"


@dataclass
class TensorRTBackendSettings(BackendSettings):
    """What ``parse_settings`` returns for ``backend=tensorrt``: the name and the resolved ``trt`` node."""

    name: str = "tensorrt"
    trt: TensorRTSettings = field(default_factory=TensorRTSettings)


# Stored as ``backend/tensorrt_schema``; conf/backend/tensorrt.yaml (package _global_) composes onto it, which types
# the top-level ``trt`` node while every other backend leaves ``trt`` null.
CONFIG_SCHEMA = {"trt": TensorRTSettings}

# Knobs that change the engine TensorRT builds: the engine cache key covers every one of them.
BUILD_FIELDS = (
    "typing",
    "workspace_gb",
    "builder_optimization_level",
    "avg_timing_iterations",
    "max_aux_streams",
    "tiling_optimization_level",
    "hardware_compatibility_level",
    "profiling_verbosity",
    "timing_cache",
)
# Knobs that only change how an engine is cached, run or observed.
RUN_FIELDS = ("engine_cache", "cuda_graph", "layer_profile", "log_level")


def _choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"trt.{key}={value!r} is not allowed; choose one of: {', '.join(choices)}")


def validate_settings(settings: TensorRTSettings) -> None:
    """Value rules the types cannot express, each error naming the ``trt.`` key; needs no TensorRT."""
    _choice("typing", settings.typing, TYPINGS)
    _choice("profiling_verbosity", settings.profiling_verbosity, PROFILING_VERBOSITIES)
    _choice("hardware_compatibility_level", settings.hardware_compatibility_level, HARDWARE_COMPATIBILITY_LEVELS)
    _choice("log_level", settings.log_level, LOG_LEVELS)
    if settings.tiling_optimization_level is not None:
        _choice("tiling_optimization_level", settings.tiling_optimization_level, TILING_OPTIMIZATION_LEVELS)
    if settings.builder_optimization_level not in OPTIMIZATION_LEVELS:
        raise ConfigError(
            f"trt.builder_optimization_level={settings.builder_optimization_level!r} is not allowed; "
            "it must be 0..5 (TensorRT's default is 3)"
        )
    if settings.workspace_gb is not None and not settings.workspace_gb > 0:
        raise ConfigError(
            f"trt.workspace_gb={settings.workspace_gb!r} is not allowed; it must be > 0, or null for TensorRT's "
            "default (the whole device memory)"
        )
    if settings.avg_timing_iterations < 1:
        raise ConfigError(
            f"trt.avg_timing_iterations={settings.avg_timing_iterations!r} is not allowed; it must be >= 1"
        )
    if settings.max_aux_streams is not None and settings.max_aux_streams < 0:
        raise ConfigError(
            f"trt.max_aux_streams={settings.max_aux_streams!r} is not allowed; it must be >= 0, or null for "
            "TensorRT's heuristic"
        )
