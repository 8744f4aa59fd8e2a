"""The paper's claims recomputed from our runs, each beside the paper's own number and with a verdict, plus
the comparisons the paper could not make (``ln`` vs ``ln_native``, eager vs compiled, engines, precisions).

Every claim is evaluated by the same function on our cells and on the paper's tables, so "paper" and "ours" are
always the same arithmetic on different data. A ratio counts as a difference only beyond ``NOISE`` (5 %): CPU
and GPU latencies of one configuration move by a few percent from run to run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    make_label,
    ordered,
)
from blockbench.report.paper import PAPER_STATED, PAPER_TEXT_CLAIMS, paper_records
from blockbench.report.tables import to_markdown

NOISE = 0.05  # ratios within 1 ± 5 % are "no clear difference"
MAGNITUDE_TOLERANCE = 0.25  # a speed-up within ±25 % of the paper's counts as reproduced
KEYS = [*AXES, "label"]
# Our precision -> the paper's column it is compared with. The paper's "FP32" is TensorRT's default build,
# which allows TF32; our strict fp32 is compared with it too when no tf32 run exists (noted in the output).
PAPER_PRECISION = {"tf32": "fp32", "fp32": "fp32", "fp16": "fp16"}
FP32_CLASS = ("tf32", "fp32")  # preference order for "the FP32 column"
MAX_DETAIL_ROWS = 60

HOLDS, PARTLY, FAILS, NOT_TESTED = "holds", "partly holds", "does not hold", "not tested"
REPRODUCED, DIRECTION_ONLY, CONTRADICTED = "reproduced", "direction holds, magnitude differs", "contradicted"


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
    note: str = ""


def x(value: float) -> str:
    """A ratio as printed everywhere in the findings: ``2.41×``; missing -> ``—``."""
    return "—" if value is None or not math.isfinite(value) else f"{value:.2f}×"


def direction(ratio: float, noise: float = NOISE) -> str:
    """``holds`` when the ratio (slow/fast as the claim predicts) exceeds 1 beyond noise."""
    if not math.isfinite(ratio):
        return NOT_TESTED
    if ratio > 1 + noise:
        return HOLDS
    if ratio < 1 / (1 + noise):
        return "reversed"
    return "no clear difference"


def magnitude(ratio: float, paper: float) -> str:
    """Compare a speed-up with the paper's: within ±25 % reproduced; same side of 1 direction only."""
    if not (math.isfinite(ratio) and math.isfinite(paper)):
        return direction(ratio) if math.isfinite(ratio) else NOT_TESTED
    if direction(ratio) != HOLDS:
        return CONTRADICTED
    if abs(math.log(ratio / paper)) <= math.log(1 + MAGNITUDE_TOLERANCE):
        return REPRODUCED
    return DIRECTION_ONLY


def tally(verdicts: pd.Series, scope: str = "cells") -> str:
    """Overall verdict from per-row verdicts: holds / partly holds (k of n) / does not hold / not tested."""
    verdicts = verdicts[verdicts != NOT_TESTED]
    n = len(verdicts)
    if n == 0:
        return NOT_TESTED
    k = int(verdicts.isin([HOLDS, REPRODUCED, DIRECTION_ONLY]).sum())
    if k == n:
        return f"{HOLDS} ({k} of {n} {scope})"
    if k == 0:
        return f"{FAILS} (0 of {n} {scope})"
    return f"{PARTLY} ({k} of {n} {scope})"


def tally_magnitude(verdicts: pd.Series) -> str:
    """Overall verdict of a "≈ N× faster" claim: how many cells reproduce the number, keep only the direction,
    or contradict it (rows without a paper value count by direction alone)."""
    verdicts = verdicts[verdicts != NOT_TESTED]
    if verdicts.empty:
        return NOT_TESTED
    kind = verdicts.map(
        lambda v: REPRODUCED if v == REPRODUCED else DIRECTION_ONLY if v in (DIRECTION_ONLY, HOLDS) else CONTRADICTED
    )
    counts = kind.value_counts()
    parts = [f"{counts[v]} {v}" for v in (REPRODUCED, DIRECTION_ONLY, CONTRADICTED) if counts.get(v, 0)]
    if counts.get(REPRODUCED, 0) == len(kind):
        head = REPRODUCED
    elif counts.get(CONTRADICTED, 0) == len(kind):
        head = CONTRADICTED
    elif counts.get(CONTRADICTED, 0) == 0:
        head = DIRECTION_ONLY
    else:
        head = PARTLY
    return f"{head} ({'; '.join(parts)}; of {len(kind)} cells)"


