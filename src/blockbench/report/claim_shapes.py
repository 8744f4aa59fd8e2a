"""The claims of another shape than a :class:`~blockbench.report.claim_spec.ClaimSpec` of pairs: the gap between
two gaps (FP16 widens the BN/LN and ReLU/GELU gaps), the fastest / slowest block of a configuration, eager against
compiled torch modes, engines compared. Each is a function a spec names in its ``custom``.
"""

from __future__ import annotations

import math

import pandas as pd

from blockbench.report.claim_spec import (
    COLUMNS_PAIR,
    NO_TF32,
    NOT_IN_PAPER,
    ClaimInputs,
    ClaimSpec,
)
from blockbench.report.data import (
    BLOCK_NAMES,
    OK,
    PRECISION_SHOWN,
    cells,
    make_label,
    ordered,
)
from blockbench.report.findings import (
    KEYS,
    TRIALS_COLUMN,
    Finding,
    interval_counts,
    interval_used,
    joined_trials,
    pairs,
    pretty,
    ratio_bootstrap,
    sort_rows,
    spread,
    with_bootstrap,
    with_interval,
    x,
)
from blockbench.report.verdict import (
    HOLDS,
    MARGIN,
    NOT_COMPARABLE,
    NOT_TESTED,
    REVERSED,
    SAME,
    UNCLEAR,
    comparable,
    count_faster,
    directions,
    not_comparable,
    tally,
    tally_by_precision,
    which_faster,
)

# --- claims of another shape --------------------------------------------------------------------------------


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
    columns += ["ratio", "low", "high", *([TRIALS_COLUMN] if TRIALS_COLUMN in inputs.ours else [])]
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
            TRIALS_COLUMN: None,
        }
        mine = group[group["block"] == block]
        if len(mine):
            claimed = mine.iloc[0]
            rival = ranked[ranked["block"] != block].iloc[0]
            num, den = (rival, claimed) if fastest else (claimed, rival)
            record["ratio"] = num["value"] / den["value"]
            record["boot"] = ratio_bootstrap(num["boot"], den["boot"])
            record[TRIALS_COLUMN] = joined_trials(num.get(TRIALS_COLUMN), den.get(TRIALS_COLUMN))
        records.append(record)
    columns = [*EXTREME_KEYS, "winner", "value", "n_blocks", "ratio", "boot"]
    columns += [TRIALS_COLUMN] if TRIALS_COLUMN in frame else []
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
    grid = grid[[*KEYS, "mode", "value", "boot", TRIALS_COLUMN]]
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
            used = merged[TRIALS_COLUMN] if TRIALS_COLUMN in merged else pd.Series(dtype=object)
            records.append(
                {
                    "intervals": interval_counts(used.map(interval_used), "cells") or "—",
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
    table = pd.DataFrame(records, columns=[*columns, "intervals"])
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
            "intervals": "intervals",
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
