"""What the measuring scripts share: every job's metrics as CSV rows (every key any row has, the given leading
columns first), and the table for people, written by the report's Markdown writer, shown row by row as jobs end."""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from blockbench.report.tables import to_markdown


def write_rows(path: Path, rows: Sequence[Mapping[str, object]], leading: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k not in leading, k))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def with_interval(metrics: Mapping[str, float], median: str, low: str, high: str) -> str:
    """``1.234 [1.230, 1.240]``: a median and its 95 % interval, as the tables show them."""
    return f"{metrics[median]:.3f} [{metrics[low]:.3f}, {metrics[high]:.3f}]"


def show_progress(row: Mapping[str, object]) -> None:
    """A finished job's row on stderr at once: the whole table comes only when every job has run."""
    print(" | ".join(str(value) for value in row.values()), file=sys.stderr, flush=True)


def markdown(rows: Sequence[Mapping[str, object]]) -> str:
    """The rows as one Markdown table; a column a row lacks (a failed job has no latency) is blank there."""
    return to_markdown(pd.DataFrame(list(rows)).fillna(""))
