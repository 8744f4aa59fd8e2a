"""The work of one timed inference, for the roofline (:mod:`blockbench.report.roofline`): its FLOPs (2 × the logged
MACs × the batch), its bytes (weights once, plus the input and output of every convolution, linear layer and pool,
counted with forward hooks on the model built on PyTorch's ``meta`` device) and the floor they set on a device.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import torch
from torch import nn

from blockbench.axes.precisions import PRECISIONS
from blockbench.measure import metric_names
from blockbench.models.network import BlockNet

TRAFFIC_LAYERS = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AdaptiveAvgPool2d)
LOGGED_MACS = metric_names.MACS  # per image at batch 1: a timed inference does batch x this
LOGGED_PARAMS = metric_names.PARAMS
BATCH_PARAM = "params.benchmark.batch_size"


@dataclass(frozen=True)
class Footprint:
    """The work of one timed inference (the whole batch): matrix FLOPs, weight bytes and activation bytes."""

    flops: float
    weight_bytes: float
    activation_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes


class WorkUnknown(ValueError):
    """A configuration whose work cannot be counted from what its runs logged; the message says what is missing."""


def footprint(
    macs_per_image: float, params: float, batch_size: int, activation_elements: int, bytes_per_element: float
) -> Footprint:
    """The work of one inference of ``batch_size`` images from the logged counts: logged MACs are per image, the
    weights are read once per batch, ``activation_elements`` are those of the whole batch."""
    return Footprint(
        flops=2 * macs_per_image * batch_size,
        weight_bytes=params * bytes_per_element,
        activation_bytes=activation_elements * bytes_per_element,
    )


def activation_elements(model: nn.Module, example: torch.Tensor) -> int:
    """Elements read and written by the matrix and pooling layers of ``model(example)`` (input + output of each)."""
    elements = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal elements
        elements += inputs[0].numel() + output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, TRAFFIC_LAYERS)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return elements


@lru_cache(maxsize=256)
def blocknet_activation_elements(
    block: str,
    norm: str,
    act: str,
    channels: tuple[int, ...],
    blocks_per_stage: int,
    num_classes: int,
    resolution: int,
    batch_size: int,
) -> int:
    """:func:`activation_elements` of the paper's network for one configuration, on the meta device (no memory)."""
    with torch.device("meta"):
        model = BlockNet(block, norm, act, list(channels), blocks_per_stage, num_classes)
        example = torch.empty(batch_size, 3, resolution, resolution)
    return activation_elements(model.eval(), example)


@dataclass(frozen=True)
class Floor:
    """The two roofline bounds and the binding one, in seconds."""

    compute_s: float
    memory_s: float

    @property
    def floor_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


def roofline_floor(flops: float, nbytes: float, peak_tflops: float, bandwidth_gbps: float) -> Floor:
    """``max(flops / peak, bytes / bandwidth)`` with the peak in TFLOP/s and the bandwidth in GB/s."""
    return Floor(compute_s=flops / (peak_tflops * 1e12), memory_s=nbytes / (bandwidth_gbps * 1e9))


def _int_list(value: object) -> tuple[int, ...]:
    parsed = ast.literal_eval(str(value))
    return tuple(int(v) for v in parsed)


def _logged(row: pd.Series, name: str) -> float:
    value = pd.to_numeric(row.get(name), errors="coerce")
    return float(value) if value is not None and math.isfinite(value) else math.nan


def run_footprint(row: pd.Series) -> Footprint:
    """Footprint of a run from its logged MACs and params count and, for the activations, its logged model params
    (``model.channels`` etc.); :class:`WorkUnknown` when any of them is missing."""
    macs, params = _logged(row, LOGGED_MACS), _logged(row, LOGGED_PARAMS)
    missing = [name for name, value in ((LOGGED_MACS, macs), (LOGGED_PARAMS, params)) if math.isnan(value)]
    if missing:
        raise WorkUnknown(f"no logged {' or '.join(f'`{m}`' for m in missing)}")
    try:
        batch_size = int(row.get(BATCH_PARAM, 1) or 1)
        elements = blocknet_activation_elements(
            str(row["block"]),
            str(row["norm"]),
            str(row["act"]),
            _int_list(row["params.model.channels"]),
            int(row["params.model.blocks_per_stage"]),
            int(row["params.model.num_classes"]),
            int(row["resolution"]),
            batch_size,
        )
        bytes_per_element = PRECISIONS[str(row["precision"])].weight_bytes
    except (KeyError, ValueError, SyntaxError, TypeError) as exc:
        raise WorkUnknown(f"model params not logged or unreadable ({exc!r})") from exc
    return footprint(macs, params, batch_size, elements, bytes_per_element)
