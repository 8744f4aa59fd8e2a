"""Parameter and MAC counts; thop by default, ptflops to reproduce the paper's MACs column."""

from __future__ import annotations

import copy
import io
import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    counter: str


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, resolution: int, counter: str) -> int:
    """MACs of one 3xRxR image (batch 1), on a throw-away FP32 CPU copy (counters add hooks and buffers)."""
    probe = copy.deepcopy(model).float().cpu().eval()
    if counter == "thop":
        from thop import profile

        macs, _ = profile(probe, inputs=(torch.randn(1, 3, resolution, resolution),), verbose=False)
        return int(macs)
    if counter == "ptflops":
        from ptflops import get_model_complexity_info

        # The 'pytorch' backend counts modules (convs, linears, norms, pools) as the paper's numbers did.
        macs, _ = get_model_complexity_info(
            probe,
            (3, resolution, resolution),
            as_strings=False,
            print_per_layer_stat=False,
            backend="pytorch",
            ost=io.StringIO(),
        )
        return int(macs)
    raise ValueError(f"unknown complexity counter {counter!r}")


def measure_complexity(model: nn.Module, resolution: int, counter: str) -> Complexity:
    result = Complexity(params=count_params(model), macs=count_macs(model, resolution, counter), counter=counter)
    log.info("complexity: %.2f M params, %.2f GMACs (%s)", result.params / 1e6, result.macs / 1e9, counter)
    return result
