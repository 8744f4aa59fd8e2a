"""Reference data: the paper's Tables 1–3, transcribed by hand from ``shared/paper.md``.

Park, *Comparative Analysis of TensorRT Inference Speeds Across Various Neural Network Block Architectures*:
TensorRT 8.5.3.1 in C++, NVIDIA GeForce RTX 3090 Ti, CUDA 11.8, cuDNN 8.9.7, batch 1, mean of 3 measurements.
These are the paper's numbers, not ours: the report only ever shows them in columns and rows labelled "paper".
Its "FP32" column is TensorRT's default FP32 build, which lets convolutions and matrix products use TF32, so it
is compared with our ``tf32`` precision when such runs exist (``fp32`` otherwise).
"""

from __future__ import annotations

from typing import NamedTuple

PAPER_SOURCE = "Park, Tables 1–3 (TensorRT 8.5.3.1, RTX 3090 Ti, CUDA 11.8, batch 1)"
PAPER_DEVICE = "NVIDIA GeForce RTX 3090 Ti (paper)"
PAPER_PRECISIONS = ("fp32", "fp16")


class PaperRow(NamedTuple):
    """One row of the paper's tables: latencies in ms, params in millions, MACs in billions (ptflops)."""

    block: str
    resolution: int
    norm: str
    act: str
    params_m: float
    macs_g: float
    fp32_ms: float
    fp16_ms: float


# fmt: off
PAPER_ROWS: tuple[PaperRow, ...] = (
    # Table 1: 64 x 64
    PaperRow("vgg", 64, "bn", "relu", 94.05, 1.14, 2.512, 0.881),
    PaperRow("resnet", 64, "bn", "relu", 94.75, 1.15, 2.547, 0.904),
    PaperRow("mobilenet", 64, "bn", "relu", 10.62, 0.14, 1.123, 0.723),
    PaperRow("convnext", 64, "bn", "relu", 83.70, 1.04, 2.179, 2.125),
    PaperRow("vgg", 64, "ln", "relu", 94.05, 1.14, 3.319, 2.375),
    PaperRow("resnet", 64, "ln", "relu", 94.75, 1.15, 3.355, 2.357),
    PaperRow("mobilenet", 64, "ln", "relu", 10.62, 0.14, 2.178, 2.290),
    PaperRow("convnext", 64, "ln", "relu", 83.70, 1.04, 3.390, 3.323),
    PaperRow("vgg", 64, "bn", "gelu", 94.05, 1.14, 2.583, 0.902),
    PaperRow("resnet", 64, "bn", "gelu", 94.75, 1.15, 2.660, 0.950),
    PaperRow("mobilenet", 64, "bn", "gelu", 10.62, 0.14, 1.136, 0.756),
    PaperRow("convnext", 64, "bn", "gelu", 83.70, 1.04, 2.322, 2.136),
    PaperRow("vgg", 64, "ln", "gelu", 94.05, 1.14, 3.208, 2.326),
    PaperRow("resnet", 64, "ln", "gelu", 94.75, 1.15, 3.509, 2.305),
    PaperRow("mobilenet", 64, "ln", "gelu", 10.62, 0.14, 2.231, 2.266),
    PaperRow("convnext", 64, "ln", "gelu", 83.70, 1.04, 3.443, 3.398),
    # Table 2: 256 x 256
    PaperRow("vgg", 256, "bn", "relu", 94.05, 18.31, 2.844, 1.091),
    PaperRow("resnet", 256, "bn", "relu", 94.75, 18.45, 2.849, 1.076),
    PaperRow("mobilenet", 256, "bn", "relu", 10.62, 2.27, 1.155, 0.974),
    PaperRow("convnext", 256, "bn", "relu", 83.70, 16.61, 3.361, 2.613),
    PaperRow("vgg", 256, "ln", "relu", 94.05, 18.30, 3.740, 2.777),
    PaperRow("resnet", 256, "ln", "relu", 94.75, 18.43, 3.748, 2.689),
    PaperRow("mobilenet", 256, "ln", "relu", 10.62, 2.26, 2.561, 2.621),
    PaperRow("convnext", 256, "ln", "relu", 83.70, 16.60, 4.803, 4.108),
    PaperRow("vgg", 256, "bn", "gelu", 94.05, 18.31, 3.144, 1.168),
    PaperRow("resnet", 256, "bn", "gelu", 94.75, 18.45, 3.020, 1.214),
    PaperRow("mobilenet", 256, "bn", "gelu", 10.62, 2.27, 1.386, 1.009),
    PaperRow("convnext", 256, "bn", "gelu", 83.70, 16.61, 3.357, 2.698),
    PaperRow("vgg", 256, "ln", "gelu", 94.05, 18.30, 3.744, 2.667),
    PaperRow("resnet", 256, "ln", "gelu", 94.75, 18.43, 3.774, 2.756),
    PaperRow("mobilenet", 256, "ln", "gelu", 10.62, 2.26, 2.656, 2.497),
    PaperRow("convnext", 256, "ln", "gelu", 83.70, 16.60, 4.809, 4.305),
    # Table 3: 1024 x 1024
    PaperRow("vgg", 1024, "bn", "relu", 94.05, 293.01, 21.444, 10.198),
    PaperRow("resnet", 1024, "bn", "relu", 94.75, 295.16, 21.977, 10.171),
    PaperRow("mobilenet", 1024, "bn", "relu", 10.62, 36.38, 9.509, 6.902),
    PaperRow("convnext", 1024, "bn", "relu", 83.70, 265.82, 35.197, 18.932),
    PaperRow("vgg", 1024, "ln", "relu", 94.05, 292.76, 27.934, 16.119),
    PaperRow("resnet", 1024, "ln", "relu", 94.75, 294.91, 27.864, 15.715),
    PaperRow("mobilenet", 1024, "ln", "relu", 10.62, 36.12, 15.186, 11.708),
    PaperRow("convnext", 1024, "ln", "relu", 83.70, 265.59, 43.007, 22.067),
    PaperRow("vgg", 1024, "bn", "gelu", 94.05, 293.01, 23.614, 11.033),
    PaperRow("resnet", 1024, "bn", "gelu", 94.75, 295.16, 23.597, 11.236),
    PaperRow("mobilenet", 1024, "bn", "gelu", 10.62, 36.38, 11.069, 7.684),
    PaperRow("convnext", 1024, "bn", "gelu", 83.70, 265.82, 35.498, 19.485),
    PaperRow("vgg", 1024, "ln", "gelu", 94.05, 292.76, 28.244, 16.089),
    PaperRow("resnet", 1024, "ln", "gelu", 94.75, 294.91, 28.465, 15.954),
    PaperRow("mobilenet", 1024, "ln", "gelu", 10.62, 36.12, 15.215, 12.130),
    PaperRow("convnext", 1024, "ln", "gelu", 83.70, 265.59, 43.040, 24.466),
)
# fmt: on

