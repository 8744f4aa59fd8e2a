"""ONNX export through the dynamo exporter, checked with ``onnx.checker``.

FP16/BF16 runs export a graph in that type (TensorRT 11 takes precision from the graph's types).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from blockbench.errors import ExportError

log = logging.getLogger(__name__)

# The exporter and its optimizer log every pass at INFO; keep a run's output readable.
_NOISY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch._export", "torch.export")

# Protobuf caps a single file at 2 GiB; larger graphs keep weights in a side file.
_SINGLE_FILE_LIMIT = 1_800_000_000


def export_onnx(model: nn.Module, sample: torch.Tensor, path: Path, opset: int) -> None:
    """Export ``model`` (already in the run's dtype) for ``sample``'s static shape and check the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    log.info("export: ONNX opset %d, %s, input %s -> %s", opset, sample.dtype, tuple(sample.shape), path.name)
    start = time.perf_counter()
    previous = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=["input"],
                output_names=["logits"],
                external_data=weight_bytes > _SINGLE_FILE_LIMIT,
                verbose=False,
            )
        onnx.checker.check_model(str(path), full_check=False)
    except Exception as exc:  # the exporter raises many unrelated types; report them as one stage failure
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
    seconds = time.perf_counter() - start
    log.info("export: done in %.1f s (%.1f MB)", seconds, path.stat().st_size / 1e6)
