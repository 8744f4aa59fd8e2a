"""Which TensorRT release has what: the version switch every release-dependent ``trt.`` name sits behind.

A release belongs to one library (:mod:`.library`): standard TensorRT (10.x, 11.x) or TensorRT-RTX (1.x), whose
version lines are unrelated, so a :class:`TrtVersion` carries its library and a :class:`Feature` states its span
per library. Convention (checked by ``tests/backends/tensorrt/test_tensorrt_api_surface.py`` against the real API
surfaces committed
under ``tests/data/tensorrt_api``): a ``trt.`` name, or a member of an object annotated ``trt.Class``, that is
missing from one of those surfaces -- or that a :data:`FEATURES` entry lists -- may only be used inside
``if supports(VERSION, "<feature>"):``. The checker then looks the name up only in the surfaces of releases that
have the feature (the ``else:`` branch: releases that lack it). Nothing else counts as a switch: no ``hasattr``,
no ``getattr`` with a string, no ``try/except AttributeError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from blockbench.backends.tensorrt.library import LIBRARIES
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.errors import ConfigError

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class TrtVersion:
    """A release of one library, from ``trt.__version__`` (``10.7.0.post1``, ``11.4.0.106``, ``1.7.1.116``)."""

    major: int
    minor: int
    patch: int = 0
    text: str = field(default="", compare=False)
    library: str = "tensorrt"

    @classmethod
    def parse(cls, text: str, library: str = "tensorrt") -> TrtVersion:
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"not a TensorRT version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0), text, library)

    @property
    def label(self) -> str:
        """``TensorRT 11.4.0.106`` / ``TensorRT-RTX 1.7.1.116``."""
        return f"{LIBRARIES[self.library].label} {self}"

    @property
    def release(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


Span = tuple[tuple[int, int], tuple[int, int] | None]  # since (inclusive), until (exclusive) or None


@dataclass(frozen=True)
class Feature:
    """A capability, reached through the ``api`` names, present per library in ``spans`` (absent from the others)."""

    setting: str
    api: tuple[str, ...]
    spans: dict[str, Span]
    advice: str = ""

    def span(self) -> str:
        parts = []
        for name, (since, until) in self.spans.items():
            label = LIBRARIES[name].label
            if until is not None and since <= LIBRARIES[name].oldest:
                parts.append(f"{label} < {until[0]}.{until[1]}")
            else:
                parts.append(f"{label} >= {since[0]}.{since[1]}")
        return " or ".join(parts)


_TRT = "tensorrt"
_RTX = "tensorrt_rtx"

# Release boundaries of standard TensorRT from the bindings wheels of every minor release 10.0-11.4
# (docs/tensorrt-api-notes.md); TensorRT-RTX's from its 1.7 module (tests/data/tensorrt_api).
FEATURES: dict[str, Feature] = {
    "weak_typing": Feature(
        setting="backend.typing=weak",
        api=("BuilderFlag.FP16", "BuilderFlag.BF16"),
        spans={_TRT: ((10, 0), (11, 0))},
        advice=(
            "TensorRT 11 and TensorRT-RTX build strongly typed networks only (BuilderFlag.FP16/BF16 are gone); use "
            "backend.typing=strong, which builds FP16/BF16 engines from the FP16/BF16 ONNX graph of "
            "precision=fp16/bf16"
        ),
    ),
    "tiling_optimization": Feature(
        setting="backend.tiling_optimization_level",
        api=("TilingOptimizationLevel", "IBuilderConfig.tiling_optimization_level"),
        spans={_TRT: ((10, 8), None), _RTX: ((1, 7), None)},
        advice="set backend.tiling_optimization_level=null or upgrade",
    ),
    "hardware_compatibility": Feature(
        setting="backend.hardware_compatibility_level",
        # TensorRT-RTX has the names but ignores them ("setHardwareCompatibilityLevel() is unsupported in
        # TensorRT-RTX"): its engines are portable across its targets by design (backend.compute_capabilities).
        api=(),
        spans={_TRT: ((10, 0), None)},
        advice="use backend.hardware_compatibility_level=none (TensorRT-RTX: choose backend.compute_capabilities)",
    ),
    "same_compute_capability": Feature(
        setting="backend.hardware_compatibility_level=same_compute_capability",
        api=("HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY",),
        spans={_TRT: ((10, 9), None), _RTX: ((1, 7), None)},
        advice="use backend.hardware_compatibility_level=none or ampere_plus, or upgrade",
    ),
    "compute_capabilities": Feature(
        setting="backend.compute_capabilities",
        api=("ComputeCapability", "IBuilderConfig.num_compute_capabilities", "IBuilderConfig.set_compute_capability"),
        spans={_RTX: ((1, 7), None)},
        advice=(
            "standard TensorRT builds for the GPU it runs on; set backend.compute_capabilities=[] or "
            "backend.library=tensorrt_rtx"
        ),
    ),
    "runtime_cache": Feature(
        setting="backend.runtime_cache=true",
        api=(
            "IRuntimeCache",
            "IRuntimeConfig.create_runtime_cache",
            "IRuntimeConfig.set_runtime_cache",
            "IRuntimeConfig.cuda_graph_strategy",
            "CudaGraphStrategy",
        ),
        spans={_RTX: ((1, 7), None)},
        advice="standard TensorRT compiles every kernel ahead of time; set backend.runtime_cache=false",
    ),
}


def supports(version: TrtVersion, feature: str) -> bool:
    """Whether ``version`` has ``feature``; the only version switch the API-surface check recognises."""
    span = FEATURES[feature].spans.get(version.library)
    if span is None:
        return False
    since, until = span
    return since <= version.release and (until is None or version.release < until)


def feature_error(version: TrtVersion, feature: str) -> ConfigError:
    """The error for a setting the chosen library or release lacks, naming both."""
    spec = FEATURES[feature]
    chosen = f"chosen: {version.label} (backend.library={version.library})"
    return ConfigError(f"{spec.setting} needs {spec.span()}; {chosen}. {spec.advice}")


def check_release(version: TrtVersion) -> None:
    """Refuse releases older than the API blockbench is written to."""
    lib = LIBRARIES[version.library]
    if version.release < lib.oldest:
        raise ConfigError(
            f"backend.library={lib.name} needs {lib.label} >= {lib.oldest[0]}.{lib.oldest[1]}; installed: "
            f"{version.label}. Upgrade with: {lib.install}"
        )


def check_settings(settings: TensorRTSettings, version: TrtVersion) -> None:
    """Every configured knob that ``version`` lacks is an error naming the library and release (first one found)."""
    wanted = {
        "weak_typing": settings.typing == "weak",
        "hardware_compatibility": settings.hardware_compatibility_level != "none",
        "tiling_optimization": settings.tiling_optimization_level is not None,
        "same_compute_capability": settings.hardware_compatibility_level == "same_compute_capability",
        "compute_capabilities": bool(settings.compute_capabilities),
        "runtime_cache": settings.runtime_cache is True,
    }
    for feature, used in wanted.items():
        if used and not supports(version, feature):
            raise feature_error(version, feature)
