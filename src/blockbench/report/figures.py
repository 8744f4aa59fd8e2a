"""Grouped-bar figures like the paper's Figures 3–5: one figure per resolution, one panel per engine and
precision, architectures on the x axis, one bar per norm/activation pair.

Missing bars are labelled on the axis (``not run`` / ``FAILED`` / ``built, not timed``) rather than drawn at zero.

Each measured bar carries its run's 95 % interval of the median as an error bar (``<metric>_ci95_low/high``, the
order-statistic interval over that run's own samples, :mod:`blockbench.measure.statistics`): noise within one process,
not the variation between rebuilds or separately launched runs. A run that measured trials (``benchmark.trials`` >= 2,
each a fresh process and build) logged the interval that covers them (``<metric>_trials_ci95_low/high``, the Student's
t over trial medians): its bar draws that one instead, thicker, so the two kinds are told apart. A configuration with
several runs is drawn as the median of their medians with an error bar from the lowest low to the highest high of
their intervals (thick only where every run's covers trials). Bars whose runs logged no interval, and the paper's bars
(a mean of 3, no spread published), have none; each figure's caption (:func:`interval_caption`) says so and counts
them.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display, same output everywhere

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    BUILT,
    BUILT_MARK,
    FAILED,
    NORM_NAMES,
    OK,
    PRECISION_SHOWN,
    RunSet,
    cells,
    ordered,
)
from blockbench.report.paper import paper_records

# One colour per norm/activation pair, stable across figures (the paper's four first, then ln_native).
PAIR_COLOURS = {
    ("bn", "relu"): "#1f77b4",
    ("ln", "relu"): "#ff7f0e",
    ("bn", "gelu"): "#2ca02c",
    ("ln", "gelu"): "#d62728",
    ("ln_native", "relu"): "#9467bd",
    ("ln_native", "gelu"): "#8c564b",
}
FALLBACK_COLOURS = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PAPER_LABEL = "paper (TensorRT 8.5, RTX 3090 Ti)"
# The paper's FP32 is TensorRT's default build (TF32 allowed), not our strict FP32: its panels say so.
PAPER_PRECISION_SHOWN = PRECISION_SHOWN | {"fp32": "FP32 (TF32 allowed)"}
INTERVAL_GID = "median_ci95"  # the SVG id prefix of every error bar: ``median_ci95-<block>-<norm>-<act>``
INTERVAL_WHAT = (
    "Error bars: 95 % interval of each run's median (order statistics over that run's samples): within one "
    "process's samples; does not cover rebuild-to-rebuild variation (the findings allow ±5 % for it)."
)
TRIALS_INTERVAL_GID = "median_trials_ci95"  # likewise, of an error bar that covers trials
INTERVAL_TRIALS = (
    "Thick error bars ({n} here): 95 % interval of the median of trial medians, covering each run's {trials} trials "
    "(Student's t over trial medians, fresh processes and builds): includes rebuild-to-rebuild variation."
)
INTERVAL_REPEATS = (
    "A configuration with several runs: bar = median of their medians, error bar = lowest to highest of their "
    "intervals."
)


def _run_bounds(done: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per run: the interval its bar draws (``low``, ``high``): the one covering its trials where it measured >= 2
    and logged it, else its within-run one; ``covering`` says which, ``trials`` how many trials it measured."""
    names = [f"{metric}_{kind}ci95_{side}" for kind in ("", "trials_") for side in ("low", "high")]
    done = done.assign(**{c: done[c] if c in done else math.nan for c in [*names, "trials"]})
    trials = pd.to_numeric(done["trials"], errors="coerce").fillna(1)
    covering = (trials >= 2) & done[names[2]].notna() & done[names[3]].notna()
    return done.assign(
        low=done[names[2]].where(covering, done[names[0]]),
        high=done[names[3]].where(covering, done[names[1]]),
        covering=covering,
        trials=trials.astype(int),
    )


def cell_intervals(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per cell (the axes and label of :func:`cells`): ``ci_low`` = the lowest and ``ci_high`` = the highest bound
    of its FINISHED runs' 95 % intervals of ``metric`` (each run's covering one where it measured trials, else
    ``<metric>_ci95_low/high``), NaN unless every run with a value logged one; ``n_runs`` = those runs;
    ``covering`` = whether every run's interval covers its trials; ``n_trials`` = their trials (one per run without)."""
    keys = [*AXES, "label"]
    columns = [*keys, "ci_low", "ci_high", "n_runs", "covering", "n_trials"]
    if metric not in frame:
        return pd.DataFrame(columns=columns)
    done = _run_bounds(frame[(frame["status"] == "FINISHED") & frame[metric].notna()], metric)
    out = []
    for key, group in done.groupby(keys, dropna=False):
        complete = group["low"].notna().all() and group["high"].notna().all()
        record = dict(zip(keys, key, strict=True))
        record.update(
            ci_low=float(group["low"].min()) if complete else math.nan,
            ci_high=float(group["high"].max()) if complete else math.nan,
            n_runs=len(group),
            covering=bool(complete and group["covering"].all()),
            n_trials=int(group["trials"].sum()),
        )
        out.append(record)
    return pd.DataFrame(out, columns=columns)


