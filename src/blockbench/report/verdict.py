"""The verdict rule: how one ratio between two cells is judged, and how a claim's cells add up to its verdict.

Every claim is a ratio between cells (configurations) and every ratio is judged by one rule (:func:`direction`): where
the runs kept their samples, the ratio's 95 % interval comes from a bootstrap of both cells' medians
(:mod:`blockbench.measure.statistics`), over trials (Student's t about the median of trial medians) where a cell's
runs measured several (fresh processes and builds: the interval then covers the kernel choices that differ between
builds); the claim *holds* in a cell when the whole interval lies beyond ``1 + MARGIN`` in the claimed direction, is
*reversed* when it lies beyond the bound on the other side, is *equivalent* when it lies within ``1 ± MARGIN``, and
*cannot tell* otherwise. The margin absorbs what the interval does not cover: two runs made minutes apart drift by a
few percent (clocks, temperature, kernel choices). The paper's tables, and runs without samples, have no interval:
their point ratio is placed by the same rule. A claim's verdict counts its cells in each class; "holds" only when
every tested cell holds.

Precisions (:data:`PRECISION_RULE`): the paper's FP32 column allows TF32, so only our ``tf32`` stands for it; a cell
at strict ``fp32`` judged against the paper is *not comparable*, counted apart, and a claim judged within our data
counts strict FP32 as a scope of its own (:func:`tally_by_precision`).

A leaf: it imports no other module of the report; the claims (:mod:`blockbench.report.claims`), their shared
arithmetic (:mod:`blockbench.report.findings`) and the breakdown build on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from blockbench.axes.precisions import NAMES, PRECISIONS
from blockbench.measure.statistics import (
    CANNOT_TELL,
    EQUIVALENT,
    HIGHER,
    LOWER,
    RATIO_METHOD,
    TRIALS_METHOD,
    classify,
)

MARGIN = 0.05  # ratios within 1 ± 5 % are "equivalent": the drift between two separately launched runs
MAGNITUDE_TOLERANCE = 0.25  # a speed-up within ±25 % of the paper's counts as reproduced
# Our precision -> the paper's column it stands for. The paper's "FP32" is TensorRT's default build, which lets
# convolutions and matrix products use TF32: our tf32 is that column. Our strict fp32 (TF32 off) has no column in
# the paper, nor have bf16 and int8: a cell judged against the paper at those precisions is NOT_COMPARABLE.
PAPER_PRECISION = {"tf32": "fp32", "fp16": "fp16"}
NOT_COMPARABLE = "not comparable"
STRICT_FP32 = "strict FP32"  # how the report prints our fp32 (TF32 off)

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


def shown(precision: str) -> str:
    """A precision as the report prints it: the record's label, ``strict FP32`` for fp32."""
    if precision == "fp32":
        return STRICT_FP32
    return PRECISIONS[precision].label if precision in PRECISIONS else str(precision)


def in_order(precisions: pd.Series) -> list[str]:
    """The distinct precisions, in the record's order (widest first); unknown ones after, alphabetically."""
    return sorted(set(precisions), key=lambda p: (NAMES.index(p) if p in NAMES else len(NAMES), str(p)))


def rule_text() -> str:
    """The verdict rule in words, as the findings state it above their summary."""
    return (
        "**Verdict rule**, the same for every claim and every cell: the ratio the "
        f"claim predicts to be above 1 (slow / fast) has a 95 % interval ({RATIO_METHOD}, both cells' kept samples "
        "resampled; where a cell's runs measured trials, fresh processes and builds, its median is bootstrapped "
        f"over them instead: {TRIALS_METHOD}; each row's *interval* column says which: *within one process* or "
        f"*covering N trials*); the claim **holds** in a cell when the whole interval lies above {1 + MARGIN:.2f}, "
        f"is **reversed** when it lies below 1/{1 + MARGIN:.2f}, is **equivalent** when it lies within "
        f"±{MARGIN:.0%} of 1, and **cannot tell** otherwise. The ±{MARGIN:.0%} margin is the drift between two "
        "separately launched runs, which an interval within one process does not cover (one covering trials "
        "covers rebuilds of one configuration; the margin stays, so that every cell is judged by one rule). "
        "The paper's tables, and runs "
        "without kept samples, have no interval: their point ratio is placed by the same rule. A claim's verdict "
        "is *holds* (or *reversed*, *equivalent*) only when every tested cell says so, else *mixed* with the count "
        f"of each. A speed-up is *reproduced* when it holds and lies within ±{MAGNITUDE_TOLERANCE:.0%} of the "
        "paper's. The paper's values are computed from its "
        "Tables 1–3 (reference data, TensorRT 8.5 on an RTX 3090 Ti) with the same arithmetic. " + PRECISION_RULE
    )


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
    return f"{shown(str(precision))}, not in the paper"


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


def precision_names(precisions: pd.Series) -> str:
    """``FP16/TF32``: the precisions present, in the record's order, as the report prints them."""
    return "/".join(shown(p) for p in in_order(precisions))


def own_scope(precision: str) -> str:
    """``strict FP32, its own scope (the paper's FP32 allows TF32)``."""
    why = "the paper's FP32 allows TF32" if precision == "fp32" else "not in the paper"
    return f"{shown(precision)}, its own scope ({why})"


def tally_by_precision(verdicts: pd.Series, precisions: pd.Series, scope: str = "cells") -> str:
    """The verdict of a claim judged within our data at one precision (BN vs LN, the fastest block): cells at a
    precision the paper has (FP16, TF32 for its FP32) counted by :func:`tally`; cells at one it lacks (strict
    FP32) counted after them, each precision on its own and named, never folded in."""
    verdicts = pd.Series(list(verdicts), dtype=object)
    precisions = pd.Series(list(precisions), dtype=object)
    own = ~precisions.map(comparable).astype(bool)
    if not own.any():
        return tally(verdicts, scope)
    parts = [tally(verdicts[~own], f"{scope} at {precision_names(precisions[~own])}")] if (~own).any() else []
    for precision in in_order(precisions[own]):
        parts.append(f"{own_scope(precision)}: {tally(verdicts[precisions == precision], scope)}")
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
