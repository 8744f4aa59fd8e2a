"""Backend registry: ``backend.name`` -> implementation, imported lazily so a missing library fails late."""

from __future__ import annotations

import importlib

from blockbench.backends.base import Backend
from blockbench.errors import ConfigError

# name -> "module:Class"; each module imports its heavy library only when a job uses it.
BACKENDS: dict[str, str] = {
    "onnxruntime": "blockbench.backends.onnxruntime.backend:OnnxRuntimeBackend",
    "torch": "blockbench.backends.torch.backend:TorchBackend",
    "tensorrt": "blockbench.backends.tensorrt.backend:TensorRTBackend",
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ConfigError(f"backend.name={name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
