"""The paper's network: BN/ReLU stem, four stages of one block type, GAP + Linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from blockbench.models.blocks import (
    BLOCK_TYPES,
    ChannelsFirstLayerNorm,
    ConvNeXtBlock,
    NativeLayerNorm,
    act_factory,
    norm_factory,
)


class BlockNet(nn.Module):
    """Stem -> 4 stages (2x2 maxpool after stages 0-2) -> global average pool -> Linear."""

    def __init__(
        self,
        block: str,
        norm: str,
        act: str,
        channels: Sequence[int],
        blocks_per_stage: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"channels needs 5 widths (stem + 4 stages), got {list(channels)}")
        if block not in BLOCK_TYPES:
            raise ValueError(f"unknown block {block!r}; choose one of {', '.join(BLOCK_TYPES)}")
        block_type = BLOCK_TYPES[block]
        make_norm, make_act = norm_factory(norm), act_factory(act)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        for i in range(4):
            c_in, c_out = channels[i], channels[i + 1]
            layers = [block_type(c_in, c_out, make_norm, make_act)]
            layers += [block_type(c_out, c_out, make_norm, make_act) for _ in range(blocks_per_stage - 1)]
            if i < 3:
                layers.append(nn.MaxPool2d(2, stride=2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[4], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# The bias of every norm that feeds an activation: with normalised inputs shifted by +2, ReLU/GELU pass ~98 % of
# values through, so the random network is well conditioned like a trained one. At bias 0 it is chaotic: rounding
# in FP16/BF16 grows layer by layer (bf16 output error ~60 % on the paper's VGG instead of ~2 %), and parity would
# test nothing. ConvNeXt's norm feeds a linear layer whose output is added to a residual stream that no norm
# rescales: shifted, the stream grows by the shift in every block (|x| ~ 400 entering the norms at 1024x1024,
# where the hand-written LN's squares overflow FP16: relative error 0.083), so that norm keeps bias 0.
NORM_SHIFT = 2.0
NORM_TYPES = (nn.BatchNorm2d, ChannelsFirstLayerNorm, NativeLayerNorm)


def initialise(
    model: nn.Module, seed: int, calibration_size: int = 64, device: torch.device | str = "cpu"
) -> nn.Module:
    """Seeded He init, norm biases at +2, BatchNorm statistics from one random batch at the run's resolution.

    Default init with identity BN statistics lets activations vanish or explode across 30+ layers; that
    underflows FP16, makes parity checks meaningless and can hit denormal slow paths on CPUs. Statistics
    calibrated at the resolution the network will run at keep every layer's output O(1), as in a trained
    network (statistics from another resolution compound into outputs in the thousands, through padding).
    """
    generator = torch.Generator().manual_seed(seed)
    unshifted = {id(block.norm) for block in model.modules() if isinstance(block, ConvNeXtBlock)}
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration pass
            if isinstance(module, NORM_TYPES):
                module.weight.fill_(1.0)
                module.bias.fill_(0.0 if id(module) in unshifted else NORM_SHIFT)
        model.to(device).train()
        batch = torch.randn(
            calibration_batch(calibration_size), 3, calibration_size, calibration_size, generator=generator
        ).to(device)
        model(batch)
    return model.eval()


def calibration_batch(size: int, min_samples: int = 256) -> int:
    """Images needed so the last stage (size/32 squared positions) gives every BN channel >= min_samples values.

    Too few samples leave some channels with a near-zero variance estimate; dividing by it amplifies rounding
    noise by orders of magnitude, which is what FP16 parity then reports.
    """
    positions = max(1, (size // 32) ** 2)
    return max(2, -(-min_samples // positions))
