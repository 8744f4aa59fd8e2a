"""The paper's claims recomputed from our runs, each beside the paper's own number and with a verdict, plus
the comparisons the paper could not make (``ln`` vs ``ln_native``, eager vs compiled, engines, precisions).

Every claim is a ratio between cells (configurations) and every ratio is judged by one rule (:func:`direction`):
where the runs kept their samples, the ratio's 95 % interval comes from a bootstrap of both cells' medians
(:mod:`blockbench.statistics`); the claim *holds* in a cell when the whole interval lies beyond ``1 + MARGIN`` in
the claimed direction, is *reversed* when it lies beyond the bound on the other side, is *equivalent* when it lies
within ``1 ± MARGIN``, and *cannot tell* otherwise. The margin absorbs what the interval does not cover: two runs
made minutes apart drift by a few percent (clocks, temperature, kernel choices). The paper's tables, and runs
without samples, have no interval: their point ratio is placed by the same rule. A claim's verdict counts its cells
in each class; "holds" only when every tested cell holds.

This module holds that rule, the arithmetic every claim shares (cells, pairs, intervals, detail rows) and the
output; the claims themselves are a table of specifications in :mod:`blockbench.report.claims`.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
from blockbench.statistics import (
    CANNOT_TELL,
    EQUIVALENT,
    HIGHER,
    LOWER,
    RATIO_METHOD,
    SEED,
    bootstrap_medians,
    classify,
    interval,
)

MARGIN = 0.05  # ratios within 1 ± 5 % are "equivalent": the drift between two separately launched runs
MAGNITUDE_TOLERANCE = 0.25  # a speed-up within ±25 % of the paper's counts as reproduced
KEYS = [*AXES, "label"]
# Our precision -> the paper's column it stands for. The paper's "FP32" is TensorRT's default build, which lets
# convolutions and matrix products use TF32: our tf32 is that column. Our strict fp32 (TF32 off) has no column in
# the paper, nor have bf16 and int8: a cell judged against the paper at those precisions is NOT_COMPARABLE.
PAPER_PRECISION = {"tf32": "fp32", "fp16": "fp16"}
NOT_COMPARABLE = "not comparable"
MAX_DETAIL_ROWS = 60
BOOTSTRAPPED_METRIC = "latency_ms_median"  # the metric whose samples are kept: intervals exist for it only

HOLDS, REVERSED, SAME, UNCLEAR, NOT_TESTED = "holds", "reversed", "equivalent", CANNOT_TELL, "not tested"
MIXED = "mixed"
REPRODUCED, DIRECTION_ONLY, CONTRADICTED = "reproduced", "direction holds, magnitude differs", "contradicted"
_CLASS_WORDS = {HIGHER: HOLDS, LOWER: REVERSED, EQUIVALENT: SAME}

# The rule for precisions, as the findings state it.
PRECISION_RULE = (
    "**Precisions**: the paper's FP32 column is TensorRT's default build, which lets convolutions and matrix "
    "products use TF32, so only our TF32 runs stand for it (FP16 for its FP16). Our strict FP32 (TF32 off) has no "
    "column in the paper. A claim that reads the paper's number for a cell (a speed-up ≈ N× against its tables) or "
    f"contrasts FP16 with FP32 gives a strict-FP32 cell the outcome *{NOT_COMPARABLE}*, counted apart in its "
    f'verdict ("{NOT_COMPARABLE} in N cells: strict FP32, the paper\'s FP32 allows TF32"). A claim judged within '
    "our own data at one precision (BN vs LN, ReLU vs GELU, the fastest and the slowest block) also counts "
    "strict-FP32 cells, as their own scope after the cells at the paper's precisions, never folded into them. "
    "Tables label strict FP32 as such."
)


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


def direction(ratio: float, low: float = math.nan, high: float = math.nan) -> str:
    """The rule every claim uses, for a ratio (slow/fast as the claim predicts) and its 95 % interval."""
    if not math.isfinite(ratio):
        return NOT_TESTED
    return _CLASS_WORDS.get(classify(ratio, low, high, MARGIN), UNCLEAR)


def directions(rows: pd.DataFrame) -> list[str]:
    """:func:`direction` of every row of a :func:`pairs` frame."""
    return [direction(r, lo, hi) for r, lo, hi in _with_bounds(rows)]


def magnitude(ratio: float, paper: float, low: float = math.nan, high: float = math.nan) -> str:
    """A speed-up against the paper's: the direction first (:func:`direction`), then within ±25 % reproduced."""
    held = direction(ratio, low, high)
    if held != HOLDS:
        return CONTRADICTED if held == REVERSED else held
    if not math.isfinite(paper):
        return DIRECTION_ONLY
    return REPRODUCED if abs(math.log(ratio / paper)) <= math.log(1 + MAGNITUDE_TOLERANCE) else DIRECTION_ONLY


