"""The state a measurement actually ran under, read inside the measuring process as its timed window starts.

The config says what was asked for; this says what the process had: torch's thread pools, the TF32 and cuDNN
switches, the engine's own options (:meth:`Backend.runtime_state`), the GPU's clocks, and the Python threads alive
(the measuring thread should be the only one). Logged in ``environment.json`` and as ``state.*`` run parameters, so
two runs can be diffed in the MLflow UI.
"""

from __future__ import annotations

import os
import threading

import torch

from blockbench.measure.hardware import gpu_state

PARAM_PREFIX = "state."
# Environment variables that change what torch, inductor, cuDNN or the BLAS libraries do, recorded when set.
_ENVIRONMENT_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "TORCHINDUCTOR_", "TORCH_", "CUDNN_", "CUBLAS_", "NVIDIA_TF32")


def measured_state(device: torch.device) -> dict[str, str]:
    """Every setting that changes a measurement, as this process holds it now."""
    state = {
        "torch_num_threads": str(torch.get_num_threads()),
        "torch_num_interop_threads": str(torch.get_num_interop_threads()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": str(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": str(torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": str(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": str(torch.backends.cudnn.deterministic),
        "cudnn_enabled": str(torch.backends.cudnn.enabled),
        "deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()),
        "python_threads": ",".join(sorted(t.name for t in threading.enumerate())),
        "pid": str(os.getpid()),
    }
    for name, value in sorted(os.environ.items()):
        if name.startswith(_ENVIRONMENT_PREFIXES):
            state[f"env_{name}"] = value
    if device.type == "cuda":
        state.update({f"gpu_{key}": f"{value:g}" for key, value in gpu_state(device).items()})
    return state


def as_params(state: dict[str, str]) -> dict[str, str]:
    """The state as run parameters (``state.<key>``), the pid left out (it differs on every run)."""
    return {f"{PARAM_PREFIX}{key}": value for key, value in state.items() if key != "pid"}
