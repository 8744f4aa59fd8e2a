"""``python -m blockbench.report runs-table``: one store's runs as a committed table, gathered over several sessions.

Per configuration either the median latency of each value of one param (``--column backend.mode``: one column per
torch mode, ``docs/gpu/torch_modes.md``) or chosen metrics (``--metrics engine_size_mb,...``:
``docs/tensorrt/rtx_builds_cpu.md``). The newest run of each configuration counts, so a re-run replaces an older
one; the report's tables take the median of repeats instead, which suits one sweep, not a store kept for weeks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from blockbench.report.data import AXES, newest_per_config, sort_rows
from blockbench.report.tables import displayed, to_markdown

CONFIG = list(AXES)


def latency_by_param(frame: pd.DataFrame, param: str, metric: str = "latency_ms_median") -> pd.DataFrame:
    """One row per configuration, one latency column per value of ``params.<param>``, and the largest CoV (%)."""
    column = f"params.{param}"
    newest = newest_per_config(frame, [column])
    table = newest.pivot_table(index=CONFIG, columns=column, values=metric, aggfunc="first")
    table["max CoV %"] = newest.groupby(CONFIG)["latency_cov"].max() * 100
    table = table.reset_index()
    table.columns.name = None
    return sort_rows(table, ["resolution", "precision", "norm", "act", "block"])


def metrics_by_config(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per configuration (its newest run), one column per metric; a metric no run logged is missing."""
    newest = newest_per_config(frame)
    table = newest[CONFIG].copy()
    for metric in metrics:
        table[metric] = newest[metric] if metric in newest else None
    return sort_rows(table, ["resolution", "precision", "block", "norm", "act"])


def provenance(frame: pd.DataFrame) -> str:
    """Where the numbers come from: the device and commit of the newest FINISHED run."""
    newest = frame[frame["status"] == "FINISHED"].sort_values("start_time").iloc[-1]
    return f"Device: {newest['device_name']}; commit {newest['git_commit']}."


def write_runs_table(table: pd.DataFrame, frame: pd.DataFrame, out: Path) -> list[Path]:
    """``out`` (Markdown under a provenance line) and ``out`` as ``.json`` (the raw values, one record per row)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"{provenance(frame)}\n\n{to_markdown(displayed(table))}\n")
    records = out.with_suffix(".json")
    records.write_text(json.dumps(json.loads(table.to_json(orient="records")), indent=1))
    return [out, records]
