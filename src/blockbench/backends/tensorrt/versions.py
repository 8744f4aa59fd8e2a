"""Which TensorRT release has what: the version switch every release-dependent ``trt.`` name sits behind.

Convention (checked by ``tests/test_tensorrt_api_surface.py`` against the real API surfaces committed under
``tests/data/tensorrt_api``): a ``trt.`` name, or a member of an object annotated ``trt.Class``, that is missing
from one of those surfaces -- or that a :data:`FEATURES` entry lists -- may only be used inside
``if supports(VERSION, "<feature>"):``. The checker then looks the name up only in the surfaces of releases that
have the feature (the ``else:`` branch: releases that lack it). Nothing else counts as a switch: no ``hasattr``,
no ``getattr`` with a string, no ``try/except AttributeError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.errors import ConfigError

OLDEST_SUPPORTED = (10, 0)
NEWEST_CHECKED_MAJOR = 11
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class TrtVersion:
    """A TensorRT release, from ``trt.__version__`` (``10.7.0.post1``, ``11.4.0.106``: not always 4 numbers)."""

    major: int
    minor: int
    patch: int = 0
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> TrtVersion:
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"not a TensorRT version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0), text)

    @property
    def release(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Feature:
    """A capability present in releases ``since`` <= version < ``until``, reached through the ``api`` names."""

    setting: str
    api: tuple[str, ...]
    since: tuple[int, int] = OLDEST_SUPPORTED
    until: tuple[int, int] | None = None
    advice: str = ""

    def span(self) -> str:
        if self.until is None:
            return f"TensorRT >= {self.since[0]}.{self.since[1]}"
        return f"TensorRT < {self.until[0]}.{self.until[1]}"


# Release boundaries from the bindings wheels of every minor release 10.0-11.4 (docs/tensorrt-api-notes.md).
FEATURES: dict[str, Feature] = {
    "weak_typing": Feature(
        setting="trt.typing=weak",
        api=("BuilderFlag.FP16", "BuilderFlag.BF16"),
        until=(11, 0),
        advice=(
            "TensorRT 11 builds strongly typed networks only (BuilderFlag.FP16/BF16 are gone); use trt.typing=strong, "
            "which builds FP16/BF16 engines from the FP16/BF16 ONNX graph of precision=fp16/bf16"
        ),
    ),
    "tiling_optimization": Feature(
        setting="trt.tiling_optimization_level",
        api=("TilingOptimizationLevel", "IBuilderConfig.tiling_optimization_level"),
        since=(10, 8),
        advice="set trt.tiling_optimization_level=null or upgrade TensorRT",
    ),
    "same_compute_capability": Feature(
        setting="trt.hardware_compatibility_level=same_compute_capability",
        api=("HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY",),
        since=(10, 9),
        advice="use trt.hardware_compatibility_level=none or ampere_plus, or upgrade TensorRT",
    ),
}


def supports(version: TrtVersion, feature: str) -> bool:
    """Whether ``version`` has ``feature``; the only version switch the API-surface check recognises."""
    spec = FEATURES[feature]
    return spec.since <= version.release and (spec.until is None or version.release < spec.until)


def feature_error(version: TrtVersion, feature: str) -> ConfigError:
    """The error for a setting the installed release lacks, naming the release."""
    spec = FEATURES[feature]
    return ConfigError(f"{spec.setting} needs {spec.span()}; installed: TensorRT {version}. {spec.advice}")


def check_release(version: TrtVersion) -> None:
    """Refuse releases older than the named-tensor API blockbench is written to."""
    if version.release < OLDEST_SUPPORTED:
        raise ConfigError(
            f"backend=tensorrt needs TensorRT >= {OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]} (named-tensor API, "
            f'execute_async_v3); installed: TensorRT {version}. Upgrade with: pip install -e ".[tensorrt]"'
        )


def check_settings(settings: TensorRTSettings, version: TrtVersion) -> None:
    """Every configured knob that ``version`` lacks is an error naming the version (first one found)."""
    wanted = {
        "weak_typing": settings.typing == "weak",
        "tiling_optimization": settings.tiling_optimization_level is not None,
        "same_compute_capability": settings.hardware_compatibility_level == "same_compute_capability",
    }
    for feature, used in wanted.items():
        if used and not supports(version, feature):
            raise feature_error(version, feature)
