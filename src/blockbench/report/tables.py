"""The paper's Tables 1–3 rebuilt from our runs: one table per resolution, one latency column per precision and
engine, optionally the paper's own numbers beside ours.

A cell is a number, ``FAILED`` (every run of it failed), ``built, not timed`` (an engine built, for GPUs the
measuring machine did not have) or ``—`` (never run); never a zero.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from blockbench.report.data import (
    ACT_NAMES,
    BLOCK_NAMES,
    BUILT,
    BUILT_MARK,
    FAILED,
    NORM_NAMES,
    PRECISION_SHOWN,
    RunSet,
    cells,
    ordered,
)
from blockbench.report.paper import PAPER_ROWS

NOT_RUN_MARK = "—"
FAILED_MARK = "FAILED"
ID_COLUMNS = ["Architecture", "Resolution", "Norm", "Act", "#Params", "MACs"]
PAPER_COLUMNS = ["Paper #Params", "Paper MACs", "Paper FP32 (ms)", "Paper FP16 (ms)"]


@dataclass
class Table:
    """One resolution's table: display strings for Markdown, raw values (or FAILED / empty) for CSV."""

    resolution: int
    display: pd.DataFrame
    raw: pd.DataFrame
    latency_columns: list[str]


def fmt_count(value: float | None, prefix: str = "M") -> str:
    """94053706 -> '94.05 M' in the paper's unit (M for params, G for MACs); tiny models drop to a smaller
    prefix instead of printing 0.00; missing -> '—'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_RUN_MARK
    scales = {"G": 1e9, "M": 1e6, "K": 1e3}
    names = list(scales)
    for name in names[names.index(prefix) :]:
        if abs(value) >= 0.1 * scales[name]:
            return f"{value / scales[name]:.2f} {name}"
    return f"{value:.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.3f}"


def latency_column(precision: str, label: str) -> str:
    return f"{PRECISION_SHOWN.get(precision, precision.upper())} {label} (ms)"


def paper_lookup() -> dict[tuple[str, int, str, str], tuple[float, float, float, float]]:
    return {
        (r.block, r.resolution, r.norm, r.act): (r.params_m * 1e6, r.macs_g * 1e9, r.fp32_ms, r.fp16_ms)
        for r in PAPER_ROWS
    }


def build_tables(runs: RunSet, metric: str = "latency_ms_median", compare_paper: bool = False) -> list[Table]:
    """Tables in the paper's layout for every resolution our runs cover.

    Rows: every combination of the blocks, norms and activations found in the runs (plus the paper's 4×2×2 with
    ``compare_paper``), ordered as in the paper (ReLU rows before GELU, BN before LN, VGG, ResNet, MobileNet,
    ConvNeXt). Columns: one per (precision, engine) found in the runs.
    """
    frame = runs.frame
    grid = cells(frame, metric)
    blocks = ordered("block", list(frame["block"]))
    norms = ordered("norm", list(frame["norm"]))
    acts = ordered("act", list(frame["act"]))
    if compare_paper:
        blocks = ordered("block", [*blocks, *(r.block for r in PAPER_ROWS)])
        norms = ordered("norm", [*norms, *(r.norm for r in PAPER_ROWS)])
        acts = ordered("act", [*acts, *(r.act for r in PAPER_ROWS)])
    precisions = ordered("precision", list(frame["precision"]))
    labels = runs.labels
    columns = [(p, lab) for p in precisions for lab in labels]
    paper = paper_lookup()
    indexed = grid.set_index([*("block", "norm", "act", "resolution", "precision"), "label"])
    tables = []
    for resolution in ordered("resolution", list(frame["resolution"])):
        display_rows, raw_rows = [], []
        for act in acts:
            for norm in norms:
                for block in blocks:
                    here = grid[
                        (grid["block"] == block)
                        & (grid["norm"] == norm)
                        & (grid["act"] == act)
                        & (grid["resolution"] == resolution)
                    ]
                    params = here["params_count"].dropna()
                    macs = here["macs"].dropna()
                    d: dict[str, object] = {
                        "Architecture": BLOCK_NAMES.get(block, block),
                        "Resolution": f"{resolution}×{resolution}",
                        "Norm": NORM_NAMES.get(norm, norm),
                        "Act": ACT_NAMES.get(act, act),
                        "#Params": fmt_count(params.iloc[0] if len(params) else math.nan),
                        "MACs": fmt_count(macs.iloc[0] if len(macs) else math.nan, "G"),
                    }
                    r: dict[str, object] = {
                        "Architecture": BLOCK_NAMES.get(block, block),
                        "Resolution": resolution,
                        "Norm": NORM_NAMES.get(norm, norm),
                        "Act": ACT_NAMES.get(act, act),
                        "#Params": params.iloc[0] if len(params) else None,
                        "MACs": macs.iloc[0] if len(macs) else None,
                    }
                    for precision, label in columns:
                        name = latency_column(precision, label)
                        key = (block, norm, act, resolution, precision, label)
                        if key not in indexed.index:
                            d[name], r[name] = NOT_RUN_MARK, None
                        else:
                            cell = indexed.loc[key]
                            if cell["state"] == FAILED:
                                d[name] = r[name] = FAILED_MARK
                            elif cell["state"] == BUILT:
                                d[name] = r[name] = BUILT_MARK
                            else:
                                d[name] = fmt_ms(cell["value"])
                                r[name] = round(float(cell["value"]), 6)
                    if compare_paper:
                        ref = paper.get((block, resolution, norm, act))
                        values = ref if ref else (None, None, None, None)
                        d["Paper #Params"] = fmt_count(values[0]) if ref else NOT_RUN_MARK
                        d["Paper MACs"] = fmt_count(values[1], "G") if ref else NOT_RUN_MARK
                        d["Paper FP32 (ms)"] = fmt_ms(values[2]) if ref else NOT_RUN_MARK
                        d["Paper FP16 (ms)"] = fmt_ms(values[3]) if ref else NOT_RUN_MARK
                        r.update(zip(PAPER_COLUMNS, values, strict=True))
                    display_rows.append(d)
                    raw_rows.append(r)
        names = [latency_column(p, lab) for p, lab in columns]
        order = ID_COLUMNS + names + (PAPER_COLUMNS if compare_paper else [])
        tables.append(
            Table(resolution, pd.DataFrame(display_rows, columns=order), pd.DataFrame(raw_rows, columns=order), names)
        )
    return tables


def fmt_value(value: object) -> str:
    """A cell of a table of raw values: missing -> ``—``, a whole number without decimals, else 3 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_RUN_MARK
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else fmt_ms(value)
    return str(value)


