"""Where an inference's time goes and what it costs in energy: the ``attr_*`` and ``energy_*`` metrics of the runs
as stacked bars per configuration, a table of the norm and activation shares, a latency-vs-energy figure and the
finding that splits the LN and GELU penalties into kernels, time and fusion.

Attributed times come from a profiled pass after timing (:mod:`blockbench.measure.attribution`), so they are drawn
beside the measured median, never instead of it: their ratio (coverage) says how much of the latency the kernels account
for (below 1: the device idles between launches; above 1: the profiler inflated the kernels). Everything here is
shown only where runs logged it; a missing value is ``—``, never 0.

This module holds the data (one row per configuration), the shares table and the finding; the figures are
:mod:`blockbench.report.breakdown_figures`, the report's section :mod:`blockbench.report.breakdown_report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from blockbench.measure.attribution import OP_CLASSES
from blockbench.measure.metric_names import ATTR_COVERAGE, ENERGY_MEAN_W, ENERGY_PER_INFERENCE, LATENCY_MEDIAN
from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    NORM_NAMES,
    PRECISION_SHOWN,
    RunSet,
    label_order,
    order_key,
)
from blockbench.report.findings import Finding
from blockbench.report.tables import NOT_RUN_MARK, fmt_ms
from blockbench.report.verdict import NOT_TESTED

KEYS = [*AXES, "label"]
ATTR_TOTAL = "attr_total_ms"
FUSED = "fused"
SEGMENTS = {**OP_CLASSES, FUSED: "fused (several classes)"}  # bar segments, in stacking order
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


def fmt(value: object, spec: str) -> str:
    return NOT_RUN_MARK if value is None or pd.isna(value) else format(value, spec)


def _pct(value: float) -> str:
    return NOT_RUN_MARK if pd.isna(value) else f"{100 * value:.1f} %"


def config_names(frame: pd.DataFrame) -> dict[str, pd.Series]:
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
    ("Latency median (ms)", lambda f: f[LATENCY_MEDIAN], lambda v: fmt(v, ".3f")),
    ("Attributed (ms)", lambda f: f[ATTR_TOTAL], lambda v: fmt(v, ".3f")),
    ("Coverage", lambda f: f[ATTR_COVERAGE], lambda v: fmt(v, ".2f")),
    ("Norm share (%)", lambda f: 100 * f["attr_with_norm_frac"], lambda v: fmt(v, ".1f")),
    ("Norm fused (%)", lambda f: 100 * (f["attr_with_norm_frac"] - f["attr_norm_frac"]), lambda v: fmt(v, ".1f")),
    ("Act share (%)", lambda f: 100 * f["attr_with_act_frac"], lambda v: fmt(v, ".1f")),
    ("Act fused (%)", lambda f: 100 * (f["attr_with_act_frac"] - f["attr_act_frac"]), lambda v: fmt(v, ".1f")),
    ("Norm kernels/inference", lambda f: f["attr_norm_kernels"], lambda v: fmt(v, ".4g")),
    ("Norm kernels/block", lambda f: f["attr_norm_kernels"] / f["blocks"], lambda v: fmt(v, ".2f")),
    ("Energy (mJ/inference)", lambda f: f[ENERGY_PER_INFERENCE], lambda v: fmt(v, ".4g")),
    ("Mean power (W)", lambda f: f[ENERGY_MEAN_W], lambda v: fmt(v, ".1f")),
]
ENERGY_COLUMNS = ["Latency median (ms)", "Energy (mJ/inference)", "Mean power (W)"]


def share_table(conf: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table "Norm and activation share of latency per config": display strings for report.md, raw numbers
    (shares in %, missing empty) for attribution.csv."""
    raw = pd.DataFrame({**config_names(conf), **{title: get(conf) for title, get, _ in TABLE}})
    display = raw.copy()
    display["Resolution"] = raw["Resolution"].map(lambda r: f"{r}×{r}")
    for title, _, show in TABLE:
        display[title] = raw[title].map(show)
    return display, raw.round(6)


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
            f"{slow} launches {fmt(m['kpb_slow'], '.2f')} unfused {word} kernels per block "
            f"({fmt(m['kpb_fast'], '.2f')} for {fast})",
            f"{word} is {fmt(100 * m['share_slow'], '.0f')} % of attributed time with {slow} vs "
            f"{fmt(100 * m['share_fast'], '.0f')} % with {fast}",
            f"{slow} − {fast}: {fmt(m['lat_slow'] - m['lat_fast'], '+.3f')} ms latency, "
            f"{fmt(m['ms_slow'] - m['ms_fast'], '+.3f')} ms {word} time ({n} pair{'s' if n != 1 else ''})",
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
            "LN/GELU − BN/ReLU latency (ms)": (rows["lat_slow"] - rows["lat_fast"]).map(lambda v: fmt(v, "+.3f")),
            "op time LN/GELU (ms)": rows["ms_slow"].map(fmt_ms),
            "op time BN/ReLU (ms)": rows["ms_fast"].map(fmt_ms),
            "op share LN/GELU": rows["share_slow"].map(_pct),
            "op share BN/ReLU": rows["share_fast"].map(_pct),
            "op kernels/block LN/GELU": rows["kpb_slow"].map(lambda v: fmt(v, ".2f")),
            "op kernels/block BN/ReLU": rows["kpb_fast"].map(lambda v: fmt(v, ".2f")),
            "LN/GELU op time fused": rows["fused_slow"].map(_pct),
        }
    )
    verdict = f"measured ({counts.get('norm', 0)} LN/BN and {counts.get('act', 0)} GELU/ReLU pairs)"
    return Finding("penalty_breakdown", title, claim, paper, ours, verdict, details, new=True)
