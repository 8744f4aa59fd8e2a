"""Where an inference's time goes and what it costs in energy: the ``attr_*`` and ``energy_*`` metrics of the runs
as stacked bars per configuration, a table of the norm and activation shares, a latency-vs-energy figure and the
finding that splits the LN and GELU penalties into kernels, time and fusion.

Attributed times come from a profiled pass after timing (:mod:`blockbench.attribution`), so they are drawn beside
the measured median, never instead of it: their ratio (coverage) says how much of the latency the kernels account
for (below 1: the device idles between launches; above 1: the profiler inflated the kernels). Everything here is
shown only where runs logged it; a missing value is ``—``, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, as figures.py

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from blockbench.attribution import OP_CLASSES
from blockbench.metric_names import ATTR_COVERAGE, ENERGY_MEAN_W, ENERGY_PER_INFERENCE, LATENCY_MEDIAN
from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    NORM_NAMES,
    PRECISION_SHOWN,
    RunSet,
    label_order,
    order_key,
    ordered,
)
from blockbench.report.figures import pair_name, save
from blockbench.report.findings import Finding
from blockbench.report.tables import NOT_RUN_MARK, fmt_ms, to_markdown
from blockbench.report.verdict import NOT_TESTED

KEYS = [*AXES, "label"]
ATTR_TOTAL = "attr_total_ms"
FUSED = "fused"
SEGMENTS = {**OP_CLASSES, FUSED: "fused (several classes)"}  # bar segments, in stacking order
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
BLOCK_COLOURS = {"vgg": "#1f77b4", "resnet": "#2ca02c", "mobilenet": "#ff7f0e", "convnext": "#9467bd"}
NORM_MARKERS = {"bn": "o", "ln": "s", "ln_native": "^"}
COLUMNS = [
    LATENCY_MEDIAN,
    ATTR_TOTAL,
    ATTR_COVERAGE,
    "attr_fused_frac",
    *(f"attr_{c}_frac" for c in OP_CLASSES),
    *(f"attr_with_{c}_frac" for c in OP_CLASSES),
    *(f"attr_{c}_kernels" for c in OP_CLASSES),
    ENERGY_PER_INFERENCE,
    ENERGY_MEAN_W,
]
PENALTIES = (("norm", "ln", "bn"), ("act", "gelu", "relu"))
AXIS_WORDS = {"norm": "norm", "act": "activation"}
MAX_ROWS = 100  # rows of the table shown in report.md; attribution.csv has all


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Resolution, precision, block, engine, then ReLU before GELU and BN next to LN within each."""
    keys = ["resolution", "precision", "block", "label", "act", "norm"]

    def rank(series: pd.Series) -> pd.Series:
        axis = str(series.name)
        return series.map(label_order if axis == "label" else lambda v: order_key(axis, v))

    return frame.sort_values(keys, key=rank).reset_index(drop=True) if len(frame) else frame


def configs(runs: RunSet) -> pd.DataFrame:
    """One row per configuration (paper axes + engine) with attribution or energy: each metric's median over the
    FINISHED repeats that logged it (repeats are one cell, as in the tables), and ``blocks`` = 4 × blocks_per_stage."""
    frame = runs.finished
    present = [c for c in (ATTR_TOTAL, ENERGY_PER_INFERENCE) if c in frame]
    frame = frame[frame[present].notna().any(axis=1)] if present else frame.iloc[:0]
    if frame.empty:
        return pd.DataFrame(columns=[*KEYS, *COLUMNS, "blocks"])
    frame = frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce") if c in frame else math.nan for c in COLUMNS})
    per_stage = frame.get("params.model.blocks_per_stage", pd.Series(math.nan, index=frame.index))
    frame = frame.assign(blocks=4 * pd.to_numeric(per_stage, errors="coerce"))
    return _sorted(frame.groupby(KEYS, sort=False)[[*COLUMNS, "blocks"]].median().reset_index())


def _fmt(value: object, spec: str) -> str:
    return NOT_RUN_MARK if value is None or pd.isna(value) else format(value, spec)


def _pct(value: float) -> str:
    return NOT_RUN_MARK if pd.isna(value) else f"{100 * value:.1f} %"


def _names(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "Architecture": frame["block"].map(lambda v: BLOCK_NAMES.get(v, v)),
        "Norm": frame["norm"].map(lambda v: NORM_NAMES.get(v, v)),
        "Act": frame["act"].map(lambda v: ACT_NAMES.get(v, v)),
        "Resolution": frame["resolution"],
        "Precision": frame["precision"].map(lambda v: PRECISION_SHOWN.get(v, v)),
        "Engine": frame["label"],
    }