def which_faster(ratio: float, den_name: str, num_name: str) -> str:
    """For ``ratio = num/den``: which side is faster beyond noise, in words."""
    d = direction(ratio)
    return {HOLDS: f"{den_name} faster", "reversed": f"{num_name} faster"}.get(d, d)


def count_faster(ratios: pd.Series, den_name: str, num_name: str) -> str:
    """``ln_native faster in 10 of 12 cells, ln faster in 1, no clear difference in 1``."""
    d = ratios.dropna().map(direction)
    if d.empty:
        return NOT_TESTED
    text = f"{den_name} faster in {int((d == HOLDS).sum())} of {len(d)} cells"
    if (d == "reversed").any():
        text += f", {num_name} faster in {int((d == 'reversed').sum())}"
    if (d == "no clear difference").any():
        text += f", no clear difference in {int((d == 'no clear difference').sum())}"
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


def our_cells(runs: RunSet, metric: str) -> pd.DataFrame:
    """FINISHED cells only: (axes, label) -> value. Failed and missing cells simply do not pair up."""
    grid = cells(runs.frame, metric)
    return grid[grid["state"] == OK][[*KEYS, "value"]].reset_index(drop=True)


def paper_cells() -> pd.DataFrame:
    frame = pd.DataFrame(paper_records()).rename(columns={"latency_ms": "value"})
    return frame.assign(label="paper")[[*KEYS, "value"]]


