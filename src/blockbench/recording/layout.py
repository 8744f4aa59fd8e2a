"""The files of a job's folder and the atomic writer every one of them goes through (a leaf: imports nothing of
the package but the cache's writer)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blockbench.build.cache import atomic_write

ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"  # precision=int8: the QDQ graph the ONNX engines build from
RUN_FILE = "run.json"  # tracking off: what the run would have logged
CONFIG_FILE = "config.yaml"  # the resolved config
ENVIRONMENT_FILE = "environment.json"  # the environment record and the state the measurement ran under
FINGERPRINT_FILE = "fingerprint.json"  # what the resume hash is computed from
WORKER_LOG = "worker.log"  # what the measuring process wrote to its stdout and stderr
TRIALS_FILE = "trials.csv"  # benchmark.trials >= 2: one row per trial (its median, interval, build, stop reason)
TRIALS_DIR = "trials"  # the folders of trials after the first (their worker logs are kept)
SWEEP_FILE = "sweep.json"  # in a sweep's folder: its id, store, overrides and parent run
RESULT_FILE = "result.json"  # in each job's folder of a sweep: how the job ended
LEGACY_ENGINE_FILES = "engine_files.json"  # where folders written before run.json listed the engine files


def onnx_files(work: Path) -> list[Path]:
    """The exported graph and, for int8, its quantized form, with any external-data side files."""
    return sorted(path for name in (ONNX_FILE, INT8_ONNX_FILE) for path in work.glob(f"{name}*"))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON via a temporary file and a rename, so a reader (or a kill) never sees half a file."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=False).encode())
