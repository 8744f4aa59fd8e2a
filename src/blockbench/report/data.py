"""MLflow runs -> one tidy frame: a row per job, the paper's axes as columns, and an engine label per row.

Everything the report shows is derived from this frame, so the meaning of a "cell" (which runs are repeats of one
configuration) is decided here once; which runs (one sweep, several, or a whole experiment) is
:mod:`blockbench.report.store`'s choice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from blockbench.axes.blocks import ACT_LABELS, ACTIVATIONS, BLOCK_LABELS, BLOCKS, NORM_LABELS, NORMS
from blockbench.axes.precisions import NAMES, PRECISIONS
from blockbench.report.verdict import STRICT_FP32
from blockbench.tracking import PARENT_TAG

log = logging.getLogger(__name__)


# The paper's table axes, in the paper's order; values not listed (a future block or norm) sort after these.
AXES = ("block", "norm", "act", "resolution", "precision")
BLOCK_ORDER, NORM_ORDER, ACT_ORDER, PRECISION_ORDER = BLOCKS, NORMS, ACTIVATIONS, NAMES
BLOCK_NAMES, NORM_NAMES, ACT_NAMES = BLOCK_LABELS, NORM_LABELS, ACT_LABELS
PRECISION_NAMES = {p.name: p.label for p in PRECISIONS.values()}
# How the report prints a precision: the record's label, but "strict FP32" for fp32 (TF32 off), unlike the
# paper's FP32 column (TensorRT's default, TF32 allowed), which our TF32 is.
PRECISION_SHOWN = PRECISION_NAMES | {"fp32": STRICT_FP32}

# Where each axis lives: a tag set by the pipeline, else the flattened config param.
AXIS_SOURCES = {
    "block": ("tags.block", "params.block.name"),
    "norm": ("tags.norm", "params.norm.name"),
    "act": ("tags.act", "params.act.name"),
    "resolution": ("tags.resolution", "params.resolution.size"),
    "precision": ("tags.precision", "params.precision.name"),
    "backend": ("tags.backend", "params.backend.name"),
}

# Params that never make two runs different configurations: bookkeeping, the measurement protocol, the seed,
# and the axes themselves. Every other param that differs between runs of one cell becomes part of the label.
IGNORED_PARAMS = (
    "tracking.",
    "run.",
    "work_dir",
    "cache_dir",
    "seed",
    "benchmark.progress",
    "benchmark.trials",
    "benchmark.trial_builds",
    "benchmark.target_precision",
    "benchmark.throttle",
    "benchmark.throttle_clock_fraction",
    "benchmark.warmup_iters",
    "benchmark.warmup_s",
    "benchmark.min_iters",
    "benchmark.min_s",
    "benchmark.max_s",
    "benchmark.parity",
    "block.",
    "norm.",
    "act.",
    "resolution.",
    "precision.",
    "backend.name",
)
# Label parts shown as bare values (everything else as ``key=value``).
BARE_VALUE_KEYS = ("backend.mode", "benchmark.mode", "hardware.device", "device_name")

OK, FAILED = "ok", "failed"
BUILT = "built"  # every FINISHED run of the cell was build-only: an engine, no latency (never a failure, never 0)
BUILT_MARK = "built, not timed"


def order_key(axis: str, value: Any) -> tuple[int, Any]:
    """Sort key that puts known values in the paper's order and anything else after, alphabetically."""
    known = {"block": BLOCK_ORDER, "norm": NORM_ORDER, "act": ACT_ORDER, "precision": PRECISION_ORDER}.get(axis, ())
    if value in known:
        return (known.index(value), "")
    if axis == "resolution":
        return (0, int(value))
    return (len(known), str(value))


def ordered(axis: str, values: Sequence[Any]) -> list[Any]:
    return sorted(set(values), key=lambda v: order_key(axis, v))


def sort_rows(table: pd.DataFrame, by: Sequence[str], paper_order: Sequence[str] = ("block",)) -> pd.DataFrame:
    """Rows sorted by the columns ``by``: those in ``paper_order`` in the paper's order of their axis, others by
    value (committed tables keep the order they were published in)."""

    def key(column: pd.Series) -> pd.Series:
        return column.map(lambda v: order_key(str(column.name), v)) if column.name in paper_order else column

    return table.sort_values(list(by), key=key).reset_index(drop=True)


@dataclass
class RunSet:
    """The runs one report covers and where they came from."""

    frame: pd.DataFrame  # one row per child run (FINISHED, FAILED, KILLED, RUNNING)
    tracking_uri: str
    experiment: str
    experiment_id: str
    parents: list[dict[str, str]] = field(default_factory=list)  # run_id, run_name, status of each sweep
    variant_keys: list[str] = field(default_factory=list)

    @property
    def finished(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] == "FINISHED"]

    @property
    def labels(self) -> list[str]:
        return sorted(self.frame["label"].dropna().unique(), key=label_order)


def label_order(label: str) -> tuple[int, str]:
    """Engines in a stable order: ONNX Runtime, PyTorch eager, then the rest alphabetically."""
    rank = {"onnxruntime": 0, "torch": 1, "torch eager": 1, "tensorrt": 3}
    return (rank.get(label, 2), label)


