"""The arithmetic every claim shares -- our cells and the paper's, pairs, intervals, detail rows -- and the
findings in writing (``findings.md``, ``.csv``, ``.json``).

The rule that judges every ratio is :mod:`blockbench.report.verdict`; the claims themselves are a table of
specifications in :mod:`blockbench.report.claims`, evaluated by :mod:`blockbench.report.evaluation`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from blockbench.measure.statistics import WITHIN, bootstrap_medians, interval, interval_words, seed_for, trial_bootstrap
from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    NORM_NAMES,
    OK,
    PRECISION_SHOWN,
    RunSet,
    cells,
    order_key,
    ordered,
)
from blockbench.report.paper import paper_records
from blockbench.report.tables import to_markdown
from blockbench.report.verdict import (
    PAPER_PRECISION,
    comparable,
    own_scope,
    precision_names,
    rule_text,
)

KEYS = [*AXES, "label"]
MAX_DETAIL_ROWS = 60
BOOTSTRAPPED_METRIC = "latency_ms_median"  # the metric whose samples are kept: intervals exist for it only
# Per cell, and per ratio of cells: the trial counts behind its bootstrap, one per cell (1: within one process,
# its samples pooled over repeats; >= 2: draws from the interval over that many trials); None without a bootstrap.
TRIALS_COLUMN = "interval_trials"
INTERVAL_COLUMN = "interval"  # the detail column that says which interval a row's verdict used
Samples = dict[str, np.ndarray | Sequence[np.ndarray]]  # run id -> its kept samples, pooled or one array per trial


@dataclass
class Finding:
    """One claim: the paper's words and number, ours, a verdict, and the per-cell numbers behind it."""

    id: str
    title: str
    claim: str
    paper: str
    ours: str
    verdict: str
    details: pd.DataFrame = field(default_factory=pd.DataFrame)
    new: bool = False


def x(value: float) -> str:
    """A ratio as printed everywhere in the findings: ``2.41×``; missing -> ``—``."""
    return "—" if value is None or not math.isfinite(value) else f"{value:.2f}×"


def spread_by_precision(rows: pd.DataFrame) -> str:
    """:func:`spread` of the rows' ratios, those at a precision the paper lacks (strict FP32) given apart."""
    if rows.empty or "precision" not in rows or rows["precision"].map(comparable).all():
        return spread(rows["ratio"]) if "ratio" in rows else spread(pd.Series(dtype=float))
    own = ~rows["precision"].map(comparable).astype(bool)
    parts = [f"{spread(rows[~own]['ratio'])} at {precision_names(rows[~own]['precision'])}"] if (~own).any() else []
    for precision in ordered("precision", list(rows[own]["precision"])):
        parts.append(f"{own_scope(precision)}: {spread(rows[rows['precision'] == precision]['ratio'])}")
    return "; ".join(parts)


def spread(values: pd.Series) -> str:
    """``median 2.41× (1.90×–3.02×, n=8)``."""
    values = values.dropna()
    if values.empty:
        return "no matching runs"
    if len(values) == 1:
        return f"{x(values.iloc[0])} (n=1)"
    return f"median {x(values.median())} ({x(values.min())}–{x(values.max())}, n={len(values)})"


def geomean(values: pd.Series) -> float:
    values = values.dropna()
    return float(math.exp(sum(math.log(v) for v in values) / len(values))) if len(values) else math.nan


# --- the data -------------------------------------------------------------------------------------------


def our_cells(runs: RunSet, metric: str, samples: Samples | None = None) -> pd.DataFrame:
    """FINISHED cells only: (axes, label) -> value, and the bootstrap of the value where samples were kept."""
    grid = cells(runs.frame, metric)
    grid = grid[grid["state"] == OK].reset_index(drop=True)
    return with_bootstrap(grid, samples or {})[[*KEYS, "value", "boot", TRIALS_COLUMN]]


