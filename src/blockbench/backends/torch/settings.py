"""Schema of ``conf/backend/torch.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from blockbench.backends.base import BackendSettings
from blockbench.schema import choice

TORCH_MODES = ("eager", "cuda_graph", "compile", "aoti")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Inductor modes that already replay CUDA graphs themselves: never capture them a second time.
SELF_GRAPHED_COMPILE_MODES = ("reduce-overhead", "max-autotune")


@dataclass
class TorchSettings(BackendSettings):
    name: str = "torch"
    mode: str = choice(TORCH_MODES, "eager")
    compile_mode: str = choice(COMPILE_MODES, "default")
    compile_cuda_graph: bool = True  # replay compile/aoti output in a CUDA graph (CUDA only)
    channels_last: bool = False
    cudnn_benchmark: bool = True  # time cuDNN's algorithms once per shape and keep the fastest (static shapes)
    freezing: bool = False  # compile/aoti: weights become constants, so inductor folds BN into convs
