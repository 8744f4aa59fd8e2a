"""Schema of ``conf/backend/torch.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blockbench.backends.settings import BackendSettings
from blockbench.config.rules import choice, refuse

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

    def check_run_rules(self, run: Any) -> None:
        """Settings this job would not read are refused (they would enter the config hash and repeat one
        measurement under two names): each names the modes or devices that read it."""
        cuda = str(run.hardware.device).startswith("cuda")
        compiled = self.mode in ("compile", "aoti")
        if run.export.opset != type(run.export).__dataclass_fields__["opset"].default:
            why = "backend=torch runs the PyTorch module itself: no ONNX export reads it; leave it at its default"
            raise refuse("export.opset", run.export.opset, why)
        if self.compile_mode != "default" and self.mode != "compile":
            why = f"only backend.mode=compile reads it (backend.mode={self.mode}); choose backend.mode=compile"
            raise refuse("backend.compile_mode", self.compile_mode, why)
        if self.freezing and not compiled:
            why = f"only backend.mode=compile|aoti read it (backend.mode={self.mode})"
            raise refuse("backend.freezing", True, why)
        self_graphed = self.mode == "compile" and self.compile_mode in SELF_GRAPHED_COMPILE_MODES
        replayed = cuda and compiled and not self_graphed
        if not self.compile_cuda_graph and not replayed:
            why = (
                "it is read only for backend.mode=compile|aoti on a CUDA device, and not with inductor's own graphs "
                f"(compile_mode={'|'.join(SELF_GRAPHED_COMPILE_MODES)}); this job has none to replay"
            )
            raise refuse("backend.compile_cuda_graph", False, why)
        if not self.cudnn_benchmark and not cuda:
            why = f"cuDNN runs on CUDA devices only (hardware.device={run.hardware.device}); leave it true"
            raise refuse("backend.cudnn_benchmark", False, why)
