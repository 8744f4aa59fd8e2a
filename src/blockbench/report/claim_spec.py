"""A claim as data (:class:`ClaimSpec`) and the one function that evaluates it (:func:`evaluate`); the table of
the claims the report re-tests is :data:`blockbench.report.claims.CLAIMS`.

Most claims have one shape: pair cells that differ on one axis (norm BN→LN, activation ReLU→GELU, precision
FP32→FP16, block A→B), divide, judge every pair by the rule of :mod:`blockbench.report.verdict` (direction, or
direction and magnitude against the paper), count the verdicts over the claim's scope and write the evidence.
A :class:`ClaimSpec` states that as data and :func:`evaluate` does the rest, so a new claim of this shape is one
more entry in the table. Claims of another shape (the gap between two gaps, the fastest block of a
configuration, engines and torch modes compared) keep a function of their own, named in the spec's ``custom``.

Precisions (the rule :data:`blockbench.report.verdict.PRECISION_RULE` states in the findings): the paper's FP32
column allows TF32, so our ``tf32`` stands for it and our strict ``fp32`` stands for nothing in the paper. A claim
whose cell verdict reads the paper's column -- a speed-up against the paper's tables (rule ``magnitude``) or a
contrast between precisions (axis ``precision``) -- gives a strict-FP32 cell the verdict *not comparable*, counted
apart. A claim judged within our data at one precision (rule ``direction`` on another axis, the fastest / slowest
block) counts strict-FP32 cells too, as their own scope after the paper's precisions
(:func:`blockbench.report.verdict.tally_by_precision`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    NORM_NAMES,
    PRECISION_SHOWN,
    RunSet,
)
from blockbench.report.findings import (
    Finding,
    Samples,
    pairs,
    pretty,
    sort_rows,
    with_paper,
)
from blockbench.report.paper import PAPER_STATED, PAPER_TEXT_CLAIMS
from blockbench.report.verdict import (
    NOT_TESTED,
    PAPER_PRECISION,
    comparable,
    count_faster,
    directions,
    faster_words,
    magnitudes,
    not_comparable,
    tally,
    tally_by_precision,
    tally_magnitude,
)

# How a claim judges each pair and sums them up:
#   direction: holds / reversed / equivalent / cannot tell per pair; "holds" only when all hold (tally)
#   magnitude: the direction, then within ±25 % of the paper's ratio (tally_magnitude)
#   faster:    which side is faster per pair, counted (count_faster) — for comparisons the paper did not make
#   measured:  which side is faster per pair; the claim is only "measured" (no single direction is claimed)
Rule = Literal["direction", "magnitude", "faster", "measured"]
Scope = Callable[[pd.DataFrame], pd.Series]  # cells or pairs -> which of them a claim is about
NOT_IN_PAPER = "not measured in the paper"
NO_TF32 = "no TF32 run (the paper's FP32) to set FP16 against"
AXIS_NAMES = {"block": BLOCK_NAMES, "norm": NORM_NAMES, "act": ACT_NAMES, "precision": PRECISION_SHOWN}
COLUMNS_PAIR = {
    "block": "Architecture",
    "resolution": "Resolution",
    "norm": "Norm",
    "act": "Act",
    "precision": "Precision",
    "label": "Engine",
}


@dataclass(frozen=True, eq=False)
class ClaimInputs:
    """What every claim is computed from: the runs, our cells (with bootstraps) and the paper's cells."""

    runs: RunSet
    metric: str
    samples: Samples  # run id -> its kept samples, one array per trial (or pooled)
    ours: pd.DataFrame
    paper: pd.DataFrame