def interval_caption(intervals: pd.DataFrame, drawn: int) -> str:
    """What the error bars of one figure cover, and which bars have none; ``drawn`` = measured bars in it."""
    with_ci = int(intervals["ci_low"].notna().sum())
    covering = intervals["covering"].astype(bool) if "covering" in intervals else pd.Series(False, intervals.index)
    several = intervals["n_runs"] > 1
    parts = []
    if covering.any():
        counts = sorted(set(intervals.loc[covering, "n_trials"].astype(int)))
        trials = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        parts.append(INTERVAL_TRIALS.format(n=int(covering.sum()), trials=trials))
    if with_ci > int(covering.sum()):
        parts.append(INTERVAL_WHAT.replace("Error bars:", "Thin error bars:", 1) if covering.any() else INTERVAL_WHAT)
    elif not parts:
        parts.append(INTERVAL_WHAT)
    if several.any():
        union = ", error bar = lowest to highest of their intervals"
        union = union if intervals["ci_low"][several].notna().any() else ""
        count = int(several.sum())
        parts.append(f"Configurations with several runs ({count} here): bar = median of their medians{union}.")
    missing = drawn - with_ci
    if missing:
        parts.append(f"No error bar on {missing} of {drawn} measured bars: their runs logged no interval.")
    parts.append("The paper's bars have none (a mean of 3 runs, no spread published).")
    return " ".join(parts)


def pair_name(norm: str, act: str) -> str:
    return f"{NORM_NAMES.get(norm, norm)} + {ACT_NAMES.get(act, act)}"


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(norm, act) pairs in the paper's order: ReLU before GELU, BN before LN before LN (native)."""
    found = {(n, a) for n, a in zip(frame["norm"], frame["act"], strict=True)}
    return [
        (n, a)
        for a in ordered("act", [a for _, a in found])
        for n in ordered("norm", [n for n, _ in found])
        if (n, a) in found
    ]


def _colour(pair: tuple[str, str], index: int) -> str:
    return PAIR_COLOURS.get(pair, FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)])


