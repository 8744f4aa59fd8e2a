"""Errors and reports a user reads: parser errors, build failures, missing TensorRT, per-layer times."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbench.backends.tensorrt.library import Library
from blockbench.errors import BlockbenchError
from blockbench.measure.attribution import NodeIndex, OpTime


class OnnxParseError(BlockbenchError):
    """TensorRT's ONNX parser refused the graph; the message lists every parser error."""

    stage = "build"


class EngineBuildError(BlockbenchError):
    """The builder returned no engine; the message carries the errors TensorRT logged."""

    stage = "build"


class EngineRuntimeError(BlockbenchError):
    """A named-tensor call or ``execute_async_v3`` reported failure."""

    stage = "benchmark"


@dataclass(frozen=True)
class ParserIssue:
    """One ``trt.ParserError``, read out of the bindings (its fields are methods there)."""

    code: str
    message: str
    node: int = -1
    node_name: str = ""
    operator: str = ""
    local_functions: tuple[str, ...] = ()
    source: str = ""  # parser source location (file:line function), for bug reports


def format_parser_errors(onnx_path: Path, issues: Sequence[ParserIssue], release: str) -> str:
    """Every parser error as one line: where (node index, name, op), what (code, message)."""
    count = f"{len(issues)} error{'s' if len(issues) != 1 else ''}"
    lines = [f"{release} could not parse {onnx_path.name} ({count}):"]
    for number, issue in enumerate(issues, 1):
        if issue.node >= 0:
            name = f" {issue.node_name!r}" if issue.node_name else ""
            op = f" ({issue.operator})" if issue.operator else ""
            where = f"node {issue.node}{name}{op}"
        else:
            where = "graph"
        code = issue.code.rsplit(".", 1)[-1]
        inside = f" [in local function {' > '.join(issue.local_functions)}]" if issue.local_functions else ""
        at = f" (parser: {issue.source})" if issue.source else ""
        lines.append(f"  {number}. {where}: {code}: {issue.message.strip()}{inside}{at}")
    if not issues:
        lines.append("  (the parser reported failure without an error; set backend.log_level=verbose for its log)")
    return "\n".join(lines)


def format_build_failure(onnx_path: Path, errors: Sequence[str], release: str) -> str:
    """Why ``build_serialized_network`` returned nothing, from the errors TensorRT logged."""
    head = f"{release} could not build an engine from {onnx_path.name}"
    if not errors:
        return f"{head}, and logged no error; set backend.log_level=verbose to see the builder's log"
    return head + ":\n" + "\n".join(f"  - {error.strip()}" for error in errors[-10:])


def format_unknown_target(capability: str, release: str, targets: Sequence[str]) -> str:
    return f"backend.compute_capabilities: {capability} is not a target of {release}; it targets {', '.join(targets)}"


def format_runtime_failure(call: str, errors: Sequence[str]) -> str:
    detail = f": {errors[-1].strip()}" if errors else " (TensorRT logged no error; set backend.log_level=verbose)"
    return f"TensorRT {call} failed{detail}"


def unavailable_message(library: Library, problem: str, found: Mapping[str, str]) -> str:
    """``backend=tensorrt`` with this library cannot run here: what is wrong, what was found, what to install."""
    seen = "; ".join(f"{name}: {value}" for name, value in found.items())
    where = (
        "(it builds without a GPU; timing needs a GPU it runs on: hardware.device=cuda or cuda:N)"
        if library.builds_without_gpu
        else "and run on a CUDA GPU (hardware.device=cuda or cuda:N)"
    )
    return (
        f"backend=tensorrt backend.library={library.name} cannot run here: {problem}. Found: {seen}. "
        f"To use it, install {library.label} with: {library.install}, {where}"
    )


@dataclass
class LayerTimes:
    """Per-layer times reported by TensorRT's IProfiler, summed over profiled inferences in execution order."""

    total_ms: dict[str, float] = field(default_factory=dict)

    def add(self, layer: str, ms: float) -> None:
        self.total_ms[layer] = self.total_ms.get(layer, 0.0) + ms

    def report(self, iterations: int) -> dict[str, Any]:
        """Mean time per inference for each layer and its share of the sum (profiled, so slower than timed runs)."""
        per_inference = {name: total / iterations for name, total in self.total_ms.items()}
        whole = sum(per_inference.values())
        return {
            "iterations": iterations,
            "note": "IProfiler times: each layer is synchronised, so the sum exceeds the benchmark's latency",
            "sum_ms": whole,
            "layers": [
                {"name": name, "ms": ms, "percent": 100.0 * ms / whole if whole > 0 else 0.0}
                for name, ms in per_inference.items()
            ],
        }


_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]+)\]")


def layer_rows(ms_per_inference: Mapping[str, float], layer_information: str, index: NodeIndex) -> list[OpTime]:
    """The profiler's per-layer times as attribution rows, in execution order. The engine inspector's JSON lists,
    at detailed profiling verbosity, the ONNX nodes each layer runs (``"Metadata": "[ONNX Layer: node_Conv_3]..."``;
    Myelin's ``__myl_*`` kernels included); at lower verbosity layers are bare names and the join reads those."""
    listed: dict[str, list[str]] = {}
    with suppress(ValueError, TypeError, AttributeError):
        for layer in json.loads(layer_information).get("Layers", []):
            if isinstance(layer, dict) and "Name" in layer:
                listed[layer["Name"]] = _ONNX_LAYER.findall(str(layer.get("Metadata", "")))
    return [index.row(name, ms, listed=listed.get(name, ())) for name, ms in ms_per_inference.items()]
