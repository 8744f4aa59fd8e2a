"""Model construction: the paper's networks from the composed run config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from blockbench.axes.blocks import ACTIVATIONS, BLOCKS, NORMS
from blockbench.models.network import BlockNet, initialise

__all__ = ["ACTIVATIONS", "BLOCKS", "NORMS", "BlockNet", "build_model", "build_skeleton"]


def build_model(cfg: Any, device: torch.device | str = "cpu") -> nn.Module:
    """Build the seeded, eval-mode FP32 network of a composed config, BN calibrated at its resolution."""
    # Built without PyTorch's default init (on the meta device, then allocated): initialise sets every tensor.
    model = build_skeleton(cfg).to_empty(device="cpu")
    return initialise(model, seed=int(cfg.seed), calibration_size=int(cfg.resolution.size), device=device)


def build_skeleton(cfg: Any) -> nn.Module:
    """The config's network on the meta device: shapes only, no memory, no values (for counting MACs)."""
    with torch.device("meta"):
        return BlockNet(
            block=cfg.block.name,
            norm=cfg.norm.name,
            act=cfg.act.name,
            channels=list(cfg.model.channels),
            blocks_per_stage=int(cfg.model.blocks_per_stage),
            num_classes=int(cfg.model.num_classes),
        ).eval()
