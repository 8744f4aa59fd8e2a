"""The claims the report re-tests, as a table of specifications (:data:`CLAIMS`) evaluated by one function.

Most claims have one shape: pair cells that differ on one axis (norm BN→LN, activation ReLU→GELU, precision
FP32→FP16, block A→B), divide, judge every pair by the rule of :mod:`blockbench.report.findings` (direction, or
direction and magnitude against the paper), count the verdicts over the claim's scope and write the evidence.
A :class:`ClaimSpec` states that as data and :func:`evaluate` does the rest, so a new claim of this shape is one
more entry in the table. Claims of another shape (the gap between two gaps, the fastest block of a
configuration, engines and torch modes compared) keep a function of their own, named in the spec's ``custom``.

Precisions (the rule :data:`blockbench.report.findings.PRECISION_RULE` states in the findings): the paper's FP32
column allows TF32, so our ``tf32`` stands for it and our strict ``fp32`` stands for nothing in the paper. A claim
whose cell verdict reads the paper's column -- a speed-up against the paper's tables (rule ``magnitude``) or a
contrast between precisions (axis ``precision``) -- gives a strict-FP32 cell the verdict *not comparable*, counted
apart. A claim judged within our data at one precision (rule ``direction`` on another axis, the fastest / slowest
block) counts strict-FP32 cells too, as their own scope after the paper's precisions
(:func:`blockbench.report.findings.tally_by_precision`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from typing import Literal

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
    make_label,
    ordered,
)
from blockbench.report.findings import (
    HOLDS,
    KEYS,
    MARGIN,
    NOT_COMPARABLE,
    NOT_TESTED,
    PAPER_PRECISION,
    REVERSED,
    SAME,
    UNCLEAR,
    Finding,
    comparable,
    count_faster,
    directions,
    faster_words,
    geomean,
    magnitudes,
    not_comparable,
    pairs,
    pretty,
    ratio_bootstrap,
    sort_rows,
    spread,
    spread_by_precision,
    tally,
    tally_by_precision,
    tally_magnitude,
    which_faster,
    with_bootstrap,
    with_interval,
    with_paper,
    x,
)
from blockbench.report.paper import PAPER_STATED, PAPER_TEXT_CLAIMS

# How a claim judges each pair and sums them up:
#   direction: holds / reversed / equivalent / cannot tell per pair; "holds" only when all hold (tally)
#   magnitude: the direction, then within ±25 % of the paper's ratio (tally_magnitude)
#   faster:    which side is faster per pair, counted (count_faster) — for comparisons the paper did not make
#   measured:  which side is faster per pair; the claim is only "measured" (no single direction is claimed)
Rule = Literal["direction", "magnitude", "faster", "measured"]
Scope = Callable[[pd.DataFrame], pd.Series]  # cells or pairs -> which of them a claim is about
NOT_IN_PAPER = "not measured in the paper"
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
    samples: dict[str, np.ndarray]
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


# --- evidence of the claims that are data -------------------------------------------------------------------


def _identity(without: str) -> dict[str, str]:
    """Detail columns naming a pair's cell: every axis and the engine, but the one the pair varies."""
    return {k: v for k, v in COLUMNS_PAIR.items() if k != without}


def _paper_share_holding(evidence: Evidence) -> str:
    return f"{directions(evidence.ref).count(HOLDS)} of {len(evidence.ref)} cells"


def _stated_per_resolution(evidence: Evidence) -> str:
    """``64: text ≈3×, tables 3.17× / 3.00× (ReLU / GELU); …``."""
    stated = PAPER_STATED[evidence.spec.id]
    assert isinstance(stated, dict)
    ref = evidence.ref
    return "; ".join(
        f"{r}: text ≈{v:g}×, tables {' / '.join(x(t) for t in ref[ref['resolution'] == r]['ratio'])} (ReLU / GELU)"
        for r, v in stated.items()
    )


def _spread_per_resolution(evidence: Evidence) -> str:
    rows = evidence.rows
    resolutions = ordered("resolution", list(rows["resolution"]))
    return "; ".join(f"{r}: {spread(rows[rows['resolution'] == r]['ratio'])}" for r in resolutions)