def _first(row: pd.Series, columns: Sequence[str]) -> Any:
    for column in columns:
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and value != "":
            return value
    return None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def tidy(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """search_runs columns -> axes, status, metrics (unprefixed), params (kept as ``params.*``) and a label."""
    rows = []
    for _, run in raw.iterrows():
        row: dict[str, Any] = {
            "run_id": run["run_id"],
            "run_name": run.get("tags.mlflow.runName"),
            "status": run.get("status"),
            "start_time": run.get("start_time"),
            "error": run.get("tags.error"),
            "error_stage": run.get("tags.error_stage"),
            "build_only": run.get("tags.build_only") == "true",
            "parity": run.get("tags.parity"),
            "device_name": run.get("tags.device_name"),
            "git_commit": run.get("tags.git_commit"),
            "source_sha256": run.get("tags.source_sha256"),  # the code that ran (report/provenance.py)
            "parent_run_id": run.get(f"tags.{PARENT_TAG}"),
            "artifact_uri": run.get("artifact_uri"),
        }
        for axis, sources in AXIS_SOURCES.items():
            row[axis] = _first(run, sources)
        for column, value in run.items():
            if column.startswith("metrics."):
                row[column.removeprefix("metrics.")] = value
            elif column.startswith("params."):
                row[column] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.dropna(subset=["block", "norm", "act", "resolution", "precision"])
    frame["resolution"] = frame["resolution"].astype(int)
    for name in ("error", "error_stage"):
        frame[name] = frame[name].where(frame[name].notna(), None)
    keys = variant_keys(frame)
    frame["label"] = [make_label(row, keys) for _, row in frame.iterrows()]
    return frame.reset_index(drop=True), keys


def variant_keys(frame: pd.DataFrame) -> list[str]:
    """Params (and the device) that differ between runs of the same paper cell: they name the table's engines.

    A missing value (a key the other backend does not have) is not a difference; a repeat of one configuration
    has no differing key and stays in one cell (aggregated).
    """
    candidates = ["backend", "device_name"] + [
        c for c in frame.columns if c.startswith("params.") and not c.removeprefix("params.").startswith(IGNORED_PARAMS)
    ]
    columns = [c for c in candidates if c in frame]
    values = frame[columns]
    as_text = values.astype(str).where(values.notna())  # 1 and "1" are one value; missing stays missing
    differing = as_text.groupby([frame[axis] for axis in AXES], dropna=False).nunique().gt(1).any()
    return [c for c in columns if differing[c]]


def make_label(row: pd.Series, keys: Sequence[str]) -> str:
    """Engine label of a run: the backend, then the values of the varying keys (``torch cuda_graph``)."""
    parts = [str(row.get("backend") or "unknown")]
    for key in keys:
        if key == "backend":
            continue
        value = row.get(key)
        if _is_missing(value):
            continue
        short = key.removeprefix("params.")
        parts.append(str(value) if short in BARE_VALUE_KEYS else f"{short.split('.')[-1]}={value}")
    return " ".join(parts)


def cells(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (axes, label): the metric's median over FINISHED repeats, run counts and a cell state.

    A cell with no FINISHED run but a FAILED/KILLED one is ``failed``; one whose FINISHED runs are all build-only
    (an engine built for GPUs the machine did not have) is ``built``; either way its value stays NaN (never zero).
    """
    out = []
    for key, group in frame.groupby([*AXES, "label"], dropna=False):
        done = group[group["status"] == "FINISHED"]
        values = done[metric].dropna() if metric in done else pd.Series(dtype=float)
        record = dict(zip([*AXES, "label"], key, strict=True))
        record.update(
            value=float(values.median()) if len(values) else math.nan,
            n_runs=len(values),
            n_failed=int((group["status"] != "FINISHED").sum()),
            state=OK if len(values) else (BUILT if len(done) and done["build_only"].all() else FAILED),
            params_count=_mode(done.get("params_count")),
            macs=_mode(done.get("macs")),
            error=next((e for e in group["error"] if e), None),
            run_ids=tuple(done.loc[done[metric].notna(), "run_id"]) if metric in done else (),
        )
        out.append(record)
    columns = [*AXES, "label", "value", "n_runs", "n_failed", "state", "params_count", "macs", "run_ids"]
    return pd.DataFrame(out, columns=columns)


def newest_per_config(frame: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """The newest FINISHED run of each configuration (and value of ``keys``), for tables gathered over several
    sessions, where a re-run supersedes an older run instead of being a repeat (that is :func:`cells`' median).

    A column the newest run lacks keeps the value of the newest run that has it; a run without a value for one
    of ``keys`` is left out.
    """
    done = frame[frame["status"] == "FINISHED"].sort_values("start_time")
    return done.groupby([*AXES, *keys], as_index=False).last()


def _mode(series: pd.Series | None) -> float:
    if series is None:
        return math.nan
    series = series.dropna()
    return float(series.mode().iloc[0]) if len(series) else math.nan