def _trials(kept: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A run's kept samples as one array per trial (a bare array is one trial)."""
    return [kept] if isinstance(kept, np.ndarray) else [np.asarray(t, dtype=float) for t in kept]


def cell_seed(cell: pd.Series) -> int:
    """A cell's bootstrap seed, from what the cell is (its axes and engine label), never from its runs' ids: the same
    samples give the same interval in any store, and no two cells of a report share resampling indices."""
    return seed_for("|".join(f"{key}={cell[key]}" for key in KEYS if key in cell))


def with_bootstrap(grid: pd.DataFrame, samples: Samples) -> pd.DataFrame:
    """A ``boot`` column: the bootstrap distribution of each cell's median, None without kept samples; and
    :data:`TRIALS_COLUMN`, which interval it is.

    A cell whose runs measured trials (any run with >= 2) gets the covering interval: draws from the interval over
    all its runs' trials (:func:`~blockbench.measure.statistics.trial_bootstrap`). Otherwise its repeats' samples
    are pooled and bootstrapped within one process. Seeded by the cell's content (:func:`cell_seed`).
    """
    boots, counts = [], []
    for _, cell in grid.iterrows():
        run_ids = cell["run_ids"]
        kept = [_trials(samples[r]) for r in run_ids if r in samples]
        if len(kept) != len(run_ids) or not kept:
            boots.append(None)
            counts.append(None)
            continue
        rng = np.random.default_rng(cell_seed(cell))
        trials = [t for run in kept for t in run if len(t)]
        if any(len(run) >= 2 for run in kept):
            boots.append(trial_bootstrap(trials, rng))
            counts.append((len(trials),))
        else:
            boots.append(bootstrap_medians(np.concatenate(trials), rng))
            counts.append((1,))
    return grid.assign(boot=boots, **{TRIALS_COLUMN: counts})


def joined_trials(num: object, den: object) -> tuple[int, ...] | None:
    """The trial counts behind a ratio's bootstrap: both sides', or None where either has no bootstrap."""
    return (*num, *den) if isinstance(num, tuple) and isinstance(den, tuple) else None


def interval_used(counts: object) -> str:
    """Which interval a row's verdict used, in words: ``covering 3 trials`` (every cell behind it had trials),
    ``within one process`` (none had), ``mixed: …`` (some had); ``—`` without an interval."""
    if not isinstance(counts, tuple) or not counts:
        return "—"
    covering = sorted({n for n in counts if n >= 2})
    if not covering:
        return WITHIN
    many = interval_words(covering[0]) if len(covering) == 1 else f"covering {covering[0]}–{covering[-1]} trials"
    return many if all(n >= 2 for n in counts) else f"mixed: {many} for some cells, {WITHIN} for others"


def interval_counts(words: pd.Series, unit: str = "rows") -> str:
    """``covering 3 trials in 4 rows; within one process in 2 rows``: how many used each interval (``—`` left out)."""
    counts = words[words != "—"].value_counts(sort=False)
    return "; ".join(f"{word} in {n} {unit}" for word, n in counts.items())


def paper_cells() -> pd.DataFrame:
    frame = pd.DataFrame(paper_records()).rename(columns={"latency_ms": "value"})
    return frame.assign(label="paper", boot=None, **{TRIALS_COLUMN: None})[[*KEYS, "value", "boot", TRIALS_COLUMN]]


def ratio_bootstrap(num: object, den: object) -> np.ndarray | None:
    return num / den if isinstance(num, np.ndarray) and isinstance(den, np.ndarray) else None


def with_interval(frame: pd.DataFrame) -> pd.DataFrame:
    """``low`` / ``high``: the 95 % interval of ``ratio`` from its ``boot`` column (NaN without one)."""
    bounds = [interval(b) if isinstance(b, np.ndarray) else (math.nan, math.nan) for b in frame["boot"]]
    return frame.assign(low=[b[0] for b in bounds], high=[b[1] for b in bounds])


def pairs(frame: pd.DataFrame, axis: str, num: str, den: str, keys: list[str] = KEYS) -> pd.DataFrame:
    """Cells equal in every key but ``axis``: ``ratio = value[axis=num] / value[axis=den]``, its bootstrap
    (``boot``) and 95 % interval (``low``, ``high``)."""
    other = [k for k in keys if k != axis]
    carried = ["value", "boot", *([TRIALS_COLUMN] if TRIALS_COLUMN in frame else [])]
    a, b = (
        frame[frame[axis] == v][[*other, *carried]].rename(columns={c: f"{side}_{c}" for c in carried})
        for v, side in ((num, "num"), (den, "den"))
    )
    merged = a.merge(b, on=other).rename(columns={"num_value": "num_ms", "den_value": "den_ms"})
    merged["ratio"] = merged["num_ms"] / merged["den_ms"]
    merged["boot"] = [ratio_bootstrap(n, d) for n, d in zip(merged["num_boot"], merged["den_boot"], strict=True)]
    dropped = ["num_boot", "den_boot"]
    if TRIALS_COLUMN in frame:
        sides = zip(merged[f"num_{TRIALS_COLUMN}"], merged[f"den_{TRIALS_COLUMN}"], strict=True)
        merged[TRIALS_COLUMN] = [joined_trials(n, d) for n, d in sides]
        dropped += [f"num_{TRIALS_COLUMN}", f"den_{TRIALS_COLUMN}"]
    return with_interval(merged.drop(columns=dropped))


def with_paper(ours: pd.DataFrame, paper: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    """Attach the paper's ratio for the same cell (our tf32 <-> the paper's FP32, fp16 <-> FP16; strict fp32, bf16
    and int8 have no paper column: NaN)."""
    if ours.empty:
        return ours.assign(paper_ratio=pd.Series(dtype=float))
    ours = ours.assign(_pp=ours["precision"].map(PAPER_PRECISION)) if "precision" in on else ours.copy()
    ref = paper.rename(columns={"ratio": "paper_ratio"})
    keys = [k for k in on if k != "precision"]
    if "precision" in on:
        ref = ref.rename(columns={"precision": "_pp"})
        keys.append("_pp")
    merged = ours.merge(ref[[*keys, "paper_ratio"]], on=keys, how="left")
    return merged.drop(columns=[c for c in ("_pp",) if c in merged])


def pretty(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Detail rows for people: names as in the paper, ratios as ``2.41×``, latencies with 3 decimals."""
    out = pd.DataFrame()
    for key, title in columns.items():
        if key not in frame:
            continue
        series = frame[key]
        if key == "block":
            series = series.map(lambda v: BLOCK_NAMES.get(v, v))
        elif key == "norm":
            series = series.map(lambda v: NORM_NAMES.get(v, v))
        elif key == "act":
            series = series.map(lambda v: ACT_NAMES.get(v, v))
        elif key == "precision":
            series = series.map(lambda v: PRECISION_SHOWN.get(v, v))
        elif key == "resolution":
            series = series.map(lambda v: f"{v}×{v}")
        elif key.endswith("_ms"):
            series = series.map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
        elif "ratio" in key:
            series = series.map(x)
        out[title] = series.values
        if key == "ratio" and "low" in frame:
            out[f"{title}: 95 % interval"] = [span(lo, hi) for lo, hi in zip(frame["low"], frame["high"], strict=True)]
            if TRIALS_COLUMN in frame:
                out[INTERVAL_COLUMN] = [interval_used(c) for c in frame[TRIALS_COLUMN]]
    return out


def span(low: float, high: float) -> str:
    """An interval as printed in the details: ``1.02–1.05×``; none (a table, or no samples) -> ``—``."""
    return f"{low:.3f}–{high:.3f}×" if math.isfinite(low) and math.isfinite(high) else "—"


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in ("resolution", "precision", "label", "block", "norm", "act") if k in frame]
    if frame.empty or not keys:
        return frame
    return frame.sort_values(keys, key=lambda s: s.map(lambda v: ordered_rank(s.name, v))).reset_index(drop=True)


def ordered_rank(axis: str, value: object) -> tuple[int, str]:
    rank = order_key(axis, value)
    return (int(rank[0]), str(rank[1]).zfill(8))


# --- the findings in writing ------------------------------------------------------------------------------


def findings_markdown(found: list[Finding], metric: str) -> str:
    """A summary table (claim, paper, ours, verdict) and one section per claim with the cells behind it."""
    summary = pd.DataFrame(
        [
            {
                "#": i,
                "claim": f.title + (" *(new)*" if f.new else ""),
                "paper": f.paper,
                "ours": f.ours,
                "verdict": f"**{f.verdict}**",
            }
            for i, f in enumerate(found, 1)
        ]
    )
    lines = [
        "# Findings: the paper's claims re-tested on our runs",
        "",
        f"Latency metric: `{metric}`. " + rule_text(),
        "",
        to_markdown(summary),
        "",
    ]
    for i, f in enumerate(found, 1):
        lines += [f"## {i}. {f.title}" + (" (new)" if f.new else ""), "", f"> {f.claim}", ""]
        lines += [f"- paper: {f.paper}", f"- ours: {f.ours}", f"- verdict: **{f.verdict}**"]
        if INTERVAL_COLUMN in f.details and (used := interval_counts(f.details[INTERVAL_COLUMN])):
            lines += [f"- intervals: {used}"]
        lines += [""]
        if not f.details.empty:
            shown = f.details.head(MAX_DETAIL_ROWS)
            lines += [to_markdown(shown), ""]
            if len(f.details) > MAX_DETAIL_ROWS:
                lines += [f"({len(f.details) - MAX_DETAIL_ROWS} more rows in findings.csv)", ""]
    return "\n".join(lines)


def write_findings(found: list[Finding], out_dir: Path, metric: str) -> list[Path]:
    """``findings.md`` (for people), ``findings.csv`` (every detail row) and ``findings.json`` (the summary)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "findings.md"
    md.write_text(findings_markdown(found, metric) + "\n")
    frames = [f.details.assign(claim=f.id) for f in found if not f.details.empty]
    csv = out_dir / "findings.csv"
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["claim"])).to_csv(csv, index=False)
    js = out_dir / "findings.json"
    summary = [
        {
            "id": f.id,
            "title": f.title,
            "claim": f.claim,
            "paper": f.paper,
            "ours": f.ours,
            "verdict": f.verdict,
            "new": f.new,
        }
        for f in found
    ]
    js.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return [md, csv, js]