# Table columns: (title, value from a configs() row, display format). Shares in % of attributed time.
TABLE: list[tuple[str, Callable[[pd.DataFrame], pd.Series], Callable[[float], str]]] = [
    ("Latency median (ms)", lambda f: f[LATENCY_MEDIAN], lambda v: _fmt(v, ".3f")),
    ("Attributed (ms)", lambda f: f[ATTR_TOTAL], lambda v: _fmt(v, ".3f")),
    ("Coverage", lambda f: f[ATTR_COVERAGE], lambda v: _fmt(v, ".2f")),
    ("Norm share (%)", lambda f: 100 * f["attr_with_norm_frac"], lambda v: _fmt(v, ".1f")),
    ("Norm fused (%)", lambda f: 100 * (f["attr_with_norm_frac"] - f["attr_norm_frac"]), lambda v: _fmt(v, ".1f")),
    ("Act share (%)", lambda f: 100 * f["attr_with_act_frac"], lambda v: _fmt(v, ".1f")),
    ("Act fused (%)", lambda f: 100 * (f["attr_with_act_frac"] - f["attr_act_frac"]), lambda v: _fmt(v, ".1f")),
    ("Norm kernels/inference", lambda f: f["attr_norm_kernels"], lambda v: _fmt(v, ".4g")),
    ("Norm kernels/block", lambda f: f["attr_norm_kernels"] / f["blocks"], lambda v: _fmt(v, ".2f")),
    ("Energy (mJ/inference)", lambda f: f[ENERGY_PER_INFERENCE], lambda v: _fmt(v, ".4g")),
    ("Mean power (W)", lambda f: f[ENERGY_MEAN_W], lambda v: _fmt(v, ".1f")),
]
ENERGY_COLUMNS = ["Latency median (ms)", "Energy (mJ/inference)", "Mean power (W)"]


