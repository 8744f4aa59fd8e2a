"""Time attribution for the PyTorch backend through ``torch.profiler``.

Eager and CUDA-graph engines run the same kernels (a graph replays what eager launched at capture), so both are
profiled on the eager forward with a ``record_function`` range around every module (forward hooks): each kernel
(on the CPU: each top-level operator) belongs to the innermost module range it was launched from. Compiled
engines (``torch.compile``, AOTInductor) run inductor's kernels, which no module range reaches: each is classed by
the operators its name lists (inductor names kernels after the original aten ops: ``triton_poi_fused_convolution_
relu_0``) and library kernels (cuDNN, cuBLAS) by the aten call that launched them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from blockbench.measure.attribution import OpTime, classify, conv_class, fused_class, merge

SCOPE_PREFIX = "blockbench::"
_BLOCKS = ("VGGBlock", "ResNetBlock", "MobileNetBlock", "ConvNeXtBlock")


@contextmanager
def module_ranges(model: nn.Module) -> Iterator[dict[str, nn.Module]]:
    """A profiler range named after each module's path around its forward, while inside; yields path -> module."""
    modules = dict(model.named_modules())
    open_ranges: list[Any] = []

    def enter(module: nn.Module, _args: object) -> None:
        scope = record_function(SCOPE_PREFIX + names[id(module)])
        scope.__enter__()
        open_ranges.append(scope)

    def leave(_module: nn.Module, _args: object, _output: object) -> None:
        open_ranges.pop().__exit__(None, None, None)

    names = {id(m): path for path, m in modules.items()}
    handles = [
        h for m in modules.values() for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))
    ]
    try:
        yield modules
    finally:
        for handle in handles:
            handle.remove()


