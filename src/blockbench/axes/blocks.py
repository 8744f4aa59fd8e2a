"""The block, norm and activation axes: one record per value, read by the config's allowed values, the networks,
attribution and the report (order, labels, colours, markers).

Adding a block is one record here plus its module class in :mod:`blockbench.models.blocks` and its ``conf/`` file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    name: str  # the config value (``block=resnet``)
    label: str  # how tables and figures print it
    module: str  # its nn.Module class in models/blocks.py: the scope attribution charges a block's operators to
    colour: str  # its colour in the report's figures
    marker: str  # its marker in the roofline figure


@dataclass(frozen=True)
class Norm:
    name: str
    label: str
    marker: str  # its marker in the energy figure


@dataclass(frozen=True)
class Act:
    name: str
    label: str


# In the paper's order.
BLOCK_RECORDS: dict[str, Block] = {
    b.name: b
    for b in (
        Block("vgg", "VGG", "VGGBlock", "#1f77b4", "o"),
        Block("resnet", "ResNet", "ResNetBlock", "#2ca02c", "s"),
        Block("mobilenet", "MobileNet", "MobileNetBlock", "#ff7f0e", "^"),
        Block("convnext", "ConvNeXt", "ConvNeXtBlock", "#9467bd", "D"),
    )
}
NORM_RECORDS: dict[str, Norm] = {
    n.name: n for n in (Norm("bn", "BN", "o"), Norm("ln", "LN", "s"), Norm("ln_native", "LN (native)", "^"))
}
ACT_RECORDS: dict[str, Act] = {a.name: a for a in (Act("relu", "ReLU"), Act("gelu", "GELU"))}

BLOCKS, NORMS, ACTIVATIONS = tuple(BLOCK_RECORDS), tuple(NORM_RECORDS), tuple(ACT_RECORDS)
BLOCK_LABELS = {b.name: b.label for b in BLOCK_RECORDS.values()}
NORM_LABELS = {n.name: n.label for n in NORM_RECORDS.values()}
ACT_LABELS = {a.name: a.label for a in ACT_RECORDS.values()}
BLOCK_MODULES = tuple(b.module for b in BLOCK_RECORDS.values())
