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


@dataclass
class OnnxRuntimeSettings(BackendSettings):
    name: str = "onnxruntime"
    providers: list[str] | None = None
    intra_op_threads: int = at_least(0, 0)
    inter_op_threads: int = at_least(0, 0)
    execution_mode: str = choice(EXECUTION_MODES, "sequential")
    graph_optimization_level: str = choice(GRAPH_OPTIMIZATION_LEVELS, "all")
    io_binding: bool = True

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
        if not self.io_binding and run.benchmark.mode == "end_to_end":
            raise refuse(
                "backend.io_binding",
                False,
                "only benchmark.mode=compute binds I/O; benchmark.mode=end_to_end always feeds host arrays to "
                "session.run, so leave it true",
            )
