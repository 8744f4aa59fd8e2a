"""The paper's networks: parameter counts, MACs, shapes and the two LN implementations."""

from __future__ import annotations

import pytest
import torch

from blockbench.build.complexity import count_macs, count_params
from blockbench.models.blocks import ChannelsFirstLayerNorm, NativeLayerNorm
from blockbench.models.network import BlockNet, initialise

PAPER_CHANNELS = [64, 128, 256, 512, 1024]
PAPER_BLOCKS = {"vgg": 4, "resnet": 4, "mobilenet": 8, "convnext": 8}
PAPER_PARAMS_M = {"vgg": 94.05, "resnet": 94.75, "mobilenet": 10.62, "convnext": 83.70}
# Paper Table 1 (64x64) MACs column, in G, for BN and LN.
PAPER_MACS_64_G = {
    ("vgg", "bn"): 1.14,
    ("resnet", "bn"): 1.15,
    ("mobilenet", "bn"): 0.14,
    ("convnext", "bn"): 1.04,
    ("vgg", "ln"): 1.14,
    ("resnet", "ln"): 1.15,
    ("mobilenet", "ln"): 0.14,
    ("convnext", "ln"): 1.04,
}


def paper_net(block: str, norm: str, act: str = "relu") -> BlockNet:
    return BlockNet(block, norm, act, PAPER_CHANNELS, PAPER_BLOCKS[block], 10)


@pytest.mark.parametrize("norm", ["bn", "ln", "ln_native"])
@pytest.mark.parametrize("block", list(PAPER_PARAMS_M))
def test_paper_parameter_counts(block: str, norm: str) -> None:
    assert round(count_params(paper_net(block, norm)) / 1e6, 2) == PAPER_PARAMS_M[block]


@pytest.mark.parametrize(("block", "norm"), list(PAPER_MACS_64_G))
def test_paper_macs_at_64_with_ptflops_and_thop(block: str, norm: str) -> None:
    model = paper_net(block, norm).eval()
    ptflops_macs = count_macs(model, 64, "ptflops")
    assert round(ptflops_macs / 1e9, 2) == PAPER_MACS_64_G[(block, norm)]
    thop_macs = count_macs(model, 64, "thop")
    assert abs(thop_macs - ptflops_macs) / ptflops_macs < 0.01


def test_paper_macs_at_256_ptflops() -> None:
    assert round(count_macs(paper_net("vgg", "bn"), 256, "ptflops") / 1e9, 2) == 18.31
    assert round(count_macs(paper_net("convnext", "bn"), 256, "ptflops") / 1e9, 2) == 16.61


def test_counting_macs_leaves_the_model_untouched() -> None:
    model = paper_net("mobilenet", "bn")
    before = set(model.state_dict())
    count_macs(model, 64, "thop")
    count_macs(model, 64, "ptflops")
    assert set(model.state_dict()) == before


@pytest.mark.parametrize("block", list(PAPER_BLOCKS))
@pytest.mark.parametrize("norm", ["bn", "ln", "ln_native"])
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_tiny_network_shapes_and_finite_output(block: str, norm: str, act: str) -> None:
    model = initialise(BlockNet(block, norm, act, [8, 8, 16, 16, 32], 2, 7), seed=0)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("block", "resolution"), [("vgg", 64), ("mobilenet", 256)])
def test_activations_stay_order_one_through_the_paper_depth(block: str, resolution: int) -> None:
    """BN calibrated at the run's resolution keeps FP16 meaningful: no vanishing or exploding output."""
    model = initialise(paper_net(block, "bn"), seed=0, calibration_size=resolution)
    out = model(torch.randn(1, 3, resolution, resolution))
    assert 1e-1 < out.abs().max() < 1e4


@pytest.mark.parametrize("block", ["vgg", "mobilenet"])
def test_random_network_is_well_conditioned_in_bf16(block: str) -> None:
    """Low-precision rounding must not blow up through the depth, or parity checks would test nothing."""
    model = initialise(paper_net(block, "bn"), seed=0, calibration_size=64)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert (out - ref).norm() / ref.norm() < 0.05


def test_channels_first_and_native_layer_norm_agree() -> None:
    hand, native = ChannelsFirstLayerNorm(16), NativeLayerNorm(16)
    with torch.no_grad():
        for layer in (hand, native):
            layer.weight.copy_(torch.linspace(0.5, 1.5, 16))
            layer.bias.copy_(torch.linspace(-1, 1, 16))
    x = torch.randn(2, 16, 5, 7) * 3 + 1
    torch.testing.assert_close(hand(x), native(x), rtol=1e-5, atol=1e-5)
    plain = ChannelsFirstLayerNorm(16)(x)  # weight 1, bias 0: zero mean, unit variance over C
    torch.testing.assert_close(plain.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(plain.var(1, unbiased=False), torch.ones(2, 5, 7), atol=1e-3, rtol=0)


def test_convnext_block_has_no_activation_after_the_add() -> None:
    """A negative output survives only if nothing like ReLU follows the residual add."""
    model = initialise(BlockNet("convnext", "bn", "relu", [8, 8, 16, 16, 32], 1, 4), seed=0)
    feats = model.stages(model.stem(torch.randn(1, 3, 64, 64)))
    assert (feats < 0).any()


@pytest.mark.parametrize("norm", ["bn", "ln", "ln_native"])
@pytest.mark.parametrize("block", list(PAPER_BLOCKS))
def test_build_model_sets_every_tensor_itself(compose_cfg, block: str, norm: str) -> None:
    """build_model skips PyTorch's default init (meta device, then allocated): the weights must not change."""
    from blockbench.models import build_model

    cfg = compose_cfg(f"block={block}", f"norm={norm}", "model.channels=[8,8,16,16,32]")
    default_built = BlockNet(block, norm, "relu", [8, 8, 16, 16, 32], int(cfg.model.blocks_per_stage), 10)
    expected = initialise(default_built, seed=0, calibration_size=64).state_dict()
    actual = build_model(cfg).state_dict()
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


@pytest.mark.parametrize("counter", ["thop", "ptflops"])
@pytest.mark.parametrize("block", ["vgg", "convnext"])
def test_macs_of_the_meta_skeleton_equal_those_of_the_real_model(compose_cfg, block: str, counter: str) -> None:
    from blockbench.models import build_skeleton

    cfg = compose_cfg(f"block={block}")
    skeleton = build_skeleton(cfg)
    assert next(skeleton.parameters()).is_meta
    assert count_macs(skeleton, 64, counter) == count_macs(paper_net(block, "bn"), 64, counter)
    assert count_params(skeleton) == count_params(paper_net(block, "bn"))
