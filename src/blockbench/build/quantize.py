"""INT8: static post-training quantization of the exported FP32 graph into explicit QuantizeLinear/DequantizeLinear.

One quantized file serves every ONNX engine: ONNX Runtime runs it (QLinearConv / QGemm kernels where it can fuse
Q/DQ pairs) and TensorRT / TensorRT-RTX build it as an explicitly quantized network. ONNX Runtime's quantizer is
used (not ModelOpt: its ONNX extra pins onnxruntime-gpu and onnx versions this project cannot take, and its default
output casts the graph to FP16), set to what TensorRT accepts: signed 8-bit, symmetric (zero point 0) activations
and per-channel weights, biases left in FP32, and only convolutions and matrix products quantized -- LayerNorm's
chain, GELU's erf, adds and pools stay FP32 between them (TensorRT refuses quantized constants such as LN's epsilon).
Calibration: min/max over ``calibration_samples`` inputs drawn from the run's seed (random inputs, like the paper's
dummy inputs: a trained network would calibrate on real images).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from blockbench.errors import QuantizeError

log = logging.getLogger(__name__)

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
SETTINGS = {  # what the cache key records, so a change of recipe misses the cache
    "format": "QDQ",
    "weights": "int8 per-channel symmetric",
    "activations": "int8 per-tensor symmetric",
    "calibration": "minmax",
    "ops": list(QUANTIZED_OPS),
    "bias": "fp32",
}


def calibration_inputs(shape: tuple[int, ...], samples: int, seed: int) -> list[np.ndarray]:
    """``samples`` FP32 inputs of the job's shape from a generator seeded apart from the timed input's."""
    generator = torch.Generator().manual_seed(seed + 2)
    return [torch.randn(shape, generator=generator).numpy() for _ in range(samples)]


def quantize_onnx(source: Path, target: Path, inputs: list[np.ndarray], input_name: str = "input") -> None:
    """Write the statically quantized QDQ form of ``source`` to ``target``, calibrated on ``inputs``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter({input_name: x} for x in inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quiet = logging.getLogger()  # the quantizer suggests pre-processing through the root logger, every time
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(source),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=list(QUANTIZED_OPS),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
        )
    except Exception as exc:  # the quantizer raises many unrelated types; one stage failure for the user
        raise QuantizeError(f"INT8 quantization of {source.name} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        quiet.setLevel(level)
    log.info("quantize: %s -> %s (%d calibration inputs)", source.name, target.name, len(inputs))
