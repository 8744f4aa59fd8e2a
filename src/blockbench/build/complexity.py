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
    """MACs of one 3xRxR image (batch 1), counted on a throw-away FP32 copy (counters add hooks and buffers).

    Counts depend on shapes only, so a model on the meta device (:func:`blockbench.models.build_skeleton`) is
    the cheap input: thop runs its forward on the meta device (no arithmetic); ptflops, whose function patches
    need real tensors, gets zero-filled CPU tensors of the same shapes. Both counts equal those of the real model.
    """
    on_meta = next(model.parameters()).is_meta
    if counter == "thop":
        from thop import profile

        probe = copy.deepcopy(model).float().to("meta")
        sample = torch.randn(1, 3, resolution, resolution, device="meta")
        macs, _ = profile(probe.eval(), inputs=(sample,), verbose=False)
        return int(macs)
    if counter == "ptflops":
        from ptflops import get_model_complexity_info

        probe = copy.deepcopy(model).to_empty(device="cpu") if on_meta else copy.deepcopy(model).float().cpu()
        if on_meta:
            with torch.no_grad():
                for tensor in [*probe.parameters(), *probe.buffers()]:
                    tensor.zero_()
        # The 'pytorch' backend counts modules (convs, linears, norms, pools) as the paper's numbers did.
        macs, _ = get_model_complexity_info(
            probe.eval(),
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
