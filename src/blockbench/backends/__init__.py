"""Backend registry: ``backend.name`` -> implementation, imported lazily so a missing library fails late."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench.backends.base import Backend, BackendSettings, BuildResult, InferenceStep, JobContext
from blockbench.errors import ConfigError
from blockbench.preflight import unknown_keys

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSettings",
    "BuildResult",
    "InferenceStep",
    "JobContext",
    "backend_class",
    "parse_settings",
]

# name -> "module:Class"; each module imports its heavy library only when a job uses it.
BACKENDS: dict[str, str] = {
    "onnxruntime": "blockbench.backends.onnxruntime:OnnxRuntimeBackend",
    "torch": "blockbench.backends.torch:TorchBackend",
    "tensorrt": "blockbench.backends.tensorrt:TensorRTBackend",
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ConfigError(f"backend.name={name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def parse_settings(node: DictConfig) -> tuple[type[Backend], Any]:
    """Type-check ``cfg.backend`` against the chosen backend's schema and return (class, settings object)."""
    cls = backend_class(str(node.get("name")))
    unknown = unknown_keys(node, cls.settings_class, "backend.")
    if unknown:
        allowed = ", ".join(f.name for f in dataclasses.fields(cls.settings_class))
        raise ConfigError(f"{', '.join(unknown)}: no such setting of backend={cls.name}; its settings: {allowed}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls.settings_class), node)
        settings = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"backend ({cls.name}): {exc.msg if hasattr(exc, 'msg') else exc}".strip()) from exc
    return cls, settings