def magnitudes(rows: pd.DataFrame) -> list[str]:
    """:func:`magnitude` of every row of a :func:`pairs` frame with a ``paper_ratio`` column."""
    columns = [rows[c] for c in ("ratio", "paper_ratio", "low", "high")]
    return [magnitude(r, p, lo, hi) for r, p, lo, hi in zip(*columns, strict=True)]


def comparable(precision: object) -> bool:
    """Whether a cell at ``precision`` has a column in the paper: FP16, or TF32 for the paper's FP32."""
    return precision in PAPER_PRECISION


def why_not_comparable(precision: object) -> str:
    """Why a cell at ``precision`` is not judged against the paper: ``strict FP32, the paper's FP32 allows TF32``."""
    if precision == "fp32":
        return "strict FP32, the paper's FP32 allows TF32"
    return f"{PRECISION_SHOWN.get(str(precision), precision)}, not in the paper"


def not_comparable(precision: object) -> str:
    """The verdict of a cell that a claim would judge against a paper column it does not have."""
    return f"{NOT_COMPARABLE} ({why_not_comparable(precision)})"


def is_not_comparable(verdict: object) -> bool:
    return isinstance(verdict, str) and verdict.startswith(NOT_COMPARABLE)


def _not_comparable_note(verdicts: pd.Series, scope: str) -> str:
    """``not comparable in 24 cells: strict FP32, the paper's FP32 allows TF32``, one clause per reason."""
    reasons = [str(v)[len(NOT_COMPARABLE) :].strip(" ()") for v in verdicts if is_not_comparable(v)]
    counts = pd.Series(reasons, dtype=object).value_counts(sort=False)
    return "; ".join(f"{NOT_COMPARABLE} in {n} {scope}: {why}" for why, n in counts.items())


def _judged(verdicts: pd.Series) -> pd.Series:
    """The verdicts that count: neither not tested nor not comparable."""
    return verdicts[(verdicts != NOT_TESTED) & ~verdicts.map(is_not_comparable).astype(bool)]


def _with_note(head: str, note: str) -> str:
    if not note:
        return head
    return note if head == NOT_TESTED else f"{head}; {note}"


def tally(verdicts: pd.Series, scope: str = "cells") -> str:
    """A claim's verdict from its cells': ``holds (n of n cells)`` only when all hold, likewise ``reversed`` and
    ``equivalent``; otherwise ``mixed`` with the count of each. Not-comparable cells are never counted among them:
    they follow as ``not comparable in N cells: <why>``."""
    verdicts = pd.Series(verdicts, dtype=object)
    note = _not_comparable_note(verdicts, scope)
    verdicts = _judged(verdicts)
    n = len(verdicts)
    if n == 0:
        return _with_note(NOT_TESTED, note)
    counts = verdicts.value_counts()
    parts = [f"{word} in {counts[word]}" for word in (HOLDS, REVERSED, SAME, UNCLEAR) if counts.get(word, 0)]
    for word in (HOLDS, REVERSED, SAME):
        if counts.get(word, 0) == n:
            head = f"{word} ({n} of {n} {scope})" + (f" within ±{MARGIN:.0%}" if word == SAME else "")
            return _with_note(head, note)
    return _with_note(f"{MIXED}: {', '.join(parts)} (of {n} {scope})", note)


def _precision_names(precisions: pd.Series) -> str:
    return "/".join(PRECISION_SHOWN.get(p, p) for p in ordered("precision", list(precisions)))


