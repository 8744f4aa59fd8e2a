"""``latencies.csv``, the file of every kept sample of a run: its one writer and its one reader.

Columns ``timing,sample,latency_ms``; ``timing`` names the series: ``per_request``, ``pipelined`` (one per batch),
and per request ``enqueue`` and the end-to-end parts ``h2d``, ``compute``, ``d2h`` where measured. Files written
before the ``timing`` column existed hold per-request samples only (``sample,latency_ms``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILE = "latencies.csv"
HEADER = "timing,sample,latency_ms"


def write(path: Path, series: Sequence[tuple[str, np.ndarray]]) -> None:
    """One row per sample of each ``(name, samples)`` series."""
    with path.open("w") as out:
        out.write(HEADER + "\n")
        for name, samples in series:
            for index, value in enumerate(samples):
                out.write(f"{name},{index},{value:.6f}\n")


def read(text: str, timing: str = "per_request") -> np.ndarray:
    """The samples of one series (empty if the file has none of it)."""
    lines = text.strip().splitlines()
    if not lines:
        return np.empty(0)
    if lines[0].split(",")[0] != "timing":  # the older, per-request-only layout
        if timing != "per_request":
            return np.empty(0)
        return np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=1, ndmin=1)
    values = [float(v) for name, _, v in (line.split(",") for line in lines[1:]) if name == timing]
    return np.asarray(values, dtype=float)
