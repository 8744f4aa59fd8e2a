"""Model construction: the paper's networks from the composed run config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from blockbench.models.blocks import ACTIVATIONS, BLOCKS, NORMS
from blockbench.models.network import BlockNet, initialise

__all__ = ["ACTIVATIONS", "BLOCKS", "NORMS", "BlockNet", "build_model"]


def build_model(cfg: Any, device: torch.device | str = "cpu") -> nn.Module:
    """Build the seeded, eval-mode FP32 network of a composed config, BN calibrated at its resolution."""
    model = BlockNet(
        block=cfg.block.name,
        norm=cfg.norm.name,
        act=cfg.act.name,
        channels=list(cfg.model.channels),
        blocks_per_stage=int(cfg.model.blocks_per_stage),
        num_classes=int(cfg.model.num_classes),
    )
    return initialise(model, seed=int(cfg.seed), calibration_size=int(cfg.resolution.size), device=device)
