"""The breakdown's figures: where the time goes (stacked bars of attributed milliseconds per operator class, the
measured median beside them) and latency against energy per inference. The data they draw:
:mod:`blockbench.report.breakdown`.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, as figures.py

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from blockbench.axes.blocks import BLOCK_RECORDS, NORM_RECORDS
from blockbench.measure.metric_names import ATTR_COVERAGE, ENERGY_PER_INFERENCE, LATENCY_MEDIAN
from blockbench.report.breakdown import ATTR_TOTAL, FUSED, SEGMENTS, fmt
from blockbench.report.data import (
    BLOCK_NAMES,
    NORM_NAMES,
    PRECISION_SHOWN,
    label_order,
    ordered,
)
from blockbench.report.figures import pair_name, save

CLASS_COLOURS = {
    "conv": "#1f77b4",
    "dwconv": "#aec7e8",
    "linear": "#17becf",
    "norm": "#d62728",
    "act": "#ff7f0e",
    "pool": "#9467bd",
    "add": "#8c564b",
    "layout": "#bcbd22",
    "other": "#c7c7c7",
    FUSED: "#e377c2",
}
BLOCK_COLOURS = {b.name: b.colour for b in BLOCK_RECORDS.values()}
NORM_MARKERS = {n.name: n.marker for n in NORM_RECORDS.values()}


# --- figures ----------------------------------------------------------------------------------------------------


def _stacked(ax: plt.Axes, rows: pd.DataFrame, title: str) -> set[str]:
    """One horizontal bar per configuration: attributed ms per class, ◆ at the measured median, coverage after it.
    Returns the segments drawn (for the legend)."""
    ends = pd.concat([rows[ATTR_TOTAL], rows[LATENCY_MEDIAN]]).dropna()
    top = float(ends.max()) if len(ends) else 1.0
    drawn: set[str] = set()
    y, ticks, labels, previous = 0.0, [], [], None
    for _, row in rows.iterrows():
        if previous is not None and row["block"] != previous:
            y += 0.6  # a gap between block groups
        previous = row["block"]
        left = 0.0
        for name in SEGMENTS:
            share = row["attr_fused_frac" if name == FUSED else f"attr_{name}_frac"]
            width = 0.0 if pd.isna(share) else float(share) * float(row[ATTR_TOTAL])
            if width <= 0:
                continue
            ax.barh(y, width, left=left, height=0.8, color=CLASS_COLOURS[name], edgecolor="white", linewidth=0.4)
            left += width
            drawn.add(name)
        latency = row[LATENCY_MEDIAN]
        if pd.notna(latency):
            ax.plot(latency, y, "D", color="black", markersize=4, zorder=3)
        end = max(left, latency if pd.notna(latency) else 0.0)
        coverage = fmt(row[ATTR_COVERAGE], ".2f")
        ax.text(end + top * 0.01, y, f"cov {coverage}", va="center", fontsize=7, color="#444444")
        ticks.append(y)
        labels.append(
            f"{BLOCK_NAMES.get(row['block'], row['block'])} · {row['label']} · {pair_name(row['norm'], row['act'])}"
        )
        y += 1
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_ylim(y - 0.4, -0.6)  # first configuration on top
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("ms per inference (bars: attributed by class; ◆ measured median)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    return drawn


def where_time_goes(conf: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``figures/where_time_goes_<res>.png`` / ``.svg``: one figure per resolution, one panel per precision."""
    profiled = conf[conf[ATTR_TOTAL].notna()]
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for resolution in ordered("resolution", list(profiled["resolution"])):
        here = profiled[profiled["resolution"] == resolution]
        precisions = ordered("precision", list(here["precision"]))
        sizes = [int((here["precision"] == p).sum()) + 2 for p in precisions]
        fig, axes = plt.subplots(
            len(precisions), 1, figsize=(11, 0.27 * sum(sizes) + 1.6), squeeze=False, height_ratios=sizes
        )
        drawn: set[str] = set()
        for ax, precision in zip(axes[:, 0], precisions, strict=True):
            name = PRECISION_SHOWN.get(precision, precision)
            drawn |= _stacked(ax, here[here["precision"] == precision], f"{resolution}×{resolution} · {name}")
        handles: list[Patch | Line2D] = [
            Patch(color=CLASS_COLOURS[c], label=SEGMENTS[c]) for c in SEGMENTS if c in drawn
        ]
        handles.append(Line2D([], [], marker="D", color="black", linestyle="", label="measured latency (median)"))
        title = f"Where the time goes at {resolution}×{resolution}: attributed kernel time per operator class"
        _header(fig, title, handles, 5)
        written += save(fig, folder / f"where_time_goes_{resolution}")
    return written