def _spread_per_pair(evidence: Evidence) -> str:
    rows = evidence.rows
    return "; ".join(f"{p}: {spread(rows[rows['pair'] == p]['ratio'])}" for p in rows["pair"].unique())


def _blocks(spec: ClaimSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The slow and the fast blocks of a block claim, in the order its pairs name them."""
    return tuple(dict.fromkeys(s for s, _ in spec.pairs)), tuple(dict.fromkeys(f for _, f in spec.pairs))


def _block_paper(evidence: Evidence) -> str:
    ref, spec = evidence.ref_scoped, evidence.spec
    return (
        f"text ≈{PAPER_STATED[spec.id]:g}×; tables, {spec.scope_text}: {spread(ref['ratio'])}, geometric mean "
        f"{x(geomean(ref['ratio']))}"
    )


def _apart_text(evidence: Evidence) -> str:
    """``; not comparable (strict FP32): median 0.81× (…)``: the ratios of the pairs in scope that the paper has
    no column for, given apart; nothing where there are none."""
    apart = evidence.apart
    if apart.empty:
        return ""
    names = "/".join(PRECISION_SHOWN.get(p, p) for p in ordered("precision", list(apart["lacks"])))
    return f"; {NOT_COMPARABLE} ({names}): {spread(apart['ratio'])}"


def _precisions_of(rows: pd.DataFrame) -> str:
    """`` at FP16``: the precisions of pairs shown beside others the paper lacks (nothing without a precision)."""
    if rows.empty or "precision" not in rows:
        return ""
    return " at " + "/".join(PRECISION_SHOWN.get(p, p) for p in ordered("precision", list(rows["precision"])))


def _fp16_against_tf32(evidence: Evidence) -> str:
    """``FP16/TF32: MobileNet 1.25× (n=1); other blocks …``, or that no TF32 run was there to compare."""
    judged, others = evidence.judged, evidence.outside[evidence.outside["lacks"].isna()]
    if judged.empty and others.empty:
        return NO_TF32
    return f"FP16/TF32: MobileNet {spread(judged['ratio'])}; other blocks {spread(others['ratio'])}"


def _block_ours(evidence: Evidence) -> str:
    judged, outside = evidence.judged, evidence.outside
    where = evidence.spec.scope_text + (_precisions_of(judged) if len(evidence.apart) else "")
    text = f"{where}: {spread(judged['ratio'])}; geometric mean {x(geomean(judged['ratio']))}"
    text += _apart_text(evidence)
    return text + (f"; elsewhere {spread(outside['ratio'])}" if len(outside) else "")


def _block_missing(evidence: Evidence) -> str:
    """Why a block claim has no pair: no run in its scope at all, or which of its blocks never ran there."""
    spec, ours = evidence.spec, evidence.ours
    assert spec.scope is not None
    here = ours[spec.scope(ours)] if len(ours) else ours
    if here.empty:
        return f"no runs in scope: {spec.scope_text}"
    slow_blocks, fast_blocks = _blocks(spec)
    missing = [BLOCK_NAMES[b] for b in (*slow_blocks, *fast_blocks) if b not in set(here["block"])]
    if missing:
        return f"{spec.scope_text} was run, but without {' or '.join(dict.fromkeys(missing))} to compare"
    slow = "/".join(BLOCK_NAMES[b] for b in slow_blocks)
    fast = "/".join(BLOCK_NAMES[b] for b in fast_blocks)
    return f"no {slow} run pairs with a {fast} run of the same norm, activation and precision in {spec.scope_text}"


def _block_claim(
    claim_id: str, title: str, slow: tuple[str, ...], fast: tuple[str, ...], scope: Scope, scope_text: str
) -> ClaimSpec:
    """A claim "block A ≈ N× slower than block B": every slow/fast block pair, each against the paper's tables."""
    return ClaimSpec(
        claim_id,
        title,
        axis="block",
        pairs=tuple(product(slow, fast)),
        scope=scope,
        scope_text=scope_text,
        rule="magnitude",
        columns={
            "pair": "ratio of",
            **_identity("block"),
            "num_ms": "slower (ms)",
            "den_ms": "faster (ms)",
            "ratio": "ratio",
            "paper_ratio": "paper ratio",
            "in_scope": "claim's scope",
            "verdict": "verdict",
        },
        paper=_block_paper,
        ours=_block_ours,
        missing=_block_missing,
    )


# --- claims of another shape --------------------------------------------------------------------------------


NO_TF32 = "no TF32 run (the paper's FP32) to set FP16 against"


def _gaps(frame: pd.DataFrame, axis: str, slow: str, fast: str) -> pd.DataFrame:
    """Per cell, the gap ``slow/fast`` along ``axis`` as a ``value``, that axis emptied (the gap is across it)."""
    gaps = pairs(frame, axis, slow, fast).drop(columns=["num_ms", "den_ms", "low", "high"])
    return gaps.rename(columns={"ratio": "value"}).assign(**{axis: ""})


def _wider(gaps: pd.DataFrame, fp32: str) -> pd.DataFrame:
    """The gap at FP16 over the gap at ``fp32`` (a column of ours or the paper's FP32) per cell."""
    wider = pairs(gaps, "precision", "fp16", fp32).rename(columns={"num_ms": "fp16_ratio", "den_ms": "fp32_ratio"})
    return wider.assign(fp32_side=PRECISION_SHOWN.get(fp32, fp32))


def fp16_widens_gaps(spec: ClaimSpec, inputs: ClaimInputs) -> Finding:
    """Per cell, the gap at FP16 over the gap at FP32: (LN/BN at FP16) / (LN/BN at FP32), likewise GELU/ReLU.

    The claim contrasts the paper's FP16 and FP32 columns, so our FP32 side is TF32 (the paper's FP32 allows it);
    a gap at strict FP32 is shown, its verdict *not comparable*, never counted with the others."""
    parts = []
    for name, axis, slow, fast in (("LN/BN", "norm", "ln", "bn"), ("GELU/ReLU", "act", "gelu", "relu")):
        ours = _gaps(inputs.ours, axis, slow, fast)
        for fp32 in ("tf32", "fp32"):
            parts.append(_wider(ours, fp32).assign(gap=name, source="ours"))
        paper = _wider(_gaps(inputs.paper, axis, slow, fast), "fp32").assign(fp32_side="FP32 (TF32 allowed)")
        parts.append(paper.assign(gap=name, source="paper"))
    columns = ["gap", "source", *[k for k in KEYS if k != "precision"], "fp32_side", "fp32_ratio", "fp16_ratio"]
    columns += ["ratio", "low", "high"]
    table = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    table["verdict"] = directions(table)
    strict = (table["source"] == "ours") & (table["fp32_side"] == PRECISION_SHOWN["fp32"])
    table.loc[strict, "verdict"] = not_comparable("fp32")
    mine, ref = table[table["source"] == "ours"], table[table["source"] == "paper"]
    details = pretty(
        sort_rows(table),
        {
            "gap": "gap",
            "source": "source",
            "block": "Architecture",
            "resolution": "Resolution",
            "norm": "Norm",
            "act": "Act",
            "label": "Engine",
            "fp32_side": "FP32 side",
            "fp32_ratio": "at FP32",
            "fp16_ratio": "at FP16",
            "ratio": "FP16 gap / FP32 gap",
            "verdict": "wider at FP16?",
        },
    )
    judged, apart = mine[~strict[mine.index]], mine[strict[mine.index]]
    ours = f"gap ratio, FP16 against TF32: {spread(judged['ratio'])}" if len(judged) else NO_TF32
    if len(apart):
        ours += f"; {NOT_COMPARABLE}, FP16 against strict FP32: {spread(apart['ratio'])}"
    return Finding(
        spec.id,
        spec.title,
        spec.words,
        f"{tally(ref['verdict'])}; gap ratio {spread(ref['ratio'])}",
        ours,
        tally(mine["verdict"]),
        details,
    )


EXTREME_KEYS = ["norm", "act", "resolution", "precision", "label"]


def _extreme_block(frame: pd.DataFrame, block: str, fastest: bool) -> pd.DataFrame:
    """Per configuration with >= 2 blocks: the fastest (slowest) block, and ``block`` against its strongest rival,
    as ``ratio`` > 1 when ``block`` wins (rival/block for fastest, block/rival for slowest), with its interval."""
    records = []
    for key, group in frame.groupby(EXTREME_KEYS):
        if group["block"].nunique() < 2:
            continue
        ranked = group.sort_values("value", ascending=fastest)
        winner = ranked.iloc[0]
        record = {
            **dict(zip(EXTREME_KEYS, key, strict=True)),
            "winner": winner["block"],
            "value": winner["value"],
            "n_blocks": group["block"].nunique(),
            "ratio": math.nan,
            "boot": None,
        }
        mine = group[group["block"] == block]
        if len(mine):
            claimed = mine.iloc[0]
            rival = ranked[ranked["block"] != block].iloc[0]
            num, den = (rival, claimed) if fastest else (claimed, rival)
            record["ratio"] = num["value"] / den["value"]
            record["boot"] = ratio_bootstrap(num["boot"], den["boot"])
        records.append(record)
    columns = [*EXTREME_KEYS, "winner", "value", "n_blocks", "ratio", "boot"]
    return with_interval(pd.DataFrame(records, columns=columns)).drop(columns="boot")


def extreme_block(spec: ClaimSpec, inputs: ClaimInputs, block: str, fastest: bool) -> Finding:
    """The claim "``block`` is the fastest (slowest) block": per configuration, ``block`` against its closest rival."""
    mine, ref = _extreme_block(inputs.ours, block, fastest), _extreme_block(inputs.paper, block, fastest)
    # A configuration where the claimed block was not run (or failed) cannot test the claim.
    for table in (mine, ref):
        table["verdict"] = directions(table)
    word = "fastest" if fastest else "slowest"
    mine = sort_rows(mine)
    mine["winner"] = mine["winner"].map(lambda v: BLOCK_NAMES.get(v, v))
    details = pretty(
        mine.rename(columns={"value": "winner_ms"}),
        {
            "resolution": "Resolution",
            "norm": "Norm",
            "act": "Act",
            "precision": "Precision",
            "label": "Engine",
            "n_blocks": "blocks run",
            "winner": word,
            "winner_ms": "its latency (ms)",
            "ratio": f"{BLOCK_NAMES[block]} vs its closest rival",
            "verdict": "verdict",
        },
    )
    paper_hits = int((ref["winner"] == block).sum())
    return Finding(
        spec.id,
        spec.title,
        spec.words,
        f"{BLOCK_NAMES[block]} {word} in {paper_hits} of {len(ref)} configurations",
        _extreme_ours(mine, f"{BLOCK_NAMES[block]} {word} beyond ±{MARGIN:.0%}"),
        tally_by_precision(mine["verdict"], mine["precision"], "configurations"),
        details,
    )


def _extreme_ours(mine: pd.DataFrame, what: str) -> str:
    """``ConvNeXt slowest beyond ±5% in 4 of 12 configurations with ≥ 2 blocks at FP16; strict FP32, its own
    scope (…): 0 of 12``: the paper's precisions first, each precision it lacks apart."""

    def hits(rows: pd.DataFrame) -> str:
        return f"{int((rows['verdict'] == HOLDS).sum())} of {int((rows['verdict'] != NOT_TESTED).sum())}"

    own = ~mine["precision"].map(comparable).astype(bool)
    if not own.any():
        return f"{what} in {hits(mine)} configurations with ≥ 2 blocks"
    names = "/".join(PRECISION_SHOWN.get(p, p) for p in ordered("precision", list(mine[~own]["precision"])))
    parts = [f"{what} in {hits(mine[~own])} configurations with ≥ 2 blocks at {names}"] if (~own).any() else []
    for precision in ordered("precision", list(mine[own]["precision"])):
        name = PRECISION_SHOWN.get(precision, precision)
        parts.append(f"at {name} (its own scope): {hits(mine[mine['precision'] == precision])}")
    return "; ".join(parts)


def eager_vs_compiled(spec: ClaimSpec, inputs: ClaimInputs) -> Finding:
    """Eager against every other torch mode of the same configuration: the mode is a param, not a paper axis."""
    runs, frame = inputs.runs, inputs.runs.frame
    mode_key = "params.backend.mode"
    if mode_key not in frame or frame[mode_key].dropna().nunique() < 2 or "eager" not in set(frame[mode_key]):
        needs = "needs torch runs with backend.mode=eager and another mode"
        return Finding(spec.id, spec.title, spec.words, NOT_IN_PAPER, needs, NOT_TESTED, new=True)
    torch_runs = frame[frame[mode_key].notna()].copy()
    keys = [k for k in runs.variant_keys if k != mode_key]
    # Label without the mode, so eager and compiled runs of one configuration meet in one pair.
    torch_runs["label"] = [make_label(row, keys) + "\x00" + row[mode_key] for _, row in torch_runs.iterrows()]
    grid = cells(torch_runs, inputs.metric)
    grid = with_bootstrap(grid[grid["state"] == OK].reset_index(drop=True), inputs.samples)
    grid[["label", "mode"]] = grid["label"].str.split("\x00", expand=True)
    grid = grid[[*KEYS, "mode", "value", "boot"]]
    others = sorted(m for m in grid["mode"].unique() if m != "eager")
    parts = [pairs(grid, "mode", "eager", m, [*KEYS, "mode"]).assign(mode=m) for m in others]
    empty = pd.DataFrame(columns=["mode", "ratio", "low", "high"])
    rows = sort_rows(pd.concat(parts, ignore_index=True)) if parts else empty
    rows["verdict"] = [
        which_faster(r, lo, hi, m, "eager")
        for r, lo, hi, m in zip(rows["ratio"], rows["low"], rows["high"], rows["mode"], strict=True)
    ]
    details = pretty(
        rows,
        {
            "mode": "vs mode",
            **COLUMNS_PAIR,
            "num_ms": "eager (ms)",
            "den_ms": "other mode (ms)",
            "ratio": "eager/other",
            "verdict": "verdict",
        },
    )
    modes = list(dict.fromkeys(rows["mode"]))
    return Finding(
        spec.id,
        spec.title,
        spec.words,
        NOT_IN_PAPER,
        "; ".join(f"eager/{m}: {spread(rows[rows['mode'] == m]['ratio'])}" for m in modes) or "no pairs",
        "; ".join(f"{m}: {count_faster(rows[rows['mode'] == m], m, 'eager')}" for m in modes) or NOT_TESTED,
        details,
        new=True,
    )


def engines(spec: ClaimSpec, inputs: ClaimInputs) -> Finding:
    """Every pair of engines over the cells both ran: one summary row per pair, not one row per cell."""
    labels = inputs.runs.labels
    records = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            merged = pairs(inputs.ours, "label", b, a)
            if merged.empty:
                continue
            d = pd.Series(directions(merged))
            records.append(
                {
                    "pair": f"{b} / {a}",
                    "cells": len(merged),
                    "median_ratio": merged["ratio"].median(),
                    "min_ratio": merged["ratio"].min(),
                    "max_ratio": merged["ratio"].max(),
                    "a_faster": int((d == HOLDS).sum()),
                    "b_faster": int((d == REVERSED).sum()),
                    "same": int((d == SAME).sum()),
                    "unclear": int((d == UNCLEAR).sum()),
                }
            )
    columns = ["pair", "cells", "median_ratio", "min_ratio", "max_ratio", "a_faster", "b_faster", "same", "unclear"]
    table = pd.DataFrame(records, columns=columns)
    details = pretty(
        table,
        {
            "pair": "B / A",
            "cells": "cells",
            "median_ratio": "median B/A",
            "min_ratio": "min",
            "max_ratio": "max",
            "a_faster": "A faster",
            "b_faster": "B faster",
            "same": f"equivalent (±{MARGIN:.0%})",
            "unclear": UNCLEAR,
        },
    )
    counted = (("cells", "cells"), ("A faster", "a_faster"), ("B faster", "b_faster"))
    counted += ((f"equivalent (±{MARGIN:.0%})", "same"), (UNCLEAR, "unclear"))
    for title, key in counted:
        if title in details:
            details[title] = table[key].astype(int).astype(str).values
    return Finding(
        spec.id,
        spec.title,
        spec.words,
        "not measured in the paper (TensorRT only)",
        "; ".join(f"{r['pair']}: median {x(r['median_ratio'])} over {r['cells']} cells" for _, r in table.iterrows())
        or "only one engine in these runs",
        "measured" if len(table) else NOT_TESTED,
        details,
        new=True,
    )


# --- the table ----------------------------------------------------------------------------------------------

# (slower, faster) precisions the precision finding compares, where both ran on the same engine and configuration.
PRECISION_PAIRS = (
    ("fp32", "tf32"),
    ("fp32", "fp16"),
    ("tf32", "fp16"),
    ("fp32", "bf16"),
    ("tf32", "bf16"),
    ("fp32", "int8"),
    ("fp16", "int8"),
    ("bf16", "int8"),
)


def _ratio_columns(slow: str, fast: str, paper_note: str = "") -> dict[str, str]:
    """The detail columns of a slow/fast pair: both latencies, our ratio and the paper's."""
    return {
        "den_ms": f"{fast} (ms)",
        "num_ms": f"{slow} (ms)",
        "ratio": f"{slow}/{fast}",
        "paper_ratio": f"paper {slow}/{fast}{paper_note}",
    }


CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        "bn_faster_than_ln",
        "BN is faster than LN",
        axis="norm",
        pairs=(("ln", "bn"),),
        columns={
            **_identity("norm"),
            **_ratio_columns("LN", "BN"),
            "verdict": "verdict",
        },
        paper=lambda e: f"BN faster in {_paper_share_holding(e)}; LN/BN {spread(e.ref['ratio'])}",
        ours=lambda e: f"LN/BN {spread_by_precision(e.rows)}",
    ),
    ClaimSpec(
        "mobilenet_fp16_bn_vs_ln",
        "MobileNet FP16: BN ≈ 3×, 2×, 1.6× faster than LN at 64 / 256 / 1024",
        axis="norm",
        pairs=(("ln", "bn"),),
        select=lambda f: (f["block"] == "mobilenet") & (f["precision"] == "fp16"),
        rule="magnitude",
        stated_per="resolution",
        columns={
            "resolution": "Resolution",
            "act": "Act",
            "label": "Engine",
            **_ratio_columns("LN", "BN", " (tables)"),
            "paper_stated": "paper (text)",
            "verdict": "verdict",
        },
        paper=_stated_per_resolution,
        ours=lambda e: _spread_per_resolution(e) or "no MobileNet FP16 runs with both BN and LN",
    ),
    ClaimSpec(
        "relu_faster_than_gelu",
        "ReLU is faster than GELU",
        axis="act",
        pairs=(("gelu", "relu"),),
        columns={
            **_identity("act"),
            **_ratio_columns("GELU", "ReLU"),
            "verdict": "verdict",
        },
        paper=lambda e: (
            f"ReLU faster beyond {MARGIN:.0%} in only {_paper_share_holding(e)} of its own tables; "
            f"GELU/ReLU {spread(e.ref['ratio'])}"
        ),
        ours=lambda e: f"GELU/ReLU {spread_by_precision(e.rows)}",
    ),
    ClaimSpec("fp16_widens_gaps", "The BN/LN and ReLU/GELU gaps are larger at FP16", custom=fp16_widens_gaps),
    ClaimSpec(
        "mobilenet_fastest",
        f"{BLOCK_NAMES['mobilenet']} is the fastest block",
        custom=partial(extreme_block, block="mobilenet", fastest=True),
    ),
    ClaimSpec(
        "convnext_slowest",
        f"{BLOCK_NAMES['convnext']} is the slowest block",
        custom=partial(extreme_block, block="convnext", fastest=False),
    ),
    _block_claim(
        "convnext_vs_vgg_resnet_256_fp16",
        "ConvNeXt ≈ 2.4× slower than VGG and ResNet at 256×256 FP16",
        ("convnext",),
        ("vgg", "resnet"),
        lambda f: (f["resolution"] == 256) & (f["precision"] == "fp16"),
        "256×256 FP16",
    ),
    _block_claim(
        "mobilenet_vs_convnext_64",
        "MobileNet ≈ 3× faster than ConvNeXt at 64×64",
        ("convnext",),
        ("mobilenet",),
        lambda f: f["resolution"] == 64,
        "64×64",
    ),
    _block_claim(
        "mobilenet_vs_vgg_resnet",
        "MobileNet 1.24× faster than VGG and ResNet",
        ("vgg", "resnet"),
        ("mobilenet",),
        lambda f: pd.Series(True, index=f.index),
        "all configurations",
    ),
    ClaimSpec(
        "ln_fp16_slower_at_64",
        "LN at 64×64: FP16 slower than FP32 (MobileNet)",
        axis="precision",
        pairs=(("fp16", "tf32"), ("fp16", "fp32")),  # TF32 is the paper's FP32; strict FP32: not comparable
        select=lambda f: (f["norm"] == "ln") & (f["resolution"] == 64),
        scope=lambda f: f["block"] == "mobilenet",
        columns={
            "pair": "ratio of",
            "block": "Architecture",
            "act": "Act",
            "label": "Engine",
            "den_ms": "TF32 or strict FP32 (ms)",
            "num_ms": "FP16 (ms)",
            "ratio": "FP16/FP32",
            "paper_ratio": "paper FP16/FP32",
            "in_scope": "claim's scope",
            "verdict": "FP16 slower?",
        },
        paper=lambda e: (
            f"MobileNet FP16/FP32 {' / '.join(x(v) for v in e.ref_scoped['ratio'])} (ReLU / GELU); "
            f"other blocks {spread(e.ref_outside['ratio'])}"
        ),
        ours=lambda e: _fp16_against_tf32(e) + _apart_text(e),
        missing="needs LN runs at 64×64 in FP16 and TF32 (the paper's FP32 allows TF32)",
    ),
    ClaimSpec(
        "ln_vs_ln_native",
        "Hand-written LN vs one LayerNormalization op (`ln` vs `ln_native`)",
        claim="new: the paper only has the hand-written LN; does a fused LayerNormalization close the gap to BN?",
        axis="norm",
        pairs=(("ln", "ln_native"),),
        rule="faster",
        sides=("ln_native", "ln"),
        columns={
            **_identity("norm"),
            "num_ms": "LN hand-written (ms)",
            "den_ms": "LN native (ms)",
            "ratio": "ln/ln_native",
            "verdict": "verdict",
        },
        ours=lambda e: (
            f"ln/ln_native {spread(e.rows['ratio'])}; "
            f"ln_native/bn {spread(pairs(e.ours, 'norm', 'ln_native', 'bn')['ratio'])}"
        ),
        missing="needs ln and ln_native runs",
        new=True,
    ),
    ClaimSpec(
        "eager_vs_compiled",
        "PyTorch eager vs CUDA graph / torch.compile",
        claim="new: how much of eager's latency is framework overhead that graph capture or compilation removes?",
        new=True,
        custom=eager_vs_compiled,
    ),
    ClaimSpec(
        "engines",
        "Engines compared cell by cell",
        claim="new: the same configuration on every engine the sweep ran",
        new=True,
        custom=engines,
    ),
    ClaimSpec(
        "precisions",
        "What lower precision buys",
        claim="new: speed-up of TF32, FP16, BF16 and INT8 over strict FP32 (TF32 off), and of INT8 over FP16 and "
        "BF16, per configuration and engine, with intervals",
        axis="precision",
        pairs=PRECISION_PAIRS,  # the paper's FP32/FP16 beside our TF32/FP16 only: its FP32 column allows TF32
        rule="measured",
        sides=("lower precision", "higher precision"),
        columns={
            "pair": "ratio of",
            **_identity("precision"),
            "num_ms": "higher precision (ms)",
            "den_ms": "lower precision (ms)",
            "ratio": "speed-up",
            "paper_ratio": "paper FP32/FP16 (beside TF32/FP16)",
            "verdict": "verdict",
        },
        paper=lambda e: (
            f"paper FP32/FP16 {spread(pairs(e.paper, 'precision', 'fp32', 'fp16')['ratio'])} (its FP32 allows TF32: "
            "beside our TF32/FP16, not our strict FP32/FP16)"
        ),
        ours=lambda e: _spread_per_pair(e) or "only one precision in these runs",
        new=True,
    ),
)
