"""One CSV writer for the benchmark scripts: every key any row has, the given leading columns first."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def write_rows(path: Path, rows: Sequence[dict[str, object]], leading: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k not in leading, k))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
