"""The precisions a run can ask for, each one record that every module reads (config, backends, parity, report).

Adding a precision is one entry here plus its implementation in the backends that support it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    name: str  # the config value (``precision=fp16``)
    label: str  # how tables and figures print it
    dtype: torch.dtype  # the type inputs, activations and the exported graph's tensors have
    weight_bytes: float  # bytes per stored weight (roofline traffic, disk estimates)
    tolerance: float  # largest ||engine - PyTorch FP32|| / ||PyTorch FP32|| that passes parity
    tf32: bool = False  # FP32 storage with TF32 tensor-core matmuls and convolutions
    quantized: bool = False  # weights and activations quantized to 8 bits (static, calibrated) inside the engine


# Tolerances: FP32 differs from PyTorch FP32 by summation order only; TF32 keeps 10 mantissa bits in products; FP16
# rounds every activation to 11 bits; BF16 to 8 bits; INT8 to 8 bits per tensor (per channel for weights) after
# calibration, compounded over 30+ layers like BF16.
PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", "FP32", torch.float32, 4, 1e-3),
        Precision("tf32", "TF32", torch.float32, 4, 2e-2, tf32=True),
        Precision("fp16", "FP16", torch.float16, 2, 5e-2),
        Precision("bf16", "BF16", torch.bfloat16, 2, 1e-1),
        Precision("int8", "INT8", torch.float32, 1, 1e-1, quantized=True),
    )
}
NAMES = tuple(PRECISIONS)  # in report order: widest first
TOLERANCE = {p.name: p.tolerance for p in PRECISIONS.values()}  # the parity check's view (tests may tighten it)