@dataclass(frozen=True, eq=False)
class Evidence:
    """What a claim's texts are written from, after :func:`evaluate` paired and judged the cells."""

    spec: ClaimSpec
    rows: pd.DataFrame  # our pairs: ratio, low, high, paper_ratio, pair, in_scope, lacks, verdict
    ref: pd.DataFrame  # the paper's pairs of the same selection, with in_scope
    ours: pd.DataFrame  # our cells the pairs were made from (after select)
    paper: pd.DataFrame  # the paper's cells, likewise

    @property
    def scoped(self) -> pd.DataFrame:
        return self.rows[self.rows["in_scope"]]

    @property
    def outside(self) -> pd.DataFrame:
        return self.rows[~self.rows["in_scope"]]

    @property
    def judged(self) -> pd.DataFrame:
        """The pairs in scope at precisions the paper has (FP16, TF32 for its FP32)."""
        return self.scoped[self.scoped["lacks"].isna()]

    @property
    def apart(self) -> pd.DataFrame:
        """The pairs in scope at a precision the paper lacks (strict FP32): shown, never counted with the others."""
        return self.scoped[self.scoped["lacks"].notna()]

    @property
    def ref_scoped(self) -> pd.DataFrame:
        return self.ref[self.ref["in_scope"]]

    @property
    def ref_outside(self) -> pd.DataFrame:
        return self.ref[~self.ref["in_scope"]]


Text = str | Callable[[Evidence], str]  # a fixed text, or one written from the evidence


@dataclass(frozen=True, eq=False)
class ClaimSpec:
    """One claim as data: which pairs it compares, where, by which rule, and how its evidence reads.

    ``pairs`` are (slow, fast) values of ``axis``: each pair's ratio is slow / fast, above 1 when the claim
    holds. ``select`` narrows the cells before pairing (ours and the paper's alike); ``scope`` marks the pairs
    the verdict counts, the others are shown beside them as context. ``custom`` replaces all of it by a function
    for a claim of another shape.
    """

    id: str
    title: str
    claim: str | None = None  # None: the paper's own words, PAPER_TEXT_CLAIMS[id]
    axis: str = ""
    pairs: tuple[tuple[str, str], ...] = ()
    select: Scope | None = None
    scope: Scope | None = None
    scope_text: str = ""  # the scope in words, for the evidence ("256×256 FP16")
    rule: Rule = "direction"
    unit: str = "cells"  # what the tally counts
    sides: tuple[str, str] = ("", "")  # (fast, slow) side in words, for the "faster" and "measured" rules
    stated_per: str | None = None  # the axis the paper's stated number depends on (PAPER_STATED[id] by value)
    columns: Mapping[str, str] = field(default_factory=dict)  # detail rows: pair column -> heading
    paper: Text = NOT_IN_PAPER
    ours: Text = ""
    missing: Text | None = None  # why nothing could be tested, after "not tested"
    new: bool = False
    custom: Callable[[ClaimSpec, ClaimInputs], Finding] | None = None

    @property
    def words(self) -> str:
        return self.claim if self.claim is not None else PAPER_TEXT_CLAIMS[self.id]

    @property
    def reads_paper_column(self) -> bool:
        """Whether a cell's verdict depends on the paper's column of its precision: a speed-up against the paper's
        tables, or a contrast of precisions. Then a strict-FP32 cell is not comparable; otherwise it is judged
        within our data, in a scope of its own."""
        return self.rule == "magnitude" or (self.axis == "precision" and self.rule == "direction")


def _written(text: Text, evidence: Evidence) -> str:
    return text if isinstance(text, str) else text(evidence)