# The paper's claims in its own words (section 4.3/4.4 and the abstract), with the number it states.
PAPER_TEXT_CLAIMS: dict[str, str] = {
    "bn_faster_than_ln": "BN consistently outperforms LN in terms of inference speed across all tested configurations",
    "mobilenet_fp16_bn_vs_ln": "MobileNet FP16: BN ≈ 3×, 2× and 1.6× faster than LN at 64, 256 and 1024",
    "relu_faster_than_gelu": "ReLU consistently results in faster inference speeds across all architectures and "
    "resolutions",
    "fp16_widens_gaps": "These differences are especially pronounced when using FP16 precision",
    "mobilenet_fastest": "MobileNet consistently achieved the fastest inference speeds across all configurations",
    "convnext_slowest": "ConvNeXt exhibited the slowest inference speeds",
    "convnext_vs_vgg_resnet_256_fp16": "At 256×256, ConvNeXt ≈ 2.4× slower than both VGG and ResNet under FP16",
    "mobilenet_vs_convnext_64": "MobileNet ≈ 3× faster than ConvNeXt at 64×64 (abstract)",
    "mobilenet_vs_vgg_resnet": "MobileNet 1.24× faster than VGG and ResNet across all tested configurations (abstract)",
    "ln_fp16_slower_at_64": "With LN at 64×64 (MobileNet), FP16 was slower than FP32",
}

# Numbers the paper's text states for its claims (the table-derived values are computed from PAPER_ROWS).
PAPER_STATED: dict[str, dict[int, float] | float] = {
    "mobilenet_fp16_bn_vs_ln": {64: 3.0, 256: 2.0, 1024: 1.6},
    "convnext_vs_vgg_resnet_256_fp16": 2.4,
    "mobilenet_vs_convnext_64": 3.0,
    "mobilenet_vs_vgg_resnet": 1.24,
}


def paper_records() -> list[dict[str, object]]:
    """The tables as tidy records (one per row and precision), in the report's column names."""
    records: list[dict[str, object]] = []
    for row in PAPER_ROWS:
        for precision, latency in (("fp32", row.fp32_ms), ("fp16", row.fp16_ms)):
            records.append(
                {
                    "block": row.block,
                    "resolution": row.resolution,
                    "norm": row.norm,
                    "act": row.act,
                    "precision": precision,
                    "params_count": row.params_m * 1e6,
                    "macs": row.macs_g * 1e9,
                    "latency_ms": latency,
                }
            )
    return records