def _header(fig: plt.Figure, title: str, handles: list[Patch | Line2D], ncol: int) -> None:
    """Title and legend above the panels, with room for as many legend rows as the handles need."""
    height = fig.get_figheight()
    rows = math.ceil(len(handles) / min(ncol, len(handles)))
    fig.suptitle(title, fontsize=12, y=1 - 0.1 / height, va="top")
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=min(ncol, len(handles)),
        frameon=False,
        fontsize=8,
        bbox_to_anchor=(0.5, 1 - 0.38 / height),
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.3 + 0.2 * rows) / height))


def _power_lines(ax: plt.Axes, watts: pd.Series) -> None:
    """Dotted lines of constant mJ per inference / ms = W, in 1-2-5 steps around the runs' own, labelled where they
    leave the panel: a point above a line draws more power while it serves one request at a time."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    low, high = float(watts.min()) / 2, float(watts.max()) * 2
    steps = [m * 10**k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1) for m in (1, 2, 5)]
    for w in (w for w in steps if low <= w <= high):
        ax.plot([x0, x1], [w * x0, w * x1], ":", color="#999999", linewidth=0.8, zorder=1)
        x, y = (x1, w * x1) if w * x1 <= y1 else (y1 / w, y1)
        if x0 < x <= x1 and y0 < y <= y1:
            ax.text(x, y, f"{w:g} W ", ha="right", va="top", fontsize=7, color="#777777")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def latency_vs_energy(conf: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``figures/latency_vs_energy.png`` / ``.svg``: one panel per engine and precision, colour = block, marker =
    norm, filled = ReLU / hollow = GELU, resolution written beside each point, dotted lines of constant power
    (mJ per inference / ms = W). Log-log when either axis spans more than 10×. None without energy."""
    data = conf[conf[ENERGY_PER_INFERENCE].notna() & conf[LATENCY_MEDIAN].notna()]
    if data.empty:
        return []
    panels = [
        (label, p, part)
        for label in sorted(data["label"].unique(), key=label_order)
        for p in ordered("precision", list(data["precision"]))
        if not (part := data[(data["label"] == label) & (data["precision"] == p)]).empty
    ]
    xs, ys = data[LATENCY_MEDIAN].astype(float), data[ENERGY_PER_INFERENCE].astype(float)
    log = bool(xs.max() > 10 * xs.min() or ys.max() > 10 * ys.min()) and bool((xs > 0).all() and (ys > 0).all())
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(6 * ncols, 4.4 * nrows + 0.9), squeeze=False, sharex=True, sharey=True
    )
    for ax, (label, precision, part) in zip(axes.flat, panels, strict=False):
        for _, row in part.iterrows():
            colour = BLOCK_COLOURS.get(row["block"], "#7f7f7f")
            ax.scatter(
                row[LATENCY_MEDIAN],
                row[ENERGY_PER_INFERENCE],
                marker=NORM_MARKERS.get(row["norm"], "D"),
                s=40,
                facecolors=colour if row["act"] == "relu" else "none",
                edgecolors=colour,
                linewidths=1.3,
                zorder=3,
            )
            ax.annotate(
                str(row["resolution"]),
                (row[LATENCY_MEDIAN], row[ENERGY_PER_INFERENCE]),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="#555555",
            )
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{label} · {PRECISION_SHOWN.get(precision, precision)}", fontsize=10)
        ax.set_xlabel("latency, median (ms)" + (" (log)" if log else ""), fontsize=9)
        ax.set_ylabel("energy per inference (mJ)" + (" (log)" if log else ""), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[: len(panels)]:  # once every panel has its points: the shared limits are final
        _power_lines(ax, ys / xs)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    blocks = ordered("block", list(data["block"]))
    handles: list[Patch | Line2D] = [
        Patch(color=BLOCK_COLOURS.get(b, "#7f7f7f"), label=BLOCK_NAMES.get(b, b)) for b in blocks
    ]
    handles += [
        Line2D([], [], marker=NORM_MARKERS.get(n, "D"), color="#555555", linestyle="", label=NORM_NAMES.get(n, n))
        for n in ordered("norm", list(data["norm"]))
    ]
    handles += [
        Line2D([], [], marker="o", color="#555555", linestyle="", label="ReLU (filled)"),
        Line2D([], [], marker="o", color="#555555", markerfacecolor="none", linestyle="", label="GELU (hollow)"),
    ]
    _header(fig, "Latency vs energy per inference (numbers: resolution; dotted: constant power)", handles, 7)
    return save(fig, out_dir / "figures" / "latency_vs_energy")
