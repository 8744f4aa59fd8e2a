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
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Iterator
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
    PRECISION_NAMES,
    RunSet,
    cells,
    load_samples,
    make_label,
    ordered,
)
from blockbench.report.paper import PAPER_STATED, PAPER_TEXT_CLAIMS, paper_records
from blockbench.report.tables import to_markdown
from blockbench.statistics import (
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
# Our precision -> the paper's column it is compared with. The paper's "FP32" is TensorRT's default build,
# which allows TF32; our strict fp32 is compared with it too when no tf32 run exists (noted in the output).
PAPER_PRECISION = {"tf32": "fp32", "fp32": "fp32", "fp16": "fp16"}
FP32_CLASS = ("tf32", "fp32")  # preference order for "the FP32 column"
MAX_DETAIL_ROWS = 60
BOOTSTRAPPED_METRIC = "latency_ms_median"  # the metric whose samples are kept: intervals exist for it only

HOLDS, REVERSED, SAME, UNCLEAR, NOT_TESTED = "holds", "reversed", "equivalent", "cannot tell", "not tested"
MIXED = "mixed"
REPRODUCED, DIRECTION_ONLY, CONTRADICTED = "reproduced", "direction holds, magnitude differs", "contradicted"
_CLASS_WORDS = {HIGHER: HOLDS, LOWER: REVERSED, EQUIVALENT: SAME}


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


def tally(verdicts: pd.Series, scope: str = "cells") -> str:
    """A claim's verdict from its cells': ``holds (n of n cells)`` only when all hold, likewise ``reversed`` and
    ``equivalent``; otherwise ``mixed`` with the count of each class."""
    verdicts = pd.Series(verdicts)
    verdicts = verdicts[verdicts != NOT_TESTED]
    n = len(verdicts)
    if n == 0:
        return NOT_TESTED
    counts = verdicts.value_counts()
    parts = [f"{word} in {counts[word]}" for word in (HOLDS, REVERSED, SAME, UNCLEAR) if counts.get(word, 0)]
    for word in (HOLDS, REVERSED, SAME):
        if counts.get(word, 0) == n:
            return f"{word} ({n} of {n} {scope})" + (f" within ±{MARGIN:.0%}" if word == SAME else "")
    return f"{MIXED}: {', '.join(parts)} (of {n} {scope})"


def tally_magnitude(verdicts: pd.Series) -> str:
    """Overall verdict of a "≈ N× faster" claim: how many cells reproduce the number, keep only the direction,
    contradict it, or show no difference / cannot tell."""
    verdicts = pd.Series(verdicts)
    verdicts = verdicts[verdicts != NOT_TESTED]
    if verdicts.empty:
        return NOT_TESTED
    counts = verdicts.value_counts()
    parts = [f"{counts[v]} {v}" for v in (REPRODUCED, DIRECTION_ONLY, CONTRADICTED, SAME, UNCLEAR) if counts.get(v, 0)]
    n = len(verdicts)
    if counts.get(REPRODUCED, 0) == n:
        head = REPRODUCED
    elif counts.get(CONTRADICTED, 0) == n:
        head = CONTRADICTED
    elif counts.get(REPRODUCED, 0) + counts.get(DIRECTION_ONLY, 0) == n:
        head = DIRECTION_ONLY
    else:
        head = MIXED
    return f"{head} ({'; '.join(parts)}; of {n} cells)"


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
    """Attach the paper's ratio for the same cell (our tf32/fp32 <-> paper FP32, fp16 <-> FP16)."""
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
            series = series.map(lambda v: PRECISION_NAMES.get(v, v))
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
    from blockbench.report.data import order_key

    rank = order_key(axis, value)
    return (int(rank[0]), str(rank[1]).zfill(8))


# --- the paper's claims ---------------------------------------------------------------------------------

COLUMNS_PAIR = {
    "block": "Architecture",
    "resolution": "Resolution",
    "norm": "Norm",
    "act": "Act",
    "precision": "Precision",
    "label": "Engine",
}


def norm_speedup(ours: pd.DataFrame, paper: pd.DataFrame, fast: str, slow: str) -> pd.DataFrame:
    mine = pairs(ours, "norm", slow, fast)
    ref = pairs(paper, "norm", slow, fast)
    return with_paper(mine, ref, ["block", "act", "resolution", "precision"])


def claim_bn_faster_than_ln(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    rows = sort_rows(norm_speedup(ours, paper, "bn", "ln"))
    rows["verdict"] = directions(rows)
    ref = pairs(paper, "norm", "ln", "bn")
    details = pretty(
        rows,
        {
            **{k: v for k, v in COLUMNS_PAIR.items() if k != "norm"},
            "den_ms": "BN (ms)",
            "num_ms": "LN (ms)",
            "ratio": "LN/BN",
            "paper_ratio": "paper LN/BN",
            "verdict": "verdict",
        },
    )
    return Finding(
        "bn_faster_than_ln",
        "BN is faster than LN",
        PAPER_TEXT_CLAIMS["bn_faster_than_ln"],
        f"BN faster in {directions(ref).count(HOLDS)} of {len(ref)} cells; LN/BN {spread(ref['ratio'])}",
        f"LN/BN {spread(rows['ratio'])}",
        tally(rows["verdict"]),
        details,
    )


def claim_mobilenet_fp16_bn_vs_ln(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    rows = norm_speedup(ours, paper, "bn", "ln")
    rows = sort_rows(rows[(rows["block"] == "mobilenet") & (rows["precision"] == "fp16")])
    stated = PAPER_STATED["mobilenet_fp16_bn_vs_ln"]
    assert isinstance(stated, dict)
    rows["paper_stated"] = rows["resolution"].map(stated)
    rows["verdict"] = magnitudes(rows)
    ref = pairs(paper, "norm", "ln", "bn")
    ref = ref[(ref["block"] == "mobilenet") & (ref["precision"] == "fp16")]
    paper_text = "; ".join(
        f"{r}: text ≈{v:g}×, tables {' / '.join(x(t) for t in ref[ref['resolution'] == r]['ratio'])} (ReLU / GELU)"
        for r, v in stated.items()
    )
    ours_text = (
        "; ".join(
            f"{r}: {spread(rows[rows['resolution'] == r]['ratio'])}"
            for r in ordered("resolution", list(rows["resolution"]))
        )
        or "no MobileNet FP16 runs with both BN and LN"
    )
    details = pretty(
        rows,
        {
            "resolution": "Resolution",
            "act": "Act",
            "label": "Engine",
            "den_ms": "BN (ms)",
            "num_ms": "LN (ms)",
            "ratio": "LN/BN",
            "paper_ratio": "paper LN/BN (tables)",
            "paper_stated": "paper (text)",
            "verdict": "verdict",
        },
    )
    return Finding(
        "mobilenet_fp16_bn_vs_ln",
        "MobileNet FP16: BN ≈ 3×, 2×, 1.6× faster than LN at 64 / 256 / 1024",
        PAPER_TEXT_CLAIMS["mobilenet_fp16_bn_vs_ln"],
        paper_text,
        ours_text,
        tally_magnitude(rows["verdict"]),
        details,
    )


def claim_relu_faster_than_gelu(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    mine = pairs(ours, "act", "gelu", "relu")
    ref = pairs(paper, "act", "gelu", "relu")
    rows = sort_rows(with_paper(mine, ref, ["block", "norm", "resolution", "precision"]))
    rows["verdict"] = directions(rows)
    details = pretty(
        rows,
        {
            **{k: v for k, v in COLUMNS_PAIR.items() if k != "act"},
            "den_ms": "ReLU (ms)",
            "num_ms": "GELU (ms)",
            "ratio": "GELU/ReLU",
            "paper_ratio": "paper GELU/ReLU",
            "verdict": "verdict",
        },
    )
    paper_holds = directions(ref).count(HOLDS)
    return Finding(
        "relu_faster_than_gelu",
        "ReLU is faster than GELU",
        PAPER_TEXT_CLAIMS["relu_faster_than_gelu"],
        f"ReLU faster beyond {MARGIN:.0%} in only {paper_holds} of {len(ref)} cells of its own tables; "
        f"GELU/ReLU {spread(ref['ratio'])}",
        f"GELU/ReLU {spread(rows['ratio'])}",
        tally(rows["verdict"]),
        details,
    )


def _fp32_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (other keys): keep tf32 where it exists, else fp32, relabelled ``fp32`` (the paper's FP32 column)."""
    tf32 = frame[frame["precision"] == "tf32"]
    fp32 = frame[frame["precision"] == "fp32"]
    other = [k for k in KEYS if k != "precision"]
    covered = fp32.merge(tf32[other], on=other, how="left", indicator=True)
    fp32_only = covered[covered["_merge"] == "left_only"].drop(columns="_merge")
    rest = frame[~frame["precision"].isin(FP32_CLASS)]
    return pd.concat([tf32.assign(precision="fp32"), fp32_only, rest], ignore_index=True)


def claim_fp16_widens_gaps(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    """Per cell, the gap at FP16 over the gap at FP32: (LN/BN at FP16) / (LN/BN at FP32), likewise GELU/ReLU."""
    parts = []
    for name, axis, slow, fast in (("LN/BN", "norm", "ln", "bn"), ("GELU/ReLU", "act", "gelu", "relu")):
        for source, frame in (("ours", _fp32_class(ours)), ("paper", paper)):
            gaps = pairs(frame, axis, slow, fast).drop(columns=["num_ms", "den_ms", "low", "high"])
            gaps = gaps.rename(columns={"ratio": "value"}).assign(**{axis: ""})  # the axis the gap is across
            wider = pairs(gaps, "precision", "fp16", "fp32").rename(
                columns={"num_ms": "fp16_ratio", "den_ms": "fp32_ratio"}
            )
            parts.append(wider.assign(gap=name, source=source))
    columns = [
        "gap",
        "source",
        *[k for k in KEYS if k != "precision"],
        "fp32_ratio",
        "fp16_ratio",
        "ratio",
        "low",
        "high",
    ]
    table = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    table["verdict"] = directions(table)
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
            "fp32_ratio": "at FP32 (TF32 if run)",
            "fp16_ratio": "at FP16",
            "ratio": "FP16 gap / FP32 gap",
            "verdict": "wider at FP16?",
        },
    )
    return Finding(
        "fp16_widens_gaps",
        "The BN/LN and ReLU/GELU gaps are larger at FP16",
        PAPER_TEXT_CLAIMS["fp16_widens_gaps"],
        f"{tally(ref['verdict'])}; gap ratio {spread(ref['ratio'])}",
        f"gap ratio {spread(mine['ratio'])}",
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


def claim_extreme(ours: pd.DataFrame, paper: pd.DataFrame, block: str, fastest: bool) -> Finding:
    mine, ref = _extreme_block(ours, block, fastest), _extreme_block(paper, block, fastest)
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
    claim_id = "mobilenet_fastest" if fastest else "convnext_slowest"
    paper_hits = int((ref["winner"] == block).sum())
    ours_hits = int((mine["verdict"] == HOLDS).sum())
    tested = int((mine["verdict"] != NOT_TESTED).sum())
    return Finding(
        claim_id,
        f"{BLOCK_NAMES[block]} is the {word} block",
        PAPER_TEXT_CLAIMS[claim_id],
        f"{BLOCK_NAMES[block]} {word} in {paper_hits} of {len(ref)} configurations",
        f"{BLOCK_NAMES[block]} {word} beyond ±{MARGIN:.0%} in {ours_hits} of {tested} configurations with ≥ 2 blocks",
        tally(mine["verdict"], "configurations"),
        details,
    )


def _what_is_missing(
    ours: pd.DataFrame,
    slow_blocks: tuple[str, ...],
    fast_blocks: tuple[str, ...],
    scope: Callable[[pd.DataFrame], pd.Series],
    scope_text: str,
) -> str:
    """Why a block-ratio claim has no cell: no run in its scope at all, or which of its blocks never ran there."""
    here = ours[scope(ours)] if len(ours) else ours
    if here.empty:
        return f"no runs in scope: {scope_text}"
    ran = set(here["block"])
    missing = [BLOCK_NAMES[b] for b in (*slow_blocks, *fast_blocks) if b not in ran]
    if missing:
        return f"{scope_text} was run, but without {' or '.join(dict.fromkeys(missing))} to compare"
    slow = "/".join(BLOCK_NAMES[b] for b in slow_blocks)
    fast = "/".join(BLOCK_NAMES[b] for b in fast_blocks)
    return f"no {slow} run pairs with a {fast} run of the same norm, activation and precision in {scope_text}"


def block_ratio_claim(
    ours: pd.DataFrame,
    paper: pd.DataFrame,
    claim_id: str,
    title: str,
    slow_blocks: tuple[str, ...],
    fast_blocks: tuple[str, ...],
    scope: Callable[[pd.DataFrame], pd.Series],
    scope_text: str,
) -> Finding:
    """Ratios slow/fast block per cell, each against the paper's; the verdict only over the claim's scope."""
    parts = []
    for slow in slow_blocks:
        for fast in fast_blocks:
            mine = pairs(ours, "block", slow, fast).assign(pair=f"{BLOCK_NAMES[slow]}/{BLOCK_NAMES[fast]}")
            ref = pairs(paper, "block", slow, fast)
            parts.append(with_paper(mine, ref, ["norm", "act", "resolution", "precision"]))
    rows = sort_rows(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
    if rows.empty:
        rows = pd.DataFrame(columns=[*KEYS, "pair", "ratio", "low", "high", "paper_ratio", "num_ms", "den_ms"])
    rows["in_scope"] = scope(rows) if len(rows) else pd.Series(dtype=bool)
    rows["verdict"] = magnitudes(rows)
    in_scope = rows[rows["in_scope"]]
    stated = PAPER_STATED[claim_id]
    ref_all = pd.concat([pairs(paper, "block", s, f) for s in slow_blocks for f in fast_blocks], ignore_index=True)
    ref_scope = ref_all[scope(ref_all)] if len(ref_all) else ref_all
    outside = rows[~rows["in_scope"]]
    ours_text = f"{scope_text}: {spread(in_scope['ratio'])}; geometric mean {x(geomean(in_scope['ratio']))}"
    if len(outside):
        ours_text += f"; elsewhere {spread(outside['ratio'])}"
    details = pretty(
        rows.assign(in_scope=rows["in_scope"].map({True: "yes", False: ""})),
        {
            "pair": "ratio of",
            **{k: v for k, v in COLUMNS_PAIR.items() if k != "block"},
            "num_ms": "slower (ms)",
            "den_ms": "faster (ms)",
            "ratio": "ratio",
            "paper_ratio": "paper ratio",
            "in_scope": "claim's scope",
            "verdict": "verdict",
        },
    )
    verdict = tally_magnitude(in_scope["verdict"])
    if verdict == NOT_TESTED:
        verdict = f"{NOT_TESTED} ({_what_is_missing(ours, slow_blocks, fast_blocks, scope, scope_text)})"
    return Finding(
        claim_id,
        title,
        PAPER_TEXT_CLAIMS[claim_id],
        f"text ≈{stated:g}×; tables, {scope_text}: {spread(ref_scope['ratio'])}, geometric mean "
        f"{x(geomean(ref_scope['ratio']))}",
        ours_text,
        verdict,
        details,
    )


def claim_ln_fp16_slower_at_64(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    mine = _fp32_class(ours)
    mine = pairs(mine[(mine["norm"] == "ln") & (mine["resolution"] == 64)], "precision", "fp16", "fp32")
    ref = pairs(paper[(paper["norm"] == "ln") & (paper["resolution"] == 64)], "precision", "fp16", "fp32")
    rows = sort_rows(
        mine.merge(
            ref[["block", "act", "ratio"]].rename(columns={"ratio": "paper_ratio"}), on=["block", "act"], how="left"
        )
    )
    rows["in_scope"] = rows["block"] == "mobilenet"
    rows["verdict"] = directions(rows)
    ref_mn = ref[ref["block"] == "mobilenet"]
    details = pretty(
        rows.assign(in_scope=rows["in_scope"].map({True: "yes", False: ""})),
        {
            "block": "Architecture",
            "act": "Act",
            "label": "Engine",
            "den_ms": "FP32/TF32 (ms)",
            "num_ms": "FP16 (ms)",
            "ratio": "FP16/FP32",
            "paper_ratio": "paper FP16/FP32",
            "in_scope": "claim's scope",
            "verdict": "FP16 slower?",
        },
    )
    verdict = tally(rows[rows["in_scope"]]["verdict"])
    return Finding(
        "ln_fp16_slower_at_64",
        "LN at 64×64: FP16 slower than FP32 (MobileNet)",
        PAPER_TEXT_CLAIMS["ln_fp16_slower_at_64"],
        f"MobileNet FP16/FP32 {' / '.join(x(v) for v in ref_mn['ratio'])} (ReLU / GELU); other blocks "
        f"{spread(ref[ref['block'] != 'mobilenet']['ratio'])}",
        f"MobileNet {spread(rows[rows['in_scope']]['ratio'])}; other blocks {spread(rows[~rows['in_scope']]['ratio'])}",
        verdict if verdict != NOT_TESTED else f"{NOT_TESTED} (needs LN runs at 64×64 in FP16 and FP32/TF32)",
        details,
    )


# --- what the paper could not see -----------------------------------------------------------------------


def new_ln_vs_native(ours: pd.DataFrame) -> Finding:
    rows = sort_rows(pairs(ours, "norm", "ln", "ln_native"))
    rows["verdict"] = faster_words(rows, "ln_native", "ln")
    vs_bn = pairs(ours, "norm", "ln_native", "bn")
    details = pretty(
        rows,
        {
            **{k: v for k, v in COLUMNS_PAIR.items() if k != "norm"},
            "num_ms": "LN hand-written (ms)",
            "den_ms": "LN native (ms)",
            "ratio": "ln/ln_native",
            "verdict": "verdict",
        },
    )
    return Finding(
        "ln_vs_ln_native",
        "Hand-written LN vs one LayerNormalization op (`ln` vs `ln_native`)",
        "new: the paper only has the hand-written LN; does a fused LayerNormalization close the gap to BN?",
        "not measured in the paper",
        f"ln/ln_native {spread(rows['ratio'])}; ln_native/bn {spread(vs_bn['ratio'])}",
        count_faster(rows, "ln_native", "ln") if len(rows) else f"{NOT_TESTED} (needs ln and ln_native runs)",
        details,
        new=True,
    )


def new_eager_vs_compiled(runs: RunSet, metric: str, samples: dict[str, np.ndarray]) -> Finding:
    title = "PyTorch eager vs CUDA graph / torch.compile"
    claim = "new: how much of eager's latency is framework overhead that graph capture or compilation removes?"
    frame = runs.frame
    mode_key = "params.backend.mode"
    if mode_key not in frame or frame[mode_key].dropna().nunique() < 2 or "eager" not in set(frame[mode_key]):
        needs = "needs torch runs with backend.mode=eager and another mode"
        return Finding("eager_vs_compiled", title, claim, "not measured in the paper", needs, NOT_TESTED, new=True)
    torch_runs = frame[frame[mode_key].notna()].copy()
    keys = [k for k in runs.variant_keys if k != mode_key]
    # Label without the mode, so eager and compiled runs of one configuration meet in one pair.
    torch_runs["label"] = [make_label(row, keys) + "\x00" + row[mode_key] for _, row in torch_runs.iterrows()]
    grid = cells(torch_runs, metric)
    grid = with_bootstrap(grid[grid["state"] == OK].reset_index(drop=True), samples)
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
        "eager_vs_compiled",
        title,
        claim,
        "not measured in the paper",
        "; ".join(f"eager/{m}: {spread(rows[rows['mode'] == m]['ratio'])}" for m in modes) or "no pairs",
        "; ".join(f"{m}: {count_faster(rows[rows['mode'] == m], m, 'eager')}" for m in modes) or NOT_TESTED,
        details,
        new=True,
    )


def new_engines(ours: pd.DataFrame, labels: list[str]) -> Finding:
    records = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            merged = pairs(ours, "label", b, a)
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
        "engines",
        "Engines compared cell by cell",
        "new: the same configuration on every engine the sweep ran",
        "not measured in the paper (TensorRT only)",
        "; ".join(f"{r['pair']}: median {x(r['median_ratio'])} over {r['cells']} cells" for _, r in table.iterrows())
        or "only one engine in these runs",
        "measured" if len(table) else NOT_TESTED,
        details,
        new=True,
    )


# (slower, faster) pairs the precision finding compares, where both were run on the same engine and configuration.
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


def new_precisions(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    parts = []
    for slow, fast in PRECISION_PAIRS:
        mine = pairs(ours, "precision", slow, fast)
        if mine.empty:
            continue
        if (slow, fast) in (("fp32", "fp16"), ("tf32", "fp16")):
            ref = pairs(paper, "precision", "fp32", "fp16")[["block", "norm", "act", "resolution", "ratio"]]
            mine = mine.merge(
                ref.rename(columns={"ratio": "paper_ratio"}), on=["block", "norm", "act", "resolution"], how="left"
            )
        parts.append(mine.assign(pair=f"{PRECISION_NAMES[slow]}/{PRECISION_NAMES[fast]}"))
    empty = pd.DataFrame(columns=["pair", "ratio", "low", "high"])
    rows = sort_rows(pd.concat(parts, ignore_index=True)) if parts else empty
    rows["verdict"] = faster_words(rows, "lower precision", "higher precision")
    ref_all = pairs(paper, "precision", "fp32", "fp16")
    details = pretty(
        rows,
        {
            "pair": "ratio of",
            **{k: v for k, v in COLUMNS_PAIR.items() if k != "precision"},
            "num_ms": "higher precision (ms)",
            "den_ms": "lower precision (ms)",
            "ratio": "speed-up",
            "paper_ratio": "paper FP32/FP16",
            "verdict": "verdict",
        },
    )
    return Finding(
        "precisions",
        "What lower precision buys",
        "new: speed-up of TF32, FP16, BF16 and INT8 over strict FP32 (and of INT8 over FP16 and BF16), per "
        "configuration and engine, with intervals",
        f"paper FP32/FP16 {spread(ref_all['ratio'])}",
        "; ".join(f"{p}: {spread(rows[rows['pair'] == p]['ratio'])}" for p in rows["pair"].unique())
        or "only one precision in these runs",
        "measured" if len(rows) else NOT_TESTED,
        details,
        new=True,
    )


# --- all of them ----------------------------------------------------------------------------------------


def compute_findings(runs: RunSet, metric: str = "latency_ms_median") -> list[Finding]:
    """Every claim of the paper, then the new comparisons, on the runs' FINISHED cells (with intervals where the
    metric is the median and the runs kept their samples)."""
    from blockbench.report.breakdown import penalty_finding  # it builds on this module's Finding

    samples = load_samples(runs) if metric == BOOTSTRAPPED_METRIC else {}
    ours, paper = our_cells(runs, metric, samples), paper_cells()
    found = [
        claim_bn_faster_than_ln(ours, paper),
        claim_mobilenet_fp16_bn_vs_ln(ours, paper),
        claim_relu_faster_than_gelu(ours, paper),
        claim_fp16_widens_gaps(ours, paper),
        claim_extreme(ours, paper, "mobilenet", fastest=True),
        claim_extreme(ours, paper, "convnext", fastest=False),
        block_ratio_claim(
            ours,
            paper,
            "convnext_vs_vgg_resnet_256_fp16",
            "ConvNeXt ≈ 2.4× slower than VGG and ResNet at 256×256 FP16",
            ("convnext",),
            ("vgg", "resnet"),
            lambda f: (f["resolution"] == 256) & (f["precision"] == "fp16"),
            "256×256 FP16",
        ),
        block_ratio_claim(
            ours,
            paper,
            "mobilenet_vs_convnext_64",
            "MobileNet ≈ 3× faster than ConvNeXt at 64×64",
            ("convnext",),
            ("mobilenet",),
            lambda f: f["resolution"] == 64,
            "64×64",
        ),
        block_ratio_claim(
            ours,
            paper,
            "mobilenet_vs_vgg_resnet",
            "MobileNet 1.24× faster than VGG and ResNet",
            ("vgg", "resnet"),
            ("mobilenet",),
            lambda f: pd.Series(True, index=f.index),
            "all configurations",
        ),
        claim_ln_fp16_slower_at_64(ours, paper),
        new_ln_vs_native(ours),
        new_eager_vs_compiled(runs, metric, samples),
        new_engines(ours, runs.labels),
        new_precisions(ours, paper),
        penalty_finding(runs),
    ]
    return found


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
        "Tables 1–3 (reference data, TensorRT 8.5 on an RTX 3090 Ti) with the same arithmetic; its FP32 column is "
        "compared with our TF32 runs, or strict FP32 where no TF32 run exists.",
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
