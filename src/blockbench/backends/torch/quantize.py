"""INT8 for the PyTorch backend on x86 CPUs: PT2E static quantization lowered by inductor to oneDNN int8 kernels.

``torch.export`` -> torchao's ``prepare_pt2e`` with the X86 inductor quantizer (int8 per-channel weights, int8
activations) -> calibration -> ``convert_pt2e``, then ``torch.compile`` with freezing, which folds the quantize /
dequantize pairs into quantized convolution and linear kernels (AMX or VNNI where the CPU has them). Eager execution
of the converted graph would run FP32 reference operators between quantize/dequantize pairs, so INT8 is compiled
only; CUDA has no int8 convolution path in inductor and is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from blockbench.errors import QuantizeError
from blockbench.models.blocks import ConvNeXtBlock


# Modules kept in FP32: the 1x1 projection shortcut of a ConvNeXt block (its conv output is added in place to the
# block's output; inductor's quantized conv + add fusion refuses that pattern in torch 2.13 / torchao 0.18).
def fp32_modules(model: nn.Module) -> list[str]:
    return [
        f"{name}.shortcut"
        for name, module in model.named_modules()
        if isinstance(module, ConvNeXtBlock) and isinstance(module.shortcut, nn.Conv2d)
    ]


def quantize_pt2e(model: nn.Module, example: torch.Tensor, calibration: list[torch.Tensor]) -> nn.Module:
    """The model with int8 quantize/dequantize pairs around every convolution and linear layer, calibrated."""
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as exc:
        raise QuantizeError(f"precision=int8 with backend=torch needs torchao ({exc}): pip install torchao") from exc
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    for name in fp32_modules(model):
        quantizer.set_module_name_qconfig(name, None)
    try:
        with torch.no_grad():
            graph = torch.export.export(model, (example,)).module()
            prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
            for batch in calibration:
                prepared(batch)
            return convert_pt2e(prepared)
    except Exception as exc:  # export and the quantizer raise many unrelated types
        raise QuantizeError(f"PT2E INT8 quantization failed: {type(exc).__name__}: {exc}") from exc
