"""Schema of ``conf/backend/tensorrt.yaml``: TensorRT's knobs under ``backend.*`` like every backend's.

No ``tensorrt`` import here, so composing a config stays light. One schema serves both libraries
(``backend.library=tensorrt|tensorrt_rtx``); a knob the chosen library or release lacks is refused by
:func:`blockbench.backends.tensorrt.versions.check_settings`, naming both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from blockbench.backends.settings import BackendSettings
from blockbench.backends.tensorrt.library import LIBRARIES
from blockbench.config import rules
from blockbench.config.rules import at_least, choice, refuse

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
    library: str = choice(LIBRARIES, "tensorrt")
    typing: str = choice(TYPINGS, "strong")
    workspace_gb: float | None = at_least(0, None, strict=True)  # null: TensorRT's default (the whole device)
    builder_optimization_level: int = 3
    avg_timing_iterations: int = at_least(1, 1)
    max_aux_streams: int | None = at_least(0, None)  # null: TensorRT's heuristic
    tiling_optimization_level: str | None = choice(TILING_OPTIMIZATION_LEVELS, None)
    hardware_compatibility_level: str = choice(HARDWARE_COMPATIBILITY_LEVELS, "none")
    profiling_verbosity: str = choice(PROFILING_VERBOSITIES, "detailed")
    timing_cache: bool = True
    compute_capabilities: list[str] = field(default_factory=list)
    engine_cache: bool = True
    runtime_cache: bool | None = None
    cuda_graph: bool = False
    layer_profile: bool = False
    log_level: str = choice(LOG_LEVELS, "warning")

    def check_rules(self, prefix: str) -> None:
        if self.builder_optimization_level not in OPTIMIZATION_LEVELS:
            rule = "it must be 0..5 (TensorRT's default is 3)"
            raise refuse(f"{prefix}builder_optimization_level", self.builder_optimization_level, rule)
        malformed = [c for c in self.compute_capabilities if not _CAPABILITY.match(str(c))]
        if malformed or len(set(self.compute_capabilities)) != len(self.compute_capabilities):
            rule = (
                "give distinct capabilities as major.minor strings, e.g. ['8.6','8.9'], or [] for the library's default"
            )
            raise refuse(f"{prefix}compute_capabilities", list(self.compute_capabilities), rule)

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


def validate_settings(settings: TensorRTSettings) -> None:
    """Every value rule of ``backend.*``, each error naming the key; needs no TensorRT."""
    rules.check(settings, "backend.")
