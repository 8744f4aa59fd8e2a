"""What each cached build product depends on: the key material of the content cache (:mod:`blockbench.build.cache`).

A change to any of it — the model config, the input, the versions of the tools, the source of the code that makes
the product — must miss the cache.
"""

from __future__ import annotations

from typing import Any

import torch

from blockbench.backends.base import JobContext
from blockbench.build import quantize
from blockbench.build.sources import sources_sha256
from blockbench.config.schema import RunConfig
from blockbench.measure.environment import package_version

# Sources a product depends on beyond its config, as globs under the package.
EXPORT_SOURCES = ("models/*.py", "build/export.py")
COMPLEXITY_SOURCES = ("models/*.py", "build/complexity.py")
QUANTIZE_SOURCES = ("build/quantize.py",)


def model_material(config: RunConfig) -> dict[str, Any]:
    return {
        "block": config.block.name,
        "norm": config.norm.name,
        "act": config.act.name,
        "channels": list(config.model.channels),
        "blocks_per_stage": config.model.blocks_per_stage,
        "num_classes": config.model.num_classes,
    }


def export_material(config: RunConfig, ctx: JobContext, onnx_dtype: torch.dtype) -> dict[str, Any]:
    """What an exported graph depends on: the model config, input shape and type, opset, exporter versions."""
    return {
        "kind": "onnx-export",
        **model_material(config),
        "seed": config.seed,
        "resolution": ctx.resolution,
        "batch": ctx.batch_size,
        "dtype": str(onnx_dtype),
        "opset": config.export.opset,
        "device_type": ctx.device.type,
        "versions": {name: package_version(name) for name in ("torch", "onnx", "onnxscript")},
        "sources_sha256": sources_sha256(EXPORT_SOURCES),
    }


def complexity_material(config: RunConfig, ctx: JobContext) -> dict[str, Any]:
    """What a parameter / MAC count depends on: the architecture, resolution, counter and its version."""
    return {
        "kind": "complexity",
        **model_material(config),
        "resolution": ctx.resolution,
        "counter": config.complexity.counter,
        "versions": {name: package_version(name) for name in ("torch", "thop", "ultralytics-thop", "ptflops")},
        "sources_sha256": sources_sha256(COMPLEXITY_SOURCES),
    }


def quantized_material(export: dict[str, Any], calibration_samples: int) -> dict[str, Any]:
    """What an INT8 QDQ graph depends on: its export, the recipe, the calibration inputs, the quantizer."""
    return {
        "kind": "onnx-int8",
        "export": export,
        "recipe": quantize.SETTINGS,
        "calibration_samples": calibration_samples,
        "versions": {"onnxruntime": package_version("onnxruntime")},
        "sources_sha256": sources_sha256(QUANTIZE_SOURCES),
    }
