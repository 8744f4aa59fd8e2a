"""Schema of ``conf/backend/onnxruntime.yaml`` (no onnxruntime import: config composition stays light)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blockbench.backends.settings import BackendSettings
from blockbench.config.rules import at_least, choice, refuse

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")
# ONNX Runtime's ExecutionMode: sequential runs one node at a time (its inter-op thread pool unused); parallel runs
# independent nodes concurrently on inter_op_threads threads.
EXECUTION_MODES = ("sequential", "parallel")
# The CUDA provider's cuDNN convolution algorithm choice: time every algorithm (exhaustive, the provider's default),
# cuDNN's heuristic pick, or the default algorithm.
CONV_ALGO_SEARCHES = ("exhaustive", "heuristic", "default")
# The CUDA provider's own settings (provider options): only the CUDA provider reads them.
CUDA_DEFAULTS = {
    "cuda_graph": False,
    "cudnn_conv_algo_search": "exhaustive",
    "prefer_nhwc": False,
    "cudnn_conv_use_max_workspace": True,
}


@dataclass
class OnnxRuntimeSettings(BackendSettings):
    name: str = "onnxruntime"
    providers: list[str] | None = None
    intra_op_threads: int = at_least(0, 0)
    inter_op_threads: int = at_least(0, 0)
    execution_mode: str = choice(EXECUTION_MODES, "sequential")
    graph_optimization_level: str = choice(GRAPH_OPTIMIZATION_LEVELS, "all")
    io_binding: bool = True
    cuda_graph: bool = False  # CUDA provider: capture the run once, replay it (enable_cuda_graph; needs io_binding)
    cudnn_conv_algo_search: str = choice(CONV_ALGO_SEARCHES, "exhaustive")
    prefer_nhwc: bool = False  # CUDA provider: NHWC kernels where it has them (layout transposes inserted)
    cudnn_conv_use_max_workspace: bool = True  # CUDA provider: let cuDNN's algorithm search use the largest workspace

    def check_rules(self, prefix: str) -> None:
        if self.inter_op_threads and self.execution_mode == "sequential":
            raise refuse(
                f"{prefix}inter_op_threads",
                self.inter_op_threads,
                f"ONNX Runtime ignores it with {prefix}execution_mode=sequential (choices: "
                f"{', '.join(EXECUTION_MODES)}): set {prefix}execution_mode=parallel, or leave it 0",
            )

    def check_run_rules(self, run: Any) -> None:
        """Settings that only some jobs read: refused where nothing would read them (they would enter the config
        hash and repeat one measurement under two names)."""
        on_cuda = str(run.hardware.device).startswith("cuda")
        for key, default in CUDA_DEFAULTS.items():
            if not on_cuda and getattr(self, key) != default:
                raise refuse(
                    f"backend.{key}",
                    getattr(self, key),
                    f"only ONNX Runtime's CUDA provider reads it, and hardware.device={run.hardware.device} runs the "
                    "CPU provider; leave it at its default",
                )
        if self.cuda_graph and (not self.io_binding or run.benchmark.mode == "end_to_end"):
            raise refuse(
                "backend.cuda_graph",
                True,
                "the CUDA provider replays a graph only on inputs and outputs bound to fixed device buffers: it needs "
                "backend.io_binding=true and benchmark.mode=compute",
            )
        if not self.io_binding and run.benchmark.mode == "end_to_end":
            raise refuse(
                "backend.io_binding",
                False,
                "only benchmark.mode=compute binds I/O; benchmark.mode=end_to_end always feeds host arrays to "
                "session.run, so leave it true",
            )
