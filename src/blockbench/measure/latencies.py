"""``latencies.csv``, the file of every kept sample of a run: its one writer and its one reader.

Columns ``trial,timing,sample,latency_ms``; ``trial`` is the 0-based trial (``benchmark.trials``: each a fresh
process and build), ``timing`` names the series: ``per_request``, ``pipelined`` (one per batch), and per request
``enqueue`` and the end-to-end parts ``h2d``, ``compute``, ``d2h`` where measured. Older files have no ``trial``
column (one trial: ``timing,sample,latency_ms``) or hold per-request samples only (``sample,latency_ms``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILE = "latencies.csv"
HEADER = "trial,timing,sample,latency_ms"
Series = Sequence[tuple[str, np.ndarray]]  # (timing, samples) of one trial


def write(path: Path, trials: Sequence[Series]) -> None:
    """One row per sample of each ``(timing, samples)`` series of each trial."""
    with path.open("w") as out:
        out.write(HEADER + "\n")
        for trial, series in enumerate(trials):
            for name, samples in series:
                for index, value in enumerate(samples):
                    out.write(f"{trial},{name},{index},{value:.6f}\n")


def read_trials(text: str, timing: str = "per_request") -> list[np.ndarray]:
    """The samples of one series, one array per trial that has any (an empty list if none has)."""
    lines = text.strip().splitlines()
    if not lines:
        return []
    columns = lines[0].split(",")
    if columns[0] == "sample":  # the oldest, per-request-only layout
        if timing != "per_request":
            return []
        values = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=1, ndmin=1)
        return [values] if values.size else []
    by_trial: dict[int, list[float]] = {}
    with_trial = columns[0] == "trial"
    for line in lines[1:]:
        fields = line.split(",")
        trial, name, value = (int(fields[0]), fields[1], fields[3]) if with_trial else (0, fields[0], fields[2])
        if name == timing:
            by_trial.setdefault(trial, []).append(float(value))
    return [np.asarray(by_trial[t], dtype=float) for t in sorted(by_trial)]


def read(text: str, timing: str = "per_request") -> np.ndarray:
    """The samples of one series, every trial's together (empty if the file has none of it)."""
    found = read_trials(text, timing)
    return np.concatenate(found) if found else np.empty(0)