def displayed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every value as :func:`fmt_value` shows it, ready for :func:`to_markdown`."""
    return frame.map(fmt_value)


_NUMERIC = re.compile(r"^(—|FAILED|[-+]?\d[\d.,]*(e[-+]?\d+)?\s*(×|%|K|M|G|ms)?)$")


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency): numeric columns right-aligned, text left."""

    def numeric(column: str) -> bool:
        values = [str(v) for v in frame[column]]
        return bool(values) and all(_NUMERIC.match(v) for v in values)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    align = "|" + "|".join("---:" if numeric(c) else "---" for c in frame.columns) + "|"
    lines = [header, align]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return "\n".join(lines)


TABLE_LEGEND = (
    "Latency: {metric} per run ({how}). `—` = not run, `FAILED` = every run of that configuration failed, "
    f"`{BUILT_MARK}` = the engine was built (for GPUs the machine did not have) but never run (never shown as 0). "
    "Columns: one per precision and engine."
)
PAPER_LEGEND = (
    "`Paper …` columns are the paper's published numbers (reference data transcribed from its Tables 1–3: "
    "TensorRT 8.5, RTX 3090 Ti) — not measured here. The paper's FP32 is TensorRT's default (TF32 allowed): "
    "compare it with our TF32 columns. Our `strict FP32` columns (TF32 off) have no counterpart in the paper."
)


def caption(table: Table, index: int) -> str:
    return (
        f"Table {index}: inference latency and computational cost at {table.resolution}×{table.resolution} "
        "(paper layout)."
    )


def write_tables(tables: list[Table], out_dir: Path, metric: str, compare_paper: bool) -> list[Path]:
    """``tables/table_<res>.md`` and ``.csv`` per resolution; returns the written files."""
    folder = out_dir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, table in enumerate(tables, 1):
        md = folder / f"table_{table.resolution}.md"
        md.write_text(markdown_section(table, i, metric, compare_paper) + "\n")
        csv = folder / f"table_{table.resolution}.csv"
        table.raw.to_csv(csv, index=False)
        written += [md, csv]
    return written


def markdown_section(table: Table, index: int, metric: str, compare_paper: bool) -> str:
    how = "median over repeats of a configuration"
    parts = [
        f"**{caption(table, index)}**",
        "",
        to_markdown(table.display),
        "",
        TABLE_LEGEND.format(metric=f"`{metric}`", how=how),
    ]
    if compare_paper:
        parts += ["", PAPER_LEGEND]
    return "\n".join(parts)
