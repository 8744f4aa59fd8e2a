"""The claims the report re-tests, as a table of specifications (:data:`CLAIMS`), and the texts their evidence
is written in. A claim of the usual shape is data (:class:`~blockbench.report.claim_spec.ClaimSpec`, evaluated by
:func:`~blockbench.report.claim_spec.evaluate`); one of another shape names its function in
:mod:`blockbench.report.claim_shapes`. How precisions meet the paper's columns: :mod:`blockbench.report.verdict`.
"""

from __future__ import annotations

from functools import partial
from itertools import product

import pandas as pd

from blockbench.report.claim_shapes import eager_vs_compiled, engines, extreme_block, fp16_widens_gaps
from blockbench.report.claim_spec import (
    COLUMNS_PAIR,
    NO_TF32,
    ClaimInputs,
    ClaimSpec,
    Evidence,
    Scope,
    evaluate,
)
from blockbench.report.data import (
    BLOCK_NAMES,
    PRECISION_SHOWN,
    ordered,
)
from blockbench.report.findings import (
    geomean,
    pairs,
    spread,
    spread_by_precision,
    x,
)
from blockbench.report.paper import PAPER_STATED
from blockbench.report.verdict import (
    HOLDS,
    MARGIN,
    NOT_COMPARABLE,
    directions,
)

__all__ = ["CLAIMS", "PRECISION_PAIRS", "ClaimInputs", "ClaimSpec", "Evidence", "evaluate"]


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