def _profiled(run: Callable[[], None], iterations: int, device: torch.device) -> tuple[Any, float]:
    """The profiler's events over ``iterations`` calls of ``run`` and the wall time per call while profiled
    (CUDA events on the current stream, or the host clock after each synchronous call)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iterations):
                run()
            end.record()
            end.synchronize()
            wall = start.elapsed_time(end) / iterations
        else:
            begin = time.perf_counter_ns()
            for _ in range(iterations):
                run()
            wall = (time.perf_counter_ns() - begin) / 1e6 / iterations
    return prof, wall


def eager_rows(
    model: nn.Module, run: Callable[[], None], iterations: int, device: torch.device
) -> tuple[list[OpTime], float]:
    """Rows per kernel (CUDA) or per top-level operator (CPU) of the eager forward, by module, and the profiled
    wall time per inference. ``run`` calls ``model`` once."""
    with module_ranges(model) as modules:
        prof, wall = _profiled(run, iterations, device)
    rows = []
    for event in prof.events():
        if event.name.startswith(SCOPE_PREFIX) or event.device_type != torch.autograd.DeviceType.CPU:
            continue
        parent = event.cpu_parent
        scope_event = parent
        while scope_event is not None and not scope_event.name.startswith(SCOPE_PREFIX):
            scope_event = scope_event.cpu_parent
        if scope_event is None:  # outside the model's forward (the profiler's own work)
            continue
        scope = scope_event.name.removeprefix(SCOPE_PREFIX)
        module = modules.get(scope)
        op_class = _module_op_class(_aten_name(event), module, scope)
        if device.type == "cuda":
            rows += [
                OpTime(kernel.name, scope, _layout_kernel(kernel.name) or op_class, kernel.duration / 1000.0)
                for kernel in event.kernels
            ]
        elif parent is scope_event:  # a top-level operator: its whole subtree's CPU time, once
            rows.append(OpTime(event.name, scope, op_class, event.cpu_time_total / 1000.0))
    return merge(rows, iterations), wall


_LAYOUT_KERNELS = re.compile(r"nchwToNhwc|nhwcToNchw|Memset|Memcpy|memcpy", re.IGNORECASE)


def _layout_kernel(kernel: str) -> str:
    """``layout`` for the format conversions and memsets a library runs around its kernel (cuDNN converts NCHW
    to NHWC and back around a tensor-core convolution): a cost of the memory format, not of the operator."""
    return "layout" if _LAYOUT_KERNELS.search(kernel) else ""


def _aten_name(event: Any) -> str:
    """The aten operator an event belongs to: itself, or the nearest enclosing one (a kernel launch's caller)."""
    while event is not None and not event.name.startswith("aten::"):
        event = event.cpu_parent
    return event.name if event is not None else ""


def _module_op_class(op: str, module: nn.Module | None, scope: str) -> str:
    if isinstance(module, nn.Conv2d):
        return conv_class(module.groups, module.in_channels, tuple(module.kernel_size))
    name = type(module).__name__ if module is not None else ""
    return classify(op, name, in_block=name in _BLOCKS)


# Inductor kernel-name parts (original aten ops) and their classes, longest first so ``addmm`` is not ``mm``.
_INDUCTOR_OPS = {
    "_native_batch_norm_legit_no_training": "norm",
    "native_batch_norm": "norm",
    "native_layer_norm": "norm",
    "batch_norm": "norm",
    "layer_norm": "norm",
    "var_mean": "norm",
    "rsqrt": "norm",
    "convolution": "conv",
    "max_pool2d_with_indices": "pool",
    "adaptive_avg_pool2d": "pool",
    "max_pool2d": "pool",
    "avg_pool2d": "pool",
    "addmm": "linear",
    "bmm": "linear",
    "mm": "linear",
    "relu": "act",
    "gelu": "act",
    "erf": "act",
    "tanh": "act",
    "sigmoid": "act",
    "permute": "layout",
    "clone": "layout",
    "_to_copy": "layout",
    "copy": "layout",
    "view": "layout",
    "cat": "layout",
}
_ELEMENTWISE = ("mean", "sqrt", "pow", "sub", "div", "mul", "add")
_TRITON = re.compile(r"^triton_[a-z]+_(?:fused_)?(?P<ops>.*?)(?:_\d+)?$")
_LIBRARY_KERNELS = (("conv", "conv"), ("fprop", "conv"), ("implicit", "conv"), ("gemm", "linear"), ("gemv", "linear"))


def inductor_kernel_class(kernel: str) -> str:
    """The class of a kernel inductor generated, from the aten ops its name lists; several classes make it
    ``fused: ...``. A LayerNorm written out op by op (mean, sub, pow, sqrt, div) is a norm; a lone mean is the
    global average pool."""
    match = _TRITON.match(kernel)
    if not match:
        return "other"
    rest, found = match["ops"], set()
    for op in sorted(_INDUCTOR_OPS, key=len, reverse=True):
        if re.search(rf"(?:^|_){re.escape(op)}(?:_|$)", rest):
            found.add(_INDUCTOR_OPS[op])
            rest = re.sub(rf"(?:^|_){re.escape(op)}(?=_|$)", "", rest)
    words = set(filter(None, rest.split("_")))
    if "mean" in words and words & {"sqrt", "pow", "div"}:
        found.add("norm")
    elif words == {"mean"}:
        found.add("pool")
    elif words & set(_ELEMENTWISE) and not found:
        found.add("other")
    return fused_class(found) if found else "other"


def compiled_rows(run: Callable[[], None], iterations: int, device: torch.device) -> tuple[list[OpTime], float]:
    """Rows per kernel of a compiled engine (CUDA only: inductor's CPU kernels are invisible to the profiler)."""
    prof, wall = _profiled(run, iterations, device)
    rows = []
    for event in prof.events():
        for kernel in event.kernels:
            rows.append(OpTime(kernel.name, "", _compiled_class(kernel.name, event), kernel.duration / 1000.0))
    return merge(rows, iterations), wall


def _compiled_class(kernel: str, launcher: Any) -> str:
    """A triton kernel by its name; a library kernel by the aten op that launched it (convolutions by their weight
    shape: depthwise, pointwise or dense), else by words in its name."""
    if kernel.startswith("triton_"):
        return inductor_kernel_class(kernel)
    if _layout_kernel(kernel):
        return "layout"
    event = launcher
    while event is not None:
        name = event.name.removeprefix("aten::")
        if name in ("convolution", "_convolution", "cudnn_convolution") and len(event.input_shapes) > 1:
            data, weight = event.input_shapes[0], event.input_shapes[1]
            if len(data) == 4 and len(weight) == 4 and weight[1]:
                return conv_class(data[1] // weight[1], data[1], tuple(weight[2:]))
        op_class = classify(name)
        if op_class != "other":
            return op_class
        event = event.cpu_parent
    lowered = kernel.lower()
    return next((kind for word, kind in _LIBRARY_KERNELS if word in lowered), "other")