def pair_name(axis: str, slow: str, fast: str) -> str:
    """``ConvNeXt/VGG``: a pair's ratio in the paper's names."""
    names = AXIS_NAMES.get(axis, {})
    return f"{names.get(slow, slow)}/{names.get(fast, fast)}"


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Parts stacked in order; empty parts only count where every part is empty (they keep the columns)."""
    kept = [p for p in parts if len(p)] or parts[:1]
    return pd.concat(kept, ignore_index=True)


def _paper_pairs(spec: ClaimSpec, paper: pd.DataFrame, slow: str, fast: str) -> pd.DataFrame:
    """The paper's pairs that stand for ours: across precisions, its column of each side (our TF32 -> its FP32);
    none where a side has no column (strict FP32, BF16, INT8) or both sides are one column."""
    if spec.axis == "precision":
        slow, fast = PAPER_PRECISION.get(slow, ""), PAPER_PRECISION.get(fast, "")
    return pairs(paper if slow and fast and slow != fast else paper.iloc[:0], spec.axis, slow, fast)


def _lacks(axis: str, rows: pd.DataFrame, slow: str, fast: str) -> pd.Series:
    """Per pair, the precision it has that the paper lacks (strict FP32 …), None where the paper has both sides."""
    if axis == "precision":
        lacking = next((p for p in (slow, fast) if not comparable(p)), None)
        return pd.Series([lacking] * len(rows), index=rows.index, dtype=object)
    if "precision" not in rows:
        return pd.Series(None, index=rows.index, dtype=object)
    return rows["precision"].where(~rows["precision"].map(comparable).astype(bool), None).astype(object)


def _in_scope(spec: ClaimSpec, frame: pd.DataFrame) -> pd.Series:
    if spec.scope is None or frame.empty:
        return pd.Series(True, index=frame.index, dtype=bool)
    return spec.scope(frame).astype(bool)


def _cell_verdicts(spec: ClaimSpec, rows: pd.DataFrame) -> list[str]:
    if spec.rule == "magnitude":
        return magnitudes(rows)
    if spec.rule in ("faster", "measured"):
        return faster_words(rows, *spec.sides)
    return directions(rows)


def _claim_verdict(spec: ClaimSpec, scoped: pd.DataFrame) -> str:
    if spec.rule == "magnitude":
        return tally_magnitude(scoped["verdict"])
    if spec.rule == "faster":
        return count_faster(scoped, *spec.sides)
    if spec.rule == "measured":
        return "measured" if len(scoped) else NOT_TESTED
    if spec.reads_paper_column or "precision" not in scoped:
        return tally(scoped["verdict"], spec.unit)
    return tally_by_precision(scoped["verdict"], scoped["precision"], spec.unit)


def evaluate(spec: ClaimSpec, inputs: ClaimInputs) -> Finding:
    """The Finding of one claim: its pairs, each judged, the verdict over its scope, and the evidence in words."""
    if spec.custom is not None:
        return spec.custom(spec, inputs)
    ours, paper = inputs.ours, inputs.paper
    if spec.select is not None:
        ours, paper = ours[spec.select(ours)], paper[spec.select(paper)]
    others = [k for k in AXES if k != spec.axis]
    mine, refs = [], []
    for slow, fast in spec.pairs:
        ref = _paper_pairs(spec, paper, slow, fast)
        found = pairs(ours, spec.axis, slow, fast).assign(pair=pair_name(spec.axis, slow, fast))
        found["lacks"] = _lacks(spec.axis, found, slow, fast)
        mine.append(with_paper(found, ref, others))
        refs.append(ref)
    rows, ref = sort_rows(_concat(mine)), _concat(refs)
    if spec.stated_per is not None:
        stated = PAPER_STATED[spec.id]
        assert isinstance(stated, dict), f"{spec.id}: the paper states one number per {spec.stated_per}"
        rows["paper_stated"] = rows[spec.stated_per].map(stated)
    rows["in_scope"], ref["in_scope"] = _in_scope(spec, rows), _in_scope(spec, ref)
    rows["verdict"] = _cell_verdicts(spec, rows)
    if spec.reads_paper_column:
        apart = rows["lacks"].notna()
        rows.loc[apart, "verdict"] = [not_comparable(p) for p in rows.loc[apart, "lacks"]]
    evidence = Evidence(spec, rows, ref, ours, paper)
    verdict = _claim_verdict(spec, evidence.scoped)
    if verdict == NOT_TESTED and spec.missing is not None:
        verdict = f"{NOT_TESTED} ({_written(spec.missing, evidence)})"
    shown = rows.assign(in_scope=rows["in_scope"].map({True: "yes", False: ""}))
    return Finding(
        spec.id,
        spec.title,
        spec.words,
        _written(spec.paper, evidence),
        _written(spec.ours, evidence),
        verdict,
        pretty(shown, dict(spec.columns)),
        new=spec.new,
    )
