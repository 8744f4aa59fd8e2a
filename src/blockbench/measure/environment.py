"""The environment record logged with every run: what, besides the config, a result depends on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from blockbench.build import sources

SOURCE_TAG = "source_sha256"  # the environment field and run tag holding source_sha256()

# Libraries that compute a result (they enter the resume fingerprint), then the tooling around them.
RESULT_PACKAGES = (
    "torch",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorrt",
    "tensorrt-cu13",
    "tensorrt-cu12",
    "tensorrt-rtx-cu13",
    "tensorrt-rtx-cu12",
    "numpy",
    "ultralytics-thop",
    "ptflops",
)
PACKAGES = (*RESULT_PACKAGES, "mlflow", "hydra-core", "omegaconf")


def package_version(package: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts(device: torch.device) -> dict[str, Any]:
    """Name, compute capability, memory and driver of a CUDA device (empty on CPU)."""
    if device.type != "cuda":
        return {}
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    facts: dict[str, Any] = {
        "gpu_name": props.name,
        "gpu_compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory_gb": round(props.total_memory / 2**30, 1),
        "gpu_multiprocessors": props.multi_processor_count,
        "gpu_uuid": str(getattr(props, "uuid", "")),
    }
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        facts["gpu_driver"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        facts["gpu_driver"] = None
    return facts


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


@lru_cache(maxsize=1)
def git_commit(root: Path) -> str:
    """HEAD of the project checkout, with ``-dirty`` when the tree has changes; ``unknown`` outside git.

    ``BLOCKBENCH_GIT_COMMIT`` names the commit where the code runs from a copy without ``.git`` (containers,
    remote GPU machines). The name is not checked here: :func:`source_sha256`, recorded beside it, is what the
    report compares with the named commit's tree.
    """
    if os.environ.get("BLOCKBENCH_GIT_COMMIT"):
        return os.environ["BLOCKBENCH_GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@lru_cache(maxsize=1)
def source_sha256() -> str:
    """SHA-256 of the code that runs (every ``src/blockbench/**/*.py`` and ``conf/`` file as this process reads
    them, :func:`blockbench.build.sources.checkout_files`): what a commit name claims, made checkable."""
    return sources.tree_sha256(sources.checkout_files())


def source_tags() -> dict[str, str]:
    """Run tags naming the code that ran (set with the run's other tags)."""
    return {SOURCE_TAG: source_sha256()}


def environment_record(device: torch.device, root: Path) -> dict[str, Any]:
    """Versions of Python and every library in the pipeline, CUDA/cuDNN, the CPU and the GPU."""
    record: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": torch.get_num_threads(),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "git_commit": git_commit(root),
        SOURCE_TAG: source_sha256(),
        "packages": {name: version for name in PACKAGES if (version := package_version(name))},
    }
    record.update(gpu_facts(device))
    return record
