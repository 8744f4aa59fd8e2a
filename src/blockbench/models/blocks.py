"""The paper's four block designs and the norm/activation layers they are built from.

Every block maps ``(N, C_in, H, W) -> (N, C_out, H, W)``; stride and pooling live in the network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from blockbench.axes.blocks import ACTIVATIONS, BLOCK_RECORDS, NORMS


class ChannelsFirstLayerNorm(nn.Module):
    """The paper's layer norm over the channel axis of an NCHW tensor, written out op by op.

    Exports to a chain of ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add nodes — the unfused form that made LN slow
    in the paper. Kept deliberately un-optimised: it is the object of measurement.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class NativeLayerNorm(nn.Module):
    """Same maths as :class:`ChannelsFirstLayerNorm` through ``F.layer_norm`` on channels-last.

    Exports to a single ONNX ``LayerNormalization`` node that runtimes fuse.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


NormFactory = Callable[[int], nn.Module]
ActFactory = Callable[[], nn.Module]


def norm_factory(name: str) -> NormFactory:
    """Return a constructor ``channels -> norm layer`` for a norm name."""
    factories: dict[str, NormFactory] = {
        "bn": nn.BatchNorm2d,
        "ln": ChannelsFirstLayerNorm,
        "ln_native": NativeLayerNorm,
    }
    if name not in factories:
        raise ValueError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return factories[name]


def act_factory(name: str) -> ActFactory:
    """Return a constructor for an activation name (GELU is the exact erf form)."""
    factories: dict[str, ActFactory] = {"relu": nn.ReLU, "gelu": nn.GELU}
    if name not in factories:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return factories[name]


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


def projection(c_in: int, c_out: int) -> nn.Module:
    """Shortcut: identity when the width is kept, else a bias-free 1x1 conv."""
    return nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)


class VGGBlock(nn.Module):
    """conv3x3 -> norm -> act -> conv3x3 -> norm -> act."""

    def __init__(self, c_in: int, c_out: int, norm: NormFactory, act: ActFactory) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(c_in, c_out), norm(c_out), act(), conv3x3(c_out, c_out), norm(c_out), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResNetBlock(nn.Module):
    """Two convs like VGG, the second norm added to the shortcut, then the activation."""

    def __init__(self, c_in: int, c_out: int, norm: NormFactory, act: ActFactory) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(c_in, c_out), norm(c_out), act(), conv3x3(c_out, c_out), norm(c_out))
        self.shortcut = projection(c_in, c_out)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class MobileNetBlock(nn.Module):
    """Depthwise conv3x3 -> pointwise 1x1 conv -> norm -> act."""

    def __init__(self, c_in: int, c_out: int, norm: NormFactory, act: ActFactory) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            norm(c_out),
            act(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvNeXtBlock(nn.Module):
    """dwconv7x7 -> norm -> (channels-last) Linear x4 -> act -> Linear -> add shortcut; no act after the add."""

    def __init__(self, c_in: int, c_out: int, norm: NormFactory, act: ActFactory) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c_in, c_in, 7, padding=3, groups=c_in, bias=True)
        self.norm = norm(c_in)
        self.expand = nn.Linear(c_in, 4 * c_in)
        self.act = act()
        self.reduce = nn.Linear(4 * c_in, c_out)
        self.shortcut = projection(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.reduce(self.act(self.expand(y))).permute(0, 3, 1, 2)
        return y + self.shortcut(x)


# config value -> module class, by the module each block's record names
_MODULES = {cls.__name__: cls for cls in (VGGBlock, ResNetBlock, MobileNetBlock, ConvNeXtBlock)}
BLOCK_TYPES: dict[str, type[nn.Module]] = {b.name: _MODULES[b.module] for b in BLOCK_RECORDS.values()}
