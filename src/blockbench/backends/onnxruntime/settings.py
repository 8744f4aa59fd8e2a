"""Schema of ``conf/backend/onnxruntime.yaml`` (no onnxruntime import: config composition stays light)."""

from __future__ import annotations

from dataclasses import dataclass

from blockbench.backends.base import BackendSettings

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")


@dataclass
class OnnxRuntimeSettings(BackendSettings):
    name: str = "onnxruntime"
    providers: list[str] | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization_level: str = "all"
    io_binding: bool = True