def pairs(frame: pd.DataFrame, axis: str, num: str, den: str, keys: list[str] = KEYS) -> pd.DataFrame:
    """Cells equal in every key but ``axis``: ``ratio = value[axis=num] / value[axis=den]``."""
    other = [k for k in keys if k != axis]
    a = frame[frame[axis] == num][[*other, "value"]].rename(columns={"value": "num_ms"})
    b = frame[frame[axis] == den][[*other, "value"]].rename(columns={"value": "den_ms"})
    merged = a.merge(b, on=other)
    merged["ratio"] = merged["num_ms"] / merged["den_ms"]
    return merged


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
    return out


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
    rows["verdict"] = rows["ratio"].map(direction)
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
        f"BN faster in {int((ref['ratio'] > 1 + NOISE).sum())} of {len(ref)} cells; LN/BN {spread(ref['ratio'])}",
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
    rows["verdict"] = [magnitude(r, p) for r, p in zip(rows["ratio"], rows["paper_ratio"], strict=True)]
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
    rows["verdict"] = rows["ratio"].map(direction)
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
    paper_holds = int((ref["ratio"] > 1 + NOISE).sum())
    return Finding(
        "relu_faster_than_gelu",
        "ReLU is faster than GELU",
        PAPER_TEXT_CLAIMS["relu_faster_than_gelu"],
        f"ReLU faster beyond {NOISE:.0%} in only {paper_holds} of {len(ref)} cells of its own tables; "
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
    records = []
    for name, axis, slow, fast in (("LN/BN", "norm", "ln", "bn"), ("GELU/ReLU", "act", "gelu", "relu")):
        for source, frame in (("ours", _fp32_class(ours)), ("paper", paper)):
            ratios = pairs(frame, axis, slow, fast)
            for (resolution, label), group in ratios.groupby(["resolution", "label"]):
                f32 = group[group["precision"] == "fp32"]["ratio"].median()
                f16 = group[group["precision"] == "fp16"]["ratio"].median()
                records.append(
                    {"gap": name, "source": source, "resolution": resolution, "label": label, "fp32": f32, "fp16": f16}
                )
    table = pd.DataFrame(records, columns=["gap", "source", "resolution", "label", "fp32", "fp16"])
    table["verdict"] = [
        direction(b / a) if math.isfinite(a) and math.isfinite(b) else NOT_TESTED
        for a, b in zip(table["fp32"], table["fp16"], strict=True)
    ]
    mine, ref = table[table["source"] == "ours"], table[table["source"] == "paper"]
    details = pretty(
        table.sort_values(["gap", "source", "resolution"]).rename(columns={"fp32": "fp32_ratio", "fp16": "fp16_ratio"}),
        {
            "gap": "gap",
            "source": "source",
            "resolution": "Resolution",
            "label": "Engine",
            "fp32_ratio": "median at FP32 (TF32 if run)",
            "fp16_ratio": "median at FP16",
            "verdict": "wider at FP16?",
        },
    )
    return Finding(
        "fp16_widens_gaps",
        "The BN/LN and ReLU/GELU gaps are larger at FP16",
        PAPER_TEXT_CLAIMS["fp16_widens_gaps"],
        f"{tally(ref['verdict'], 'gap × resolution')}",
        f"{tally(mine['verdict'], 'gap × resolution × engine')}",
        tally(mine["verdict"], "gap × resolution × engine"),
        details,
    )


def _extreme_block(frame: pd.DataFrame, pick: Callable[[pd.Series], object]) -> pd.DataFrame:
    records = []
    for key, group in frame.groupby(["norm", "act", "resolution", "precision", "label"]):
        if group["block"].nunique() < 2:
            continue
        row = group.loc[pick(group["value"])]
        rest = group[group.index != row.name]["value"]
        gap = (rest.min() / row["value"]) if pick is pd.Series.idxmin else (row["value"] / rest.max())
        records.append(
            {
                **dict(zip(["norm", "act", "resolution", "precision", "label"], key, strict=True)),
                "winner": row["block"],
                "value": row["value"],
                "n_blocks": group["block"].nunique(),
                "blocks": set(group["block"]),
                "gap_ratio": gap,
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "norm",
            "act",
            "resolution",
            "precision",
            "label",
            "winner",
            "value",
            "n_blocks",
            "blocks",
            "gap_ratio",
        ],
    )


def claim_extreme(ours: pd.DataFrame, paper: pd.DataFrame, block: str, fastest: bool) -> Finding:
    pick = pd.Series.idxmin if fastest else pd.Series.idxmax
    mine, ref = _extreme_block(ours, pick), _extreme_block(paper, pick)
    # A configuration where the claimed block was not run (or failed) cannot test the claim.
    mine["verdict"] = [
        NOT_TESTED if block not in blocks else (HOLDS if w == block else FAILS)
        for w, blocks in zip(mine["winner"], mine["blocks"], strict=True)
    ]
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
            "gap_ratio": "margin to next",
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
        f"{BLOCK_NAMES[block]} {word} in {ours_hits} of {tested} configurations with ≥ 2 blocks",
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
        rows = pd.DataFrame(columns=[*KEYS, "pair", "ratio", "paper_ratio", "num_ms", "den_ms"])
    rows["in_scope"] = scope(rows) if len(rows) else pd.Series(dtype=bool)
    rows["verdict"] = [magnitude(r, p) for r, p in zip(rows["ratio"], rows["paper_ratio"], strict=True)]
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
    rows["verdict"] = rows["ratio"].map(direction)
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
    rows["verdict"] = rows["ratio"].map(lambda r: which_faster(r, "ln_native", "ln"))
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
        count_faster(rows["ratio"], "ln_native", "ln") if len(rows) else f"{NOT_TESTED} (needs ln and ln_native runs)",
        details,
        new=True,
    )


