"""How much memory a job needs at least, against what its device has: refused up front, not 20 s into a stage.

Counted on the meta device (shapes only, no memory, well under a second): the weights (the FP32 model and its copy
in the run's precision) and the largest activation, for the BatchNorm calibration pass (``calibration_batch``
images at the run's resolution, FP32) and for one inference at ``benchmark.batch_size``. A layer holds its input
and its output, and residual blocks a third tensor, so each pass needs about three of its largest activation.
This is a lower bound (runtimes add workspaces and copies): a job it refuses could never have run.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.config.schema import RunConfig
from blockbench.errors import ConfigError
from blockbench.models import build_skeleton
from blockbench.models.network import calibration_batch

LIVE_ACTIVATIONS = 3  # input, output and one skip tensor alive at the largest layer


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a job needs at least, by what needs them."""

    weights: int
    calibration: int
    inference: int

    @property
    def total(self) -> int:
        return self.weights + max(self.calibration, self.inference)


def largest_activation(model: nn.Module, resolution: int) -> int:
    """Elements of the largest tensor any layer outputs for one image (a meta-device forward with hooks)."""
    largest = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad(), torch.device("meta"):
            model(torch.empty(1, 3, resolution, resolution))
    finally:
        for handle in handles:
            handle.remove()
    return largest


def memory_need(cfg: RunConfig) -> MemoryNeed:
    model = build_skeleton(cfg)
    size = int(cfg.resolution.size)
    params = sum(p.numel() for p in model.parameters())
    per_image = largest_activation(model, size)
    run_bytes = PRECISIONS[str(cfg.precision.name)].dtype.itemsize
    return MemoryNeed(
        weights=params * (4 + run_bytes),
        calibration=LIVE_ACTIVATIONS * per_image * calibration_batch(size) * 4,
        inference=LIVE_ACTIVATIONS * per_image * int(cfg.benchmark.batch_size) * run_bytes,
    )


def available_bytes(device: torch.device) -> int:
    """Free memory of the job's device: the GPU's, or the host's available memory for the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


SHAPE_LIMIT_BYTES = 2**60  # torch's storage-size arithmetic overflows int64 a little above this


def check_memory(cfg: RunConfig, device: torch.device) -> None:
    """Refuse a job whose lower-bound memory need exceeds what its device has free, naming both and the knobs."""
    have = available_bytes(device)
    size = int(cfg.resolution.size)
    image = 3 * size * size * 4  # one FP32 input image
    if image > SHAPE_LIMIT_BYTES:  # beyond any device, and beyond what the shape arithmetic below can represent
        raise ConfigError(
            f"resolution.size={size}: one input image alone needs {image / 1e9:.3g} GB; {device} has "
            f"{have / 1e9:.1f} GB free. Lower resolution.size"
        )
    need = memory_need(cfg)
    if need.total <= have:
        return
    gb = 1e9
    parts = f"weights {need.weights / gb:.1f} GB"
    if need.calibration >= need.inference:
        images = calibration_batch(int(cfg.resolution.size))
        parts += f", BatchNorm calibration on {images} images of {cfg.resolution.size}x{cfg.resolution.size} "
        parts += f"{need.calibration / gb:.1f} GB"
    else:
        parts += f", activations at batch {cfg.benchmark.batch_size} {need.inference / gb:.1f} GB"
    raise ConfigError(
        f"resolution.size={cfg.resolution.size} with block={cfg.block.name} and benchmark.batch_size="
        f"{cfg.benchmark.batch_size} needs at least {need.total / gb:.1f} GB ({parts}); {device} has "
        f"{have / gb:.1f} GB free. Lower resolution.size or benchmark.batch_size (or model.channels)"
    )