def _own_scope(precision: str) -> str:
    """``strict FP32, its own scope (the paper's FP32 allows TF32)``."""
    why = "the paper's FP32 allows TF32" if precision == "fp32" else "not in the paper"
    return f"{PRECISION_SHOWN.get(precision, precision)}, its own scope ({why})"


def tally_by_precision(verdicts: pd.Series, precisions: pd.Series, scope: str = "cells") -> str:
    """The verdict of a claim judged within our data at one precision (BN vs LN, the fastest block): cells at a
    precision the paper has (FP16, TF32 for its FP32) counted by :func:`tally`; cells at one it lacks (strict
    FP32) counted after them, each precision on its own and named, never folded in."""
    verdicts = pd.Series(list(verdicts), dtype=object)
    precisions = pd.Series(list(precisions), dtype=object)
    own = ~precisions.map(comparable).astype(bool)
    if not own.any():
        return tally(verdicts, scope)
    parts = [tally(verdicts[~own], f"{scope} at {_precision_names(precisions[~own])}")] if (~own).any() else []
    for precision in ordered("precision", list(precisions[own])):
        parts.append(f"{_own_scope(precision)}: {tally(verdicts[precisions == precision], scope)}")
    return "; ".join(parts)


def spread_by_precision(rows: pd.DataFrame) -> str:
    """:func:`spread` of the rows' ratios, those at a precision the paper lacks (strict FP32) given apart."""
    if rows.empty or "precision" not in rows or rows["precision"].map(comparable).all():
        return spread(rows["ratio"]) if "ratio" in rows else spread(pd.Series(dtype=float))
    own = ~rows["precision"].map(comparable).astype(bool)
    parts = [f"{spread(rows[~own]['ratio'])} at {_precision_names(rows[~own]['precision'])}"] if (~own).any() else []
    for precision in ordered("precision", list(rows[own]["precision"])):
        parts.append(f"{_own_scope(precision)}: {spread(rows[rows['precision'] == precision]['ratio'])}")
    return "; ".join(parts)


def tally_magnitude(verdicts: pd.Series) -> str:
    """Overall verdict of a "≈ N× faster" claim: how many cells reproduce the number, keep only the direction,
    contradict it, or show no difference / cannot tell; ``mixed`` only when the cells disagree. Not-comparable
    cells follow as ``not comparable in N cells: <why>``."""
    verdicts = pd.Series(verdicts, dtype=object)
    note = _not_comparable_note(verdicts, "cells")
    verdicts = _judged(verdicts)
    if verdicts.empty:
        return _with_note(NOT_TESTED, note)
    counts = verdicts.value_counts()
    parts = [f"{counts[v]} {v}" for v in (REPRODUCED, DIRECTION_ONLY, CONTRADICTED, SAME, UNCLEAR) if counts.get(v, 0)]
    n = len(verdicts)
    uniform = [v for v in (REPRODUCED, CONTRADICTED, SAME) if counts.get(v, 0) == n]
    if uniform:
        head = uniform[0]
    elif counts.get(REPRODUCED, 0) + counts.get(DIRECTION_ONLY, 0) == n:
        head = DIRECTION_ONLY
    else:
        head = MIXED
    return _with_note(f"{head} ({'; '.join(parts)}; of {n} cells)", note)


def which_faster(ratio: float, low: float, high: float, den_name: str, num_name: str) -> str:
    """For ``ratio = num/den``: which side is faster by the rule, in words."""
    d = direction(ratio, low, high)
    return {HOLDS: f"{den_name} faster", REVERSED: f"{num_name} faster"}.get(d, d)


def faster_words(rows: pd.DataFrame, den_name: str, num_name: str) -> list[str]:
    """:func:`which_faster` of every row of a :func:`pairs` frame."""
    return [which_faster(r, lo, hi, den_name, num_name) for r, lo, hi in _with_bounds(rows)]


def _with_bounds(rows: pd.DataFrame) -> Iterator[tuple[float, float, float]]:
    """(ratio, low, high) of every row."""
    return zip(rows["ratio"], rows["low"], rows["high"], strict=True)


