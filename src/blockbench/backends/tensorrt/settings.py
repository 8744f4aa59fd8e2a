"""Schema of ``conf/backend/tensorrt.yaml``: TensorRT's knobs under ``backend.*`` like every backend's.

No ``tensorrt`` import here, so composing a config stays light. One schema serves both libraries
(``backend.library=tensorrt|tensorrt_rtx``); a knob the chosen library or release lacks is refused by
:func:`blockbench.backends.tensorrt.versions.check_settings`, naming both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from blockbench.backends.base import BackendSettings
from blockbench.backends.tensorrt.library import LIBRARIES
from blockbench.errors import ConfigError

TYPINGS = ("strong", "weak")
PROFILING_VERBOSITIES = ("detailed", "layer_names_only", "none")
HARDWARE_COMPATIBILITY_LEVELS = ("none", "ampere_plus", "same_compute_capability")
TILING_OPTIMIZATION_LEVELS = ("none", "fast", "moderate", "full")
LOG_LEVELS = ("error", "warning", "info", "verbose")
OPTIMIZATION_LEVELS = range(6)
_CAPABILITY = re.compile(r"^\d+\.\d+$")


@dataclass
class TensorRTSettings(BackendSettings):
    """``backend.*`` for ``backend=tensorrt``; defaults and comments in ``conf/backend/tensorrt.yaml``."""

    name: str = "tensorrt"
    library: str = "tensorrt"
    typing: str = "strong"
    workspace_gb: float | None = None
    builder_optimization_level: int = 3
    avg_timing_iterations: int = 1
    max_aux_streams: int | None = None
    tiling_optimization_level: str | None = None
    hardware_compatibility_level: str = "none"
    profiling_verbosity: str = "detailed"
    timing_cache: bool = True
    compute_capabilities: list[str] = field(default_factory=list)
    engine_cache: bool = True
    runtime_cache: bool | None = None
    cuda_graph: bool = False
    layer_profile: bool = False
    log_level: str = "warning"

    @property
    def uses_runtime_cache(self) -> bool:
        """null means: on where the library has one (TensorRT-RTX's JIT kernels), off elsewhere."""
        return self.library == "tensorrt_rtx" if self.runtime_cache is None else self.runtime_cache


# Knobs that change the engine TensorRT builds: the engine cache key covers every one of them.
BUILD_FIELDS = (
    "library",
    "typing",
    "workspace_gb",
    "builder_optimization_level",
    "avg_timing_iterations",
    "max_aux_streams",
    "tiling_optimization_level",
    "hardware_compatibility_level",
    "profiling_verbosity",
    "timing_cache",
    "compute_capabilities",
)
# Knobs that only change how an engine is cached, run or observed (and the backend's name).
RUN_FIELDS = ("name", "engine_cache", "runtime_cache", "cuda_graph", "layer_profile", "log_level")


def _choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"backend.{key}={value!r} is not allowed; choose one of: {', '.join(choices)}")


def validate_settings(settings: TensorRTSettings) -> None:
    """Value rules the types cannot express, each error naming the ``backend.`` key; needs no TensorRT."""
    _choice("library", settings.library, tuple(LIBRARIES))
    _choice("typing", settings.typing, TYPINGS)
    _choice("profiling_verbosity", settings.profiling_verbosity, PROFILING_VERBOSITIES)
    _choice("hardware_compatibility_level", settings.hardware_compatibility_level, HARDWARE_COMPATIBILITY_LEVELS)
    _choice("log_level", settings.log_level, LOG_LEVELS)
    if settings.tiling_optimization_level is not None:
        _choice("tiling_optimization_level", settings.tiling_optimization_level, TILING_OPTIMIZATION_LEVELS)
    if settings.builder_optimization_level not in OPTIMIZATION_LEVELS:
        raise ConfigError(
            f"backend.builder_optimization_level={settings.builder_optimization_level!r} is not allowed; "
            "it must be 0..5 (TensorRT's default is 3)"
        )
    if settings.workspace_gb is not None and not settings.workspace_gb > 0:
        raise ConfigError(
            f"backend.workspace_gb={settings.workspace_gb!r} is not allowed; it must be > 0, or null for TensorRT's "
            "default (the whole device memory)"
        )
    if settings.avg_timing_iterations < 1:
        raise ConfigError(
            f"backend.avg_timing_iterations={settings.avg_timing_iterations!r} is not allowed; it must be >= 1"
        )
    if settings.max_aux_streams is not None and settings.max_aux_streams < 0:
        raise ConfigError(
            f"backend.max_aux_streams={settings.max_aux_streams!r} is not allowed; it must be >= 0, or null for "
            "TensorRT's heuristic"
        )
    malformed = [c for c in settings.compute_capabilities if not _CAPABILITY.match(str(c))]
    if malformed or len(set(settings.compute_capabilities)) != len(settings.compute_capabilities):
        raise ConfigError(
            f"backend.compute_capabilities={list(settings.compute_capabilities)} is not allowed; give distinct "
            "capabilities as major.minor strings, e.g. ['8.6','8.9'], or [] for the library's default"
        )
