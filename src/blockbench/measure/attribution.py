"""Where an inference's time goes: per block of the network and per operator class, joined back to the model.

Every engine reports time in its own units -- PyTorch kernels launched from module scopes, inductor's fused
kernels, ONNX Runtime's graph nodes, TensorRT's fused layers -- and every one of them is turned into rows of one
shape, :class:`OpTime`: what ran (kernel, node or layer), the module path of the network it came from (``scope``;
``stages.1.0.body.2``), its operator class and its time per inference. The join is by module scope where the engine
keeps it (PyTorch hooks; the ONNX exporter's ``pkg.torch.onnx.name_scopes`` on every node, which TensorRT's layer
names and ONNX Runtime's node names lead back to) and by the operator names a fused kernel lists where it does not
(inductor). A kernel or layer that runs several operators of different classes is labelled ``fused: a+b`` -- never
split between them by guess.

Profiled times are not the headline latency: a profiler adds work to every kernel or layer. The summary says how
much the profiled inferences took against the measured median (``attr_overhead``) and how much of the measured
latency the attributed time covers (``attr_coverage``; below 1 where the device idles between kernels, as eager
PyTorch does when the host cannot issue kernels fast enough).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx

from blockbench.axes.blocks import BLOCK_MODULES

FILE = "attribution.csv"
ITERATIONS = 20  # profiled inferences after the timed measurement; times are their mean

# Operator classes, each with the label the report prints. ``fused: ...`` rows combine several.
OP_CLASSES: dict[str, str] = {
    "conv": "convolution (dense)",
    "dwconv": "depthwise convolution",
    "linear": "pointwise conv / linear",
    "norm": "normalization",
    "act": "activation",
    "pool": "pooling",
    "add": "residual add",
    "layout": "layout / copy",
    "other": "other",
}
FUSED = "fused"  # prefix of a row's class when one kernel or layer runs operators of several classes

# Leaf module classes of blockbench.models, and what their operators are.
_MODULE_CLASSES = {
    "BatchNorm2d": "norm",
    "ChannelsFirstLayerNorm": "norm",
    "NativeLayerNorm": "norm",
    "ReLU": "act",
    "GELU": "act",
    "MaxPool2d": "pool",
    "AdaptiveAvgPool2d": "pool",
    "Flatten": "layout",
    "Linear": "linear",
}
# Operator names (aten ops, ONNX op types, inductor kernel-name parts) that say their class whatever module ran them.
_LAYOUT_OPS = {
    "permute", "transpose", "reshape", "view", "flatten", "clone", "contiguous", "copy", "copy_", "to", "cast",
    "squeeze", "unsqueeze", "identity", "reorderinput", "reorderoutput", "expand", "cat", "concat", "slice",
    "_to_copy", "reformat", "shuffle",
}  # fmt: skip
_ACT_OPS = {"relu", "gelu", "erf", "tanh", "sigmoid", "clip", "threshold"}
_POOL_OPS = {"maxpool", "max_pool2d", "max_pool2d_with_indices", "averagepool", "globalaveragepool", "avg_pool2d",
             "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "pooling"}  # fmt: skip
_NORM_OPS = {"batchnormalization", "layernormalization", "native_batch_norm", "_native_batch_norm_legit_no_training",
             "batch_norm", "layer_norm", "native_layer_norm", "cudnn_batch_norm", "var_mean", "rsqrt"}  # fmt: skip
_LINEAR_OPS = {"matmul", "gemm", "mm", "addmm", "bmm", "linear"}
_CONV_OPS = {"conv", "convolution", "conv2d", "_convolution", "cudnn_convolution", "mkldnn_convolution"}


@dataclass(frozen=True)
class OpTime:
    """One kernel, node or layer of an engine, per inference."""

    name: str  # the engine's own name for it
    scope: str  # module path in the network ("" where the engine keeps none)
    op_class: str  # a key of OP_CLASSES, or "fused: a+b"
    ms: float  # mean time per inference
    calls: float = 1.0  # launches per inference

    @property
    def block(self) -> str:
        return block_of(self.scope)


def block_of(scope: str) -> str:
    """The part of the network a module path belongs to: ``stem``, ``stages.K.J`` (a block or a stage's pool),
    ``head``, or ``whole network`` where the engine kept no scope (inductor's fused graph)."""
    if not scope:
        return "whole network"
    parts = scope.split(".")
    if parts[0] == "stages":
        return ".".join(parts[:3])
    return parts[0]


def conv_class(groups: int, in_channels: int, kernel: tuple[int, ...]) -> str:
    """Depthwise (one filter per channel), pointwise (1x1: a linear layer over channels) or dense convolution."""
    if groups > 1 and groups == in_channels:
        return "dwconv"
    if all(k == 1 for k in kernel):
        return "linear"
    return "conv"


def classify(op: str, module: str = "", in_block: bool = False) -> str:
    """Class of one operator ``op`` (an aten op, ONNX op type or word of an engine's name; convolutions are
    classified by :func:`conv_class` instead) run inside a module of class ``module``. Inside a known leaf module
    everything is that module's cost (LayerNorm's Sub/Pow/Div and weight views, GELU's Erf/Mul, a Linear's bias
    Add); elsewhere the operator says its class, and an Add directly in a block's forward is the residual add."""
    if module in _MODULE_CLASSES:
        return _MODULE_CLASSES[module]
    name = op.lower().removeprefix("aten::").split(".")[0]
    for ops, kind in (
        (_CONV_OPS, "conv"),
        (_NORM_OPS, "norm"),
        (_POOL_OPS, "pool"),
        (_LINEAR_OPS, "linear"),
        (_ACT_OPS, "act"),
        (_LAYOUT_OPS, "layout"),
    ):
        if name in ops:
            return kind
    if in_block and name in ("add", "add_"):
        return "add"
    return "other"


def fused_class(classes: Iterable[str]) -> str:
    """One class, or ``fused: a+b`` (in OP_CLASSES order) for a kernel or layer that runs several; layout work
    folded into a compute kernel does not make it fused."""
    found = set(classes)
    if len(found) > 1:
        found.discard("layout")
    if len(found) > 1:
        found.discard("other")
    if len(found) == 1:
        return found.pop()
    return f"{FUSED}: " + "+".join(c for c in OP_CLASSES if c in found) if found else "other"


def classes_in(op_class: str) -> set[str]:
    """The plain classes a row's class covers (one, or the parts of ``fused: a+b``)."""
    if op_class.startswith(f"{FUSED}: "):
        return set(op_class.removeprefix(f"{FUSED}: ").split("+"))
    return {op_class}


# -- ONNX node index: the module scope and class of every node the exporter wrote ----------------------------------


@dataclass(frozen=True)
class OnnxNode:
    name: str
    op_type: str
    scope: str  # innermost module path
    module: str  # class name of that module
    op_class: str


def onnx_nodes(path: Path) -> list[OnnxNode]:
    """Every node of an exported graph, in graph order, with its module scope (from the dynamo exporter's node
    metadata) and operator class. Folded BatchNorms leave a Conv scoped to the norm module: it is a convolution."""
    model = onnx.load(str(path), load_external_data=False)
    nodes = []
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes", ""))
        hierarchy = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy", ""))
        # The last entry of each is the operator itself; the one before it is the innermost module.
        scope = scopes[-2] if len(scopes) >= 2 else ""
        module = hierarchy[-2].rsplit(".", 1)[-1] if len(hierarchy) >= 2 else ""
        if node.op_type == "Conv":
            op_class = _onnx_conv_class(node, model.graph)
        else:
            op_class = classify(node.op_type, module, in_block=module in BLOCK_MODULES)
        nodes.append(OnnxNode(node.name, node.op_type, scope, module, op_class))
    return nodes


def _literal_list(text: str) -> list[str]:
    """The exporter writes Python list reprs of strings: ``['', 'stem', 'stem.1', 'relu']``."""
    return re.findall(r"'((?:[^'\\]|\\.)*)'", text)


def _onnx_conv_class(node: onnx.NodeProto, graph: onnx.GraphProto) -> str:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    groups = int(attrs.get("group", 1))
    kernel = tuple(attrs.get("kernel_shape", ()))
    in_channels = groups  # depthwise when every group is one channel: weight's second dim is 1
    weight = next((w for w in graph.initializer if w.name == node.input[1]), None)
    if weight is not None and len(weight.dims) == 4:
        kernel = kernel or tuple(weight.dims[2:])
        in_channels = groups * weight.dims[1]
    return conv_class(groups, in_channels, kernel or (0,))


# -- summary ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """The rows of one profiled engine and how they were obtained."""

    rows: list[OpTime]
    method: str  # what measured them, for the run's ``attribution`` tag
    profiled_ms: float  # wall time per inference during the profiled pass (nan where not measured)

    @property
    def total_ms(self) -> float:
        return sum(r.ms for r in self.rows)

    def by_class(self) -> dict[str, float]:
        """Milliseconds per inference per row class (plain or fused), largest first."""
        totals: dict[str, float] = defaultdict(float)
        for row in self.rows:
            totals[row.op_class] += row.ms
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def by_block(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for row in self.rows:
            totals[row.block] += row.ms
        return dict(totals)

    def metrics(self, latency_ms: float) -> dict[str, float]:
        """``attr_<class>_frac`` (share of attributed time in rows of exactly that class; ``attr_fused_frac`` for
        rows of several), ``attr_with_<class>_frac`` (share in rows that include the class, fused or not), kernel
        or layer counts, the total, and its coverage of and overhead over the measured ``latency_ms``."""
        total = self.total_ms
        metrics: dict[str, float] = {
            "attr_total_ms": total,
            "attr_kernels": sum(r.calls for r in self.rows),
            "attr_coverage": total / latency_ms if latency_ms > 0 else float("nan"),
            "attr_profiled_ms": self.profiled_ms,
            "attr_overhead": self.profiled_ms / latency_ms - 1 if latency_ms > 0 else float("nan"),
        }
        fused = sum(r.ms for r in self.rows if r.op_class.startswith(FUSED))
        metrics["attr_fused_frac"] = fused / total if total > 0 else 0.0
        for name in OP_CLASSES:
            alone = sum(r.ms for r in self.rows if r.op_class == name)
            within = sum(r.ms for r in self.rows if name in classes_in(r.op_class))
            metrics[f"attr_{name}_frac"] = alone / total if total > 0 else 0.0
            metrics[f"attr_with_{name}_frac"] = within / total if total > 0 else 0.0
            metrics[f"attr_{name}_kernels"] = sum(r.calls for r in self.rows if r.op_class == name)
        return metrics


FIELDS = ("block", "scope", "op_class", "name", "ms_per_inference", "calls_per_inference")


def write(attribution: Attribution, path: Path) -> None:
    """One row per kernel, node or layer, in execution order."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for r in attribution.rows:
            writer.writerow((r.block, r.scope, r.op_class, r.name, f"{r.ms:.6g}", f"{r.calls:g}"))


def read(path: Path) -> list[OpTime]:
    with path.open(newline="") as handle:
        return [
            OpTime(row["name"], row["scope"], row["op_class"], float(row["ms_per_inference"]),
                   float(row["calls_per_inference"]))
            for row in csv.DictReader(handle)
        ]  # fmt: skip


def merge(rows: Iterable[OpTime], iterations: int) -> list[OpTime]:
    """Rows of ``iterations`` profiled inferences (each kernel once per launch) as one row per (name, scope,
    class) with the mean time and launches per inference, in first-seen order."""
    merged: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        entry = merged.setdefault((row.name, row.scope, row.op_class), [0.0, 0.0])
        entry[0] += row.ms
        entry[1] += row.calls
    return [OpTime(n, s, c, ms / iterations, calls / iterations) for (n, s, c), (ms, calls) in merged.items()]


# -- joining an engine's names back to the exported graph -----------------------------------------------------------

_REFORMAT = re.compile(r"reformat|copynode", re.IGNORECASE)
_FOREIGN = re.compile(r"ForeignNode\[(?P<first>[^\]]*?)\.\.\.(?P<last>[^\]]*?)\]")


class NodeIndex:
    """Finds the exported graph's nodes named in an engine's kernel, node or layer name.

    TensorRT names a fused layer after the ONNX nodes it runs (``node_Conv_3 + node_relu``, ``PWN(node_Erf_5,
    node_Add_7)``; a Myelin region as ``{ForeignNode[node_mean...node_add_1]}``, every node between the two in
    graph order); ONNX Runtime keeps a node's name or, for nodes its layout passes rewrite, names the new node after
    the old node's output (``getitem_12_nchwc``). Both are looked up here, longest names first.
    """

    def __init__(self, nodes: list[OnnxNode], outputs: dict[str, str] | None = None) -> None:
        self.nodes = nodes
        self.position = {n.name: i for i, n in enumerate(nodes)}
        self.by_name = {n.name: n for n in nodes}
        for output, node in (outputs or {}).items():
            self.by_name.setdefault(output, self.by_name[node])
        self._pattern = re.compile(
            r"(?<![A-Za-z0-9])("
            + "|".join(re.escape(k) for k in sorted(self.by_name, key=len, reverse=True))
            + r")(?![A-Za-z0-9])"
        ) if self.by_name else None  # fmt: skip

    @classmethod
    def from_onnx(cls, path: Path) -> NodeIndex:
        model = onnx.load(str(path), load_external_data=False)
        outputs = {out: node.name for node in model.graph.node for out in node.output}
        return cls(onnx_nodes(path), outputs)

    def find(self, engine_name: str) -> list[OnnxNode]:
        """The nodes an engine entry names; a Myelin region whose ends are not both nodes gives none (its
        contents are unknown from the name alone)."""
        found: list[OnnxNode] = []
        for match in _FOREIGN.finditer(engine_name):
            first, last = self._position(match["first"]), self._position(match["last"])
            if first is None or last is None:
                return []
            found += self.nodes[min(first, last) : max(first, last) + 1]
        if self._pattern is not None:
            for match in self._pattern.finditer(_FOREIGN.sub("", engine_name)):
                node = self.by_name[match.group(1)]
                if node not in found:
                    found.append(node)
        return found

    def _position(self, name: str) -> int | None:
        """A region end's node: the name itself, or a node name it extends with a suffix (``node_add_706``)."""
        name = name.strip()
        if name in self.position:
            return self.position[name]
        prefixes = [n for n in self.position if name.startswith(n + "_")]
        return self.position[max(prefixes, key=len)] if prefixes else None

    def row(self, engine_name: str, ms: float, calls: float = 1.0, op: str = "", listed: Iterable[str] = ()) -> OpTime:
        """One engine entry as a row: its nodes' common module scope and their (possibly fused) class. ``listed``:
        the ONNX nodes the engine says the entry runs (TensorRT's layer metadata), else they are read from its
        name. An entry that names no node (a runtime's own copy) is classed by ``op`` or the words of its name."""
        nodes = [self.by_name[n] for n in listed if n in self.by_name] or self.find(engine_name)
        if nodes and _REFORMAT.search(engine_name):  # a copy the engine inserted in front of a node
            return OpTime(engine_name, common_scope(n.scope for n in nodes), "layout", ms, calls)
        if nodes:
            classes = {n.op_class for n in nodes}
            kernel = classify(op) if op else "other"  # what the runtime says it ran: a Conv named after its Relu
            if kernel != "other" and not (kernel == "conv" and classes & {"conv", "dwconv", "linear"}):
                classes.add(kernel)
            return OpTime(engine_name, common_scope(n.scope for n in nodes), fused_class(classes), ms, calls)
        if _FOREIGN.search(engine_name):
            return OpTime(engine_name, "", "other", ms, calls)
        if op and classify(op) != "other":
            return OpTime(engine_name, "", classify(op), ms, calls)
        words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", engine_name)
        op_class = fused_class(c for c in (classify(w) for w in words) if c != "other")
        return OpTime(engine_name, "", op_class, ms, calls)


def common_scope(scopes: Iterable[str]) -> str:
    """The deepest module path that contains every one of ``scopes``."""
    parts = [s.split(".") if s else [] for s in scopes]
    if not parts:
        return ""
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    return ".".join(common)
