"""Engine I/O metadata -> the torch buffers a step binds: one input fed from the job, every output kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from blockbench.backends.tensorrt.diagnostics import EngineRuntimeError

# Element types the bindings report (by name) that torch can hold.
TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int32": torch.int32,
    "int64": torch.int64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


@dataclass(frozen=True)
class TensorInfo:
    """One I/O tensor as the engine declares it (``-1`` marks a dimension set at run time)."""

    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class BufferSpec:
    """A concrete buffer to allocate and bind."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype


def _torch_dtype(tensor: TensorInfo) -> torch.dtype:
    if tensor.dtype not in TORCH_DTYPES:
        raise EngineRuntimeError(
            f"engine tensor {tensor.name!r} has element type {tensor.dtype}, which blockbench cannot feed "
            f"(supported: {', '.join(TORCH_DTYPES)})"
        )
    return TORCH_DTYPES[tensor.dtype]


def plan_input(tensors: Sequence[TensorInfo], shape: tuple[int, ...]) -> BufferSpec:
    """The engine's single input, with run-time dimensions taken from the job's input ``shape``."""
    inputs = [t for t in tensors if t.is_input]
    if len(inputs) != 1:
        names = ", ".join(t.name for t in inputs) or "none"
        raise EngineRuntimeError(f"the engine has {len(inputs)} inputs ({names}); blockbench feeds exactly one")
    tensor = inputs[0]
    fits = len(tensor.shape) == len(shape) and all(d in (-1, s) for d, s in zip(tensor.shape, shape, strict=True))
    if not fits:
        raise EngineRuntimeError(f"engine input {tensor.name!r} has shape {tensor.shape}; the job feeds {shape}")
    return BufferSpec(tensor.name, tuple(shape), _torch_dtype(tensor))


def plan_outputs(tensors: Sequence[TensorInfo], shape_of: Callable[[str], tuple[int, ...]]) -> tuple[BufferSpec, ...]:
    """Every output, its shape resolved by the execution context once the input shape is set."""
    specs = []
    for tensor in tensors:
        if tensor.is_input:
            continue
        shape = tuple(shape_of(tensor.name))
        if any(d < 0 for d in shape):
            raise EngineRuntimeError(f"engine output {tensor.name!r} has unresolved shape {shape}")
        specs.append(BufferSpec(tensor.name, shape, _torch_dtype(tensor)))
    if not specs:
        raise EngineRuntimeError("the engine has no outputs")
    return tuple(specs)


def allocate(specs: Sequence[BufferSpec], device: torch.device) -> dict[str, torch.Tensor]:
    """One contiguous tensor per spec; TensorRT is given their addresses, so they must outlive the context."""
    return {spec.name: torch.empty(spec.shape, dtype=spec.dtype, device=device) for spec in specs}
