"""Schema of ``conf/backend/onnxruntime.yaml`` (no onnxruntime import: config composition stays light)."""

from __future__ import annotations

from dataclasses import dataclass

from blockbench.backends.base import BackendSettings
from blockbench.schema import at_least, choice

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")


@dataclass
class OnnxRuntimeSettings(BackendSettings):
    name: str = "onnxruntime"
    providers: list[str] | None = None
    intra_op_threads: int = at_least(0, 0)
    inter_op_threads: int = at_least(0, 0)
    graph_optimization_level: str = choice(GRAPH_OPTIMIZATION_LEVELS, "all")
    io_binding: bool = True