def share_table(conf: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table "Norm and activation share of latency per config": display strings for report.md, raw numbers
    (shares in %, missing empty) for attribution.csv."""
    raw = pd.DataFrame({**_names(conf), **{title: get(conf) for title, get, _ in TABLE}})
    display = raw.copy()
    display["Resolution"] = raw["Resolution"].map(lambda r: f"{r}×{r}")
    for title, _, show in TABLE:
        display[title] = raw[title].map(show)
    return display, raw.round(6)


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
        coverage = _fmt(row[ATTR_COVERAGE], ".2f")
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


# --- the finding: what the LN and GELU penalties consist of --------------------------------------------------


def _side(rows: pd.DataFrame, axis: str, other: list[str]) -> pd.DataFrame:
    """Per configuration: latency, the axis' op time (alone or fused) and share, the share of it that runs fused
    with other classes, and its op-only kernels per block (stem included)."""
    within, alone = rows[f"attr_with_{axis}_frac"], rows[f"attr_{axis}_frac"]
    return rows[other].assign(
        lat=rows[LATENCY_MEDIAN],
        ms=within * rows[ATTR_TOTAL],
        share=within,
        fused=((within - alone) / within).where(within > 0),
        kpb=rows[f"attr_{axis}_kernels"] / rows["blocks"],
    )


def penalty_pairs(conf: pd.DataFrame) -> pd.DataFrame:
    """Every profiled LN/BN and GELU/ReLU pair equal in all other axes and engine, side by side (``*_slow`` is LN
    or GELU, ``*_fast`` BN or ReLU; ``norm`` / ``act`` hold LN / GELU on their own comparison)."""
    profiled = conf[conf[ATTR_TOTAL].notna()]
    parts = []
    for axis, slow, fast in PENALTIES:
        other = [k for k in KEYS if k != axis]
        a, b = (_side(profiled[profiled[axis] == v], axis, other) for v in (slow, fast))
        merged = a.merge(b, on=other, suffixes=("_slow", "_fast"))
        parts.append(_sorted(merged.assign(**{axis: slow, "axis": axis})))
    return pd.concat(parts, ignore_index=True)


def _axis_names(axis: str) -> tuple[str, str]:
    slow, fast = next((s, f) for a, s, f in PENALTIES if a == axis)
    names = NORM_NAMES if axis == "norm" else ACT_NAMES
    return names[slow], names[fast]


def _engine_summary(label: str, rows: pd.DataFrame) -> str:
    """``torch eager: LN launches 6.25 unfused norm kernels per block (1.25 for BN); norm is 50 % ...`` (medians over
    the engine's pairs); the fused share only where there is one."""
    parts = []
    for axis, _, _ in PENALTIES:
        here = rows[rows["axis"] == axis]
        if here.empty:
            continue
        m = here.median(numeric_only=True)
        slow, fast = _axis_names(axis)
        word = AXIS_WORDS[axis]
        n = len(here)
        said = [
            f"{slow} launches {_fmt(m['kpb_slow'], '.2f')} unfused {word} kernels per block "
            f"({_fmt(m['kpb_fast'], '.2f')} for {fast})",
            f"{word} is {_fmt(100 * m['share_slow'], '.0f')} % of attributed time with {slow} vs "
            f"{_fmt(100 * m['share_fast'], '.0f')} % with {fast}",
            f"{slow} − {fast}: {_fmt(m['lat_slow'] - m['lat_fast'], '+.3f')} ms latency, "
            f"{_fmt(m['ms_slow'] - m['ms_fast'], '+.3f')} ms {word} time ({n} pair{'s' if n != 1 else ''})",
        ]
        if m["fused_slow"] >= 0.005:
            said.insert(
                2, f"{slow}'s {word} is fused into neighbouring kernels in {100 * m['fused_slow']:.0f} % of its time"
            )
        parts.append("; ".join(said))
    return f"{label}: " + "; ".join(parts)


def penalty_finding(runs: RunSet) -> Finding:
    """The finding "What the LN and GELU penalties consist of", per engine, from profiled runs only."""
    title = "What the LN and GELU penalties consist of"
    claim = (
        "new: for every BN/LN pair (and ReLU/GELU pair) of profiled runs equal in block, the other of norm/act, "
        "resolution, precision and engine: the latency difference, each side's norm (activation) time and share of "
        "attributed time, its unfused (norm- or activation-only) kernels per block and how much of its time runs "
        "fused into other kernels. Kernels per block = kernels per inference / (4 × blocks_per_stage), stem "
        "included: the stem's BN and ReLU are in every configuration, so they add the same to both sides. "
        "Summaries: medians over pairs."
    )
    paper = "not measured in the paper"
    conf = configs(runs)
    if conf.empty or conf[ATTR_TOTAL].isna().all():
        why = "runs not profiled: no attr_* metrics (run with benchmark.attribution=true)"
        return Finding("penalty_breakdown", title, claim, paper, why, f"{NOT_TESTED} ({why})", new=True)
    rows = penalty_pairs(conf)
    if rows.empty:
        why = "no profiled BN/LN or ReLU/GELU pair equal in everything else"
        return Finding("penalty_breakdown", title, claim, paper, why, f"{NOT_TESTED} ({why})", new=True)
    labels = [label for label in runs.labels if label in set(rows["label"])]
    ours = ". ".join(_engine_summary(label, rows[rows["label"] == label]) for label in labels)
    counts = rows["axis"].value_counts()
    with_ = zip(rows["axis"], rows["norm"], rows["act"], strict=True)
    details = pd.DataFrame(
        {
            "pair": rows["axis"].map(lambda a: " vs ".join(_axis_names(a))),
            "Architecture": rows["block"].map(lambda v: BLOCK_NAMES.get(v, v)),
            "with": [ACT_NAMES.get(a, a) if axis == "norm" else NORM_NAMES.get(n, n) for axis, n, a in with_],
            "Resolution": rows["resolution"].map(lambda r: f"{r}×{r}"),
            "Precision": rows["precision"].map(lambda v: PRECISION_SHOWN.get(v, v)),
            "Engine": rows["label"],
            "LN/GELU − BN/ReLU latency (ms)": (rows["lat_slow"] - rows["lat_fast"]).map(lambda v: _fmt(v, "+.3f")),
            "op time LN/GELU (ms)": rows["ms_slow"].map(fmt_ms),
            "op time BN/ReLU (ms)": rows["ms_fast"].map(fmt_ms),
            "op share LN/GELU": rows["share_slow"].map(_pct),
            "op share BN/ReLU": rows["share_fast"].map(_pct),
            "op kernels/block LN/GELU": rows["kpb_slow"].map(lambda v: _fmt(v, ".2f")),
            "op kernels/block BN/ReLU": rows["kpb_fast"].map(lambda v: _fmt(v, ".2f")),
            "LN/GELU op time fused": rows["fused_slow"].map(_pct),
        }
    )
    verdict = f"measured ({counts.get('norm', 0)} LN/BN and {counts.get('act', 0)} GELU/ReLU pairs)"
    return Finding("penalty_breakdown", title, claim, paper, ours, verdict, details, new=True)


# --- the report's sections ----------------------------------------------------------------------------------


@dataclass
class Breakdown:
    """What :func:`build_breakdown` found and wrote."""

    configs: pd.DataFrame
    display: pd.DataFrame
    files: list[Path] = field(default_factory=list)

    @property
    def profiled(self) -> bool:
        return bool(self.configs[ATTR_TOTAL].notna().any())

    @property
    def energy(self) -> bool:
        return bool(self.configs[ENERGY_PER_INFERENCE].notna().any())


def build_breakdown(runs: RunSet, out_dir: Path) -> Breakdown:
    """The figures and ``attribution.csv`` where runs logged attribution / energy; nothing is written otherwise."""
    conf = configs(runs)
    display, raw = share_table(conf)
    result = Breakdown(conf, display)
    if result.profiled:
        result.files += where_time_goes(conf, out_dir)
        csv = out_dir / "attribution.csv"
        raw.to_csv(csv, index=False)
        result.files.append(csv)
    if result.energy:
        result.files += latency_vs_energy(conf, out_dir)
    return result


WHERE_TEXT = (
    "Kernel (node, layer) time per inference from a profiled pass after timing, by operator class "
    "(`attr_<class>_frac` × `attr_total_ms`; `fused` = kernels running several classes, e.g. inductor's "
    "conv+norm+act). ◆ = measured latency median; `cov` = attributed / measured (below 1: the device idles between "
    "kernels; above 1: profiling inflated them). One figure per resolution, one panel per precision; bars grouped by "
    "architecture, then engine, BN next to LN within each activation."
)
TABLE_TEXT = (
    "Shares are of attributed time: *Norm share* counts kernels that run normalization alone or fused; *Norm fused* "
    "the part of it in kernels fusing it with other classes (likewise *Act*). *Norm kernels* count normalization-only "
    "kernels per inference, and per block = / (4 × blocks_per_stage), stem included. Energy: the whole device over "
    "the timed window, per inference. `—` = not measured (never 0)."
)
ENERGY_TEXT = (
    "Energy per inference: the device's energy counter (NVML on GPUs, RAPL on CPUs) over the timed window, divided "
    "by the inferences in it; the whole device, idle time within the window included."
)


def breakdown_markdown(b: Breakdown) -> list[str]:
    """``## Where the time goes`` and ``## Energy`` for report.md, each only where runs logged its metrics."""
    lines: list[str] = []
    if b.profiled:
        lines += ["## Where the time goes", "", WHERE_TEXT, ""]
        for r in ordered("resolution", list(b.configs.loc[b.configs[ATTR_TOTAL].notna(), "resolution"])):
            lines += [f"![Where the time goes at {r}×{r}](figures/where_time_goes_{r}.png)", ""]
        lines += ["**Norm and activation share of latency per config** (all rows in attribution.csv)", ""]
        lines += [to_markdown(b.display.head(MAX_ROWS)), "", TABLE_TEXT, ""]
        if len(b.display) > MAX_ROWS:
            lines += [f"({len(b.display) - MAX_ROWS} more rows in attribution.csv)", ""]
    if not b.energy:
        return [*lines, "Energy: no run logged energy (no NVML/RAPL counter readable), so no energy figure.", ""]
    values = b.configs[ENERGY_PER_INFERENCE].dropna()
    power = b.configs[ENERGY_MEAN_W].dropna()
    watts = f"; mean power {power.min():.1f}–{power.max():.1f} W" if len(power) else ""
    lines += ["## Energy", "", ENERGY_TEXT, ""]
    lines += [f"{len(values)} configurations: {values.min():.4g}–{values.max():.4g} mJ per inference{watts}.", ""]
    lines += ["![Latency vs energy per inference](figures/latency_vs_energy.png)", ""]
    if not b.profiled:  # otherwise the energy columns are in the table above
        shown = b.display[b.configs[ENERGY_PER_INFERENCE].notna()]
        keep = [*list(_names(b.configs)), *ENERGY_COLUMNS]
        lines += [to_markdown(shown[keep].head(MAX_ROWS)), ""]
    return lines