def _panel(ax: plt.Axes, grid: pd.DataFrame, blocks: list[str], pairs: list[tuple[str, str]], title: str) -> None:
    """Grouped bars for one (engine, precision) at one resolution; value labels on bars, marks for gaps."""
    width = 0.8 / max(len(pairs), 1)
    values = grid["value"].dropna()
    top = float(values.max()) if len(values) else 1.0
    # One outlier (a cold or contended run) would flatten every other bar: switch to a log axis then.
    log = len(values) > 1 and top > 15 * float(values.median())
    base = float(values.min()) / 1.8 if log else top * 0.02
    for j, pair in enumerate(pairs):
        for i, block in enumerate(blocks):
            x = i - 0.4 + width * (j + 0.5)
            hit = grid[(grid["block"] == block) & (grid["norm"] == pair[0]) & (grid["act"] == pair[1])]
            if hit.empty or (hit.iloc[0]["state"] not in (FAILED, BUILT) and math.isnan(hit.iloc[0]["value"])):
                ax.text(x, base, "not run", rotation=90, ha="center", va="bottom", fontsize=7, color="#777777")
                continue
            cell = hit.iloc[0]
            if cell["state"] == FAILED:
                ax.text(x, base, "FAILED", rotation=90, ha="center", va="bottom", fontsize=7, color="#b00000")
                continue
            if cell["state"] == BUILT:
                ax.text(x, base, BUILT_MARK, rotation=90, ha="center", va="bottom", fontsize=7, color="#1f5fa0")
                continue
            value = float(cell["value"])
            ax.bar(x, value, width * 0.92, color=_colour(pair, j), edgecolor="white", linewidth=0.5)
            low, high = (float(cell.get(c, math.nan)) for c in ("ci_low", "ci_high"))
            label_at = value
            if not (math.isnan(low) or math.isnan(high)):
                covering = bool(cell.get("covering", False))
                thick = 1.8 if covering else 0.9
                bars = ax.errorbar(
                    x,
                    value,
                    yerr=[[max(value - low, 0.0)], [max(high - value, 0.0)]],
                    fmt="none",
                    ecolor="#222222",
                    elinewidth=thick,
                    capsize=3.0 if covering else 2.0,
                    capthick=thick,
                )
                gid = TRIALS_INTERVAL_GID if covering else INTERVAL_GID
                bars.lines[2][0].set_gid(f"{gid}-{block}-{pair[0]}-{pair[1]}")
                label_at = max(value, high)
            ax.text(
                x,
                label_at * 1.08 if log else label_at + top * 0.01,
                f"{value:.3g}",
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7,
            )
    if log:
        ax.set_yscale("log")
        ax.set_ylim(float(values.min()) / 2, top * 4)
    else:
        ax.set_ylim(0, top * 1.25)
    ax.set_xticks(range(len(blocks)), [BLOCK_NAMES.get(b, b) for b in blocks], fontsize=10)
    ax.set_xlim(-0.5, len(blocks) - 0.5)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """PNG for people, SVG with real text (searchable, scalable) for documents; closes the figure."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(paths[0], dpi=130, bbox_inches="tight")
        fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def latency_figures(
    runs: RunSet, out_dir: Path, metric: str = "latency_ms_median", compare_paper: bool = False
) -> list[Path]:
    """``figures/latency_<res>.png`` and ``.svg`` per resolution; returns the written files."""
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    keys = [*AXES, "label"]
    intervals = cell_intervals(runs.frame, metric)
    grid = cells(runs.frame, metric).merge(intervals.drop(columns="n_runs"), on=keys, how="left")
    grid["covering"] = grid["covering"].eq(True)  # cells without a run: not covering (NaN is truthy)
    paper = pd.DataFrame(paper_records()).rename(columns={"latency_ms": "value"}).assign(state="ok", label=PAPER_LABEL)
    blocks = ordered("block", list(runs.frame["block"]))
    pairs = _pairs(runs.frame)
    precisions = ordered("precision", list(runs.frame["precision"]))
    metric_name = metric.removeprefix("latency_ms_")
    written: list[Path] = []
    for resolution in ordered("resolution", list(runs.frame["resolution"])):
        here = grid[grid["resolution"] == resolution]
        panels = [
            (label, p, here[(here["label"] == label) & (here["precision"] == p)])
            for label in runs.labels
            for p in precisions
        ]
        panels = [panel for panel in panels if not panel[2].empty]  # an engine never run at that precision
        paper_here = paper[paper["resolution"] == resolution]
        if compare_paper and not paper_here.empty:
            panels += [(PAPER_LABEL, p, paper_here[paper_here["precision"] == p]) for p in ("fp32", "fp16")]
        ncols = min(2, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 3.9 * nrows + 1.0), squeeze=False)
        for ax, (label, precision, data) in zip(axes.flat, panels, strict=False):
            panel_blocks = blocks if label != PAPER_LABEL else ordered("block", [*blocks, *data["block"]])
            panel_pairs = pairs if label != PAPER_LABEL else _pairs(data)
            shown = PAPER_PRECISION_SHOWN if label == PAPER_LABEL else PRECISION_SHOWN
            _panel(ax, data, panel_blocks, panel_pairs, f"{label} · {shown.get(precision, precision)}")
            what = "mean of 3" if label == PAPER_LABEL else metric_name
            log_note = " (log scale)" if ax.get_yscale() == "log" else ""
            ax.set_ylabel(f"latency, {what} (ms){log_note}", fontsize=10)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        legend_pairs = pairs + [p for p in _pairs(paper_here) if p not in pairs] if compare_paper else pairs
        handles = [Patch(color=_colour(p, j), label=pair_name(*p)) for j, p in enumerate(legend_pairs)]
        height = fig.get_figheight()
        fig.suptitle(
            f"Inference latency at {resolution}×{resolution} by architecture, normalization and activation "
            "(batch 1, lower is better)",
            fontsize=12,
            y=1 - 0.12 / height,
            va="top",
        )
        fig.legend(
            handles=handles,
            loc="upper center",
            ncol=min(len(handles), 6),
            frameon=False,
            fontsize=10,
            bbox_to_anchor=(0.5, 1 - 0.42 / height),
        )
        drawn = int(((here["state"] == OK) & here["value"].notna()).sum())
        caption = interval_caption(intervals[intervals["resolution"] == resolution], drawn)
        fig.text(0.5, 0.0, caption, ha="center", va="top", fontsize=8, wrap=True)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.68 / height))
        written += save(fig, folder / f"latency_{resolution}")
    return written
