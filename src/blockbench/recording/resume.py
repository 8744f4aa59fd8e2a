"""What makes two jobs "the same measurement": the config hash a resumed sweep matches FINISHED runs by.

A sweep re-run skips a config when the experiment already has a FINISHED run with the same hash (unless
``run.force=true``). The hash covers exactly what can change a result:

* the resolved config **minus** keys that only say where or how results are recorded or shown —
  :data:`RESULT_NEUTRAL_KEYS`: ``tracking.*`` (store, experiment, run name, what to log), ``work_dir`` and
  ``cache_dir`` (locations), ``run.*`` (this policy itself), ``benchmark.progress`` (a progress bar),
  ``backend.log_level`` (how much TensorRT prints) — with
  ``hardware.device`` replaced by the device it resolves to (``cuda`` and ``cuda:0`` are one device);
* the environment: device name (CPU model or GPU name), GPU driver, Python, CUDA and cuDNN versions, and the
  versions of every library on the measured path (:data:`RESULT_PACKAGES`);
* the code that defines the measurement: a hash of :data:`MEASUREMENT_SOURCES` (the network, its counts, the
  export and quantization, the harness and its statistics, the job's sequence and parity check) and of the chosen
  backend's package (``backends/<name>/``), so editing any of them makes the next sweep measure again;
* :data:`FINGERPRINT_VERSION`, the layout of this fingerprint.

Deliberately **not** in it: the git commit and the rest of the code (a README, docs or report fix must not
invalidate a GPU-day of results), the host name (two identical machines measure the same thing) and MLflow/Hydra
versions (they record, they do not measure).
"""

from __future__ import annotations

import platform
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from blockbench.build import sources
from blockbench.build.cache import digest
from blockbench.measure.environment import RESULT_PACKAGES, device_name, gpu_facts, package_version

FINGERPRINT_VERSION = 2
# The package's sources (globs under src/blockbench) that decide what any config measures; the chosen backend's
# own package is added per job (:func:`measurement_sources`). Recording, tracking, sweeps and the report are not.
MEASUREMENT_SOURCES = (
    "models/*.py",
    "build/complexity.py",
    "build/export.py",
    "build/quantize.py",
    "axes/*.py",
    "measure/hardware.py",
    "measure/harness.py",
    "measure/timer.py",
    "measure/settings.py",
    "measure/statistics.py",
    "measure/latencies.py",
    "measure/energy.py",
    "measure/attribution.py",
    "job/engine.py",
    "job/execute.py",
    "job/launch.py",
    "job/trials.py",
    "job/observation.py",
    "measure/observer.py",
    "job/materials.py",
    "backends/registry.py",
    "backends/base.py",
)
RESULT_NEUTRAL_KEYS = ("tracking", "work_dir", "cache_dir", "run", "benchmark.progress", "backend.log_level", "hydra")


def result_config(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """The resolved config without :data:`RESULT_NEUTRAL_KEYS`, with the resolved device."""
    config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    for dotted in RESULT_NEUTRAL_KEYS:
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    config.setdefault("hardware", {})["device"] = str(device)
    return config


def result_environment(device: torch.device) -> dict[str, Any]:
    """The parts of the environment a latency or a parity error depends on."""
    env: dict[str, Any] = {
        "device_name": device_name(device),
        "python": platform.python_version(),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "packages": {name: version for name in RESULT_PACKAGES if (version := package_version(name))},
    }
    if device.type == "cuda":
        env["gpu_driver"] = gpu_facts(device).get("gpu_driver")
    return env


def measurement_sources(backend: str) -> dict[str, str]:
    """SHA-256 of the code a job of ``backend`` measures with: the shared sources and the backend's package."""
    return {
        "measurement": sources.sources_sha256(MEASUREMENT_SOURCES),
        "backend": sources.sources_sha256((f"backends/{backend}/**/*.py",)),
    }


def fingerprint(cfg: DictConfig, device: torch.device, build_only: bool = False) -> dict[str, Any]:
    """Everything the config hash covers, as a JSON-able dict (logged as ``fingerprint.json``).

    A build-only run (an engine, no latency) is another measurement than a timed one of the same config, so a
    FINISHED build-only run never makes a sweep skip the timed run; timed runs keep the hash they always had.
    """
    fp: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "config": result_config(cfg, device),
        "environment": result_environment(device),
        "sources_sha256": measurement_sources(str(cfg.backend.name)),
    }
    if build_only:
        fp["build_only"] = True
    return fp


def config_hash(fp: dict[str, Any]) -> str:
    """SHA-256 of the fingerprint's canonical JSON."""
    return digest(fp)