def count_faster(rows: pd.DataFrame, den_name: str, num_name: str) -> str:
    """``ln_native faster in 10 of 12 cells, ln faster in 1, equivalent in 1``."""
    d = pd.Series(directions(rows), dtype=object) if len(rows) else pd.Series(dtype=object)
    d = d[d != NOT_TESTED]
    if d.empty:
        return NOT_TESTED
    text = f"{den_name} faster in {int((d == HOLDS).sum())} of {len(d)} cells"
    for word, label in (
        (REVERSED, f"{num_name} faster"),
        (SAME, f"equivalent within ±{MARGIN:.0%}"),
        (UNCLEAR, UNCLEAR),
    ):
        if (d == word).any():
            text += f", {label} in {int((d == word).sum())}"
    return text


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


def our_cells(runs: RunSet, metric: str, samples: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """FINISHED cells only: (axes, label) -> value, and the bootstrap of the value where samples were kept."""
    grid = cells(runs.frame, metric)
    grid = grid[grid["state"] == OK].reset_index(drop=True)
    return with_bootstrap(grid, samples or {})[[*KEYS, "value", "boot"]]


def with_bootstrap(grid: pd.DataFrame, samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """A ``boot`` column: bootstrap medians of each cell's kept samples (its repeats pooled), None without them.

    Seeded by the cell's run ids, so a report is reproducible and no two cells share resampling indices.
    """
    boots = []
    for run_ids in grid["run_ids"]:
        kept = [samples[r] for r in run_ids if r in samples]
        if len(kept) != len(run_ids) or not kept:
            boots.append(None)
            continue
        rng = np.random.default_rng([SEED, zlib.crc32(",".join(sorted(run_ids)).encode())])
        boots.append(bootstrap_medians(np.concatenate(kept), rng))
    return grid.assign(boot=boots)


def paper_cells() -> pd.DataFrame:
    frame = pd.DataFrame(paper_records()).rename(columns={"latency_ms": "value"})
    return frame.assign(label="paper", boot=None)[[*KEYS, "value", "boot"]]


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
    a = frame[frame[axis] == num][[*other, "value", "boot"]].rename(columns={"value": "num_ms", "boot": "num_boot"})
    b = frame[frame[axis] == den][[*other, "value", "boot"]].rename(columns={"value": "den_ms", "boot": "den_boot"})
    merged = a.merge(b, on=other)
    merged["ratio"] = merged["num_ms"] / merged["den_ms"]
    merged["boot"] = [ratio_bootstrap(n, d) for n, d in zip(merged["num_boot"], merged["den_boot"], strict=True)]
    return with_interval(merged.drop(columns=["num_boot", "den_boot"]))


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
        f"Latency metric: `{metric}`. **Verdict rule**, the same for every claim and every cell: the ratio the "
        f"claim predicts to be above 1 (slow / fast) has a 95 % interval ({RATIO_METHOD}, both cells' kept samples "
        f"resampled); the claim **holds** in a cell when the whole interval lies above {1 + MARGIN:.2f}, is "
        f"**reversed** when it lies below 1/{1 + MARGIN:.2f}, is **equivalent** when it lies within ±{MARGIN:.0%} "
        f"of 1, and **cannot tell** otherwise. The ±{MARGIN:.0%} margin is the drift between two separately "
        "launched runs, which the interval (noise within each run) does not cover. The paper's tables, and runs "
        "without kept samples, have no interval: their point ratio is placed by the same rule. A claim's verdict "
        "is *holds* (or *reversed*, *equivalent*) only when every tested cell says so, else *mixed* with the count "
        f"of each. A speed-up is *reproduced* when it holds and lies within ±{MAGNITUDE_TOLERANCE:.0%} of the "
        "paper's. The paper's values are computed from its "
        "Tables 1–3 (reference data, TensorRT 8.5 on an RTX 3090 Ti) with the same arithmetic. " + PRECISION_RULE,
        "",
        to_markdown(summary),
        "",
    ]
    for i, f in enumerate(found, 1):
        lines += [f"## {i}. {f.title}" + (" (new)" if f.new else ""), "", f"> {f.claim}", ""]
        lines += [f"- paper: {f.paper}", f"- ours: {f.ours}", f"- verdict: **{f.verdict}**", ""]
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
