"""GPU suite: the CUDA timer, every torch mode, end-to-end copies, cache flushing, energy, attribution, trials and the
precision stopping rule, each run for real on a CUDA device (``python -m pytest -q -m gpu tests/gpu``; about three
minutes on one H100). Skipped, not failed, where ``torch.cuda.is_available()`` is False.

The settings every module shares live here; the fixtures that run jobs are in ``conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

GPU = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch.cuda.is_available() is False"),
]

# Every GPU job: PyTorch on the first CUDA device, tracking off (run.json in the job folder), a short stopping rule.
GPU_BASE = [
    "backend=torch",
    "hardware.device=cuda",
    "tracking.enabled=false",
    "benchmark.progress=false",
    "benchmark.warmup_iters=20",
    "benchmark.warmup_s=0.2",
    "benchmark.min_iters=100",
    "benchmark.min_s=0.5",
]
# Tiny widths at 64x64: about 1.2 M parameters (4.7 MB in FP32), L2-resident on an H100 (50 MB); quick to compile.
SMALL = ["block=vgg", "model.channels=[16,32,64,128,256]", "model.blocks_per_stage=1", "resolution.size=64"]
# GPU-bound: milliseconds of kernels per inference in strict FP32, so launch gaps are a small part of the latency.
HEAVY = ["block=vgg", "model.channels=[64,128,256,512,1024]", "model.blocks_per_stage=2", "resolution.size=512"]


@dataclass(frozen=True)
class Job:
    """One GPU job that ran: what ``run_job`` returned, its folder and how long it took."""

    metrics: dict[str, float]
    tags: dict[str, str]
    work: Path
    wall_s: float