def new_eager_vs_compiled(runs: RunSet, metric: str) -> Finding:
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
    grid = grid[grid["state"] == OK].copy()
    grid[["label", "mode"]] = grid["label"].str.split("\x00", expand=True)
    grid = grid[[*KEYS, "mode", "value"]]
    others = sorted(m for m in grid["mode"].unique() if m != "eager")
    parts = [pairs(grid, "mode", "eager", m, [*KEYS, "mode"]).assign(mode=m) for m in others]
    rows = sort_rows(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame(columns=["mode", "ratio"])
    rows["verdict"] = rows["ratio"].map(lambda r: which_faster(r, "compiled", "eager"))
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
        "; ".join(f"{m}: {count_faster(rows[rows['mode'] == m]['ratio'], m, 'eager')}" for m in modes) or NOT_TESTED,
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
            d = merged["ratio"].map(direction)
            records.append(
                {
                    "pair": f"{b} / {a}",
                    "cells": len(merged),
                    "median_ratio": merged["ratio"].median(),
                    "min_ratio": merged["ratio"].min(),
                    "max_ratio": merged["ratio"].max(),
                    "a_faster": int((d == HOLDS).sum()),
                    "b_faster": int((d == "reversed").sum()),
                }
            )
    table = pd.DataFrame(
        records, columns=["pair", "cells", "median_ratio", "min_ratio", "max_ratio", "a_faster", "b_faster"]
    )
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
        },
    )
    for title, key in (("cells", "cells"), ("A faster", "a_faster"), ("B faster", "b_faster")):
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


def new_precisions(ours: pd.DataFrame, paper: pd.DataFrame) -> Finding:
    parts = []
    for slow, fast in (("fp32", "tf32"), ("fp32", "fp16"), ("tf32", "fp16"), ("fp32", "bf16"), ("tf32", "bf16")):
        mine = pairs(ours, "precision", slow, fast)
        if mine.empty:
            continue
        if (slow, fast) in (("fp32", "fp16"), ("tf32", "fp16")):
            ref = pairs(paper, "precision", "fp32", "fp16")[["block", "norm", "act", "resolution", "ratio"]]
            mine = mine.merge(
                ref.rename(columns={"ratio": "paper_ratio"}), on=["block", "norm", "act", "resolution"], how="left"
            )
        parts.append(mine.assign(pair=f"{PRECISION_NAMES[slow]}/{PRECISION_NAMES[fast]}"))
    rows = sort_rows(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame(columns=["pair", "ratio"])
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
        },
    )
    return Finding(
        "precisions",
        "What lower precision buys",
        "new: speed-up of TF32, FP16 and BF16 over strict FP32, per configuration",
        f"paper FP32/FP16 {spread(ref_all['ratio'])}",
        "; ".join(f"{p}: {spread(rows[rows['pair'] == p]['ratio'])}" for p in rows["pair"].unique())
        or "only one precision in these runs",
        "measured" if len(rows) else NOT_TESTED,
        details,
        new=True,
    )


# --- all of them ----------------------------------------------------------------------------------------


def compute_findings(runs: RunSet, metric: str = "latency_ms_median") -> list[Finding]:
    """Every claim of the paper, then the new comparisons, on the runs' FINISHED cells."""
    ours, paper = our_cells(runs, metric), paper_cells()
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
        new_eager_vs_compiled(runs, metric),
        new_engines(ours, runs.labels),
        new_precisions(ours, paper),
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
        f"Latency metric: `{metric}`. A ratio counts as a difference beyond ±{NOISE:.0%}; a speed-up is "
        f"*reproduced* within ±{MAGNITUDE_TOLERANCE:.0%} of the paper's. The paper's values are computed from its "
        "Tables 1–3 (reference data, TensorRT 8.5 on an RTX 3090 Ti) with the same arithmetic; its FP32 column is "
        "compared with our TF32 runs, or strict FP32 where no TF32 run exists.",
        "",
        to_markdown(summary),
        "",
    ]
    for i, f in enumerate(found, 1):
        lines += [f"## {i}. {f.title}" + (" (new)" if f.new else ""), "", f"> {f.claim}", ""]
        lines += [f"- paper: {f.paper}", f"- ours: {f.ours}", f"- verdict: **{f.verdict}**", ""]
        if f.note:
            lines += [f.note, ""]
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
