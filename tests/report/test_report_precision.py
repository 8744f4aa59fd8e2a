"""Which of our precisions a claim compares with the paper's columns (blockbench.report.verdict.PRECISION_RULE).

The paper's FP32 is TensorRT's default build, which allows TF32: our ``tf32`` stands for it, our strict ``fp32``
for nothing in the paper. Cells are synthetic (no store, no benchmark), so each verdict is checked by hand.
"""

from __future__ import annotations

import pandas as pd

from blockbench.report.claims import CLAIMS, ClaimInputs, ClaimSpec, evaluate
from blockbench.report.data import PRECISION_NAMES, PRECISION_SHOWN, RunSet
from blockbench.report.findings import KEYS, paper_cells
from blockbench.report.verdict import NOT_COMPARABLE, PRECISION_RULE, tally, tally_by_precision

STRICT = "not comparable in {n} cells: strict FP32, the paper's FP32 allows TF32"


def cell(block: str, norm: str, precision: str, ms: float, resolution: int = 64, act: str = "relu") -> dict:
    return {
        "block": block,
        "norm": norm,
        "act": act,
        "resolution": resolution,
        "precision": precision,
        "label": "torch",
        "value": ms,
        "boot": None,
    }


def inputs(*cells: dict) -> ClaimInputs:
    runs = RunSet(pd.DataFrame(columns=["label", "status"]), "sqlite:///synthetic.db", "blockbench", "0")
    frame = pd.DataFrame(list(cells), columns=[*KEYS, "value", "boot"])
    return ClaimInputs(runs, "latency_ms_median", {}, frame, paper_cells())


def spec(claim_id: str) -> ClaimSpec:
    return next(s for s in CLAIMS if s.id == claim_id)


LN_MOBILENET_64 = (cell("mobilenet", "ln", "fp16", 3.0),)


def test_fp16_vs_fp32_with_only_strict_fp32_is_not_comparable() -> None:
    found = evaluate(spec("ln_fp16_slower_at_64"), inputs(*LN_MOBILENET_64, cell("mobilenet", "ln", "fp32", 2.4)))
    assert found.verdict == STRICT.format(n=1)
    assert found.details["FP16 slower?"].tolist() == [f"{NOT_COMPARABLE} (strict FP32, the paper's FP32 allows TF32)"]
    assert found.details["ratio of"].tolist() == ["FP16/strict FP32"]
    assert found.details["paper FP16/FP32"].tolist() == ["—"]  # the paper's FP32 is not beside strict FP32
    assert "holds" not in found.verdict and "reversed" not in found.verdict


def test_fp16_vs_fp32_with_tf32_is_judged_on_tf32_and_strict_fp32_stays_apart() -> None:
    tf32_only = evaluate(spec("ln_fp16_slower_at_64"), inputs(*LN_MOBILENET_64, cell("mobilenet", "ln", "tf32", 2.4)))
    assert tf32_only.verdict == "holds (1 of 1 cells)"  # FP16/TF32 = 3.0 / 2.4 = 1.25
    assert tf32_only.details["paper FP16/FP32"].tolist() == ["1.05×"]  # 2.290 / 2.178

    both = evaluate(
        spec("ln_fp16_slower_at_64"),
        inputs(*LN_MOBILENET_64, cell("mobilenet", "ln", "tf32", 2.4), cell("mobilenet", "ln", "fp32", 6.0)),
    )
    rows = both.details.set_index("ratio of")
    assert rows.loc["FP16/TF32", "FP16/FP32"] == "1.25×" and rows.loc["FP16/TF32", "FP16 slower?"] == "holds"
    assert rows.loc["FP16/strict FP32", "FP16/FP32"] == "0.50×"  # shown, never counted
    assert rows.loc["FP16/strict FP32", "FP16 slower?"].startswith(NOT_COMPARABLE)
    assert both.verdict == "holds (1 of 1 cells); " + STRICT.format(n=1)
    assert both.ours.startswith("FP16/TF32: MobileNet 1.25× (n=1)")
    assert "not comparable (strict FP32): 0.50× (n=1)" in both.ours


def _gap_cells(fp32: str) -> list[dict]:
    # LN/BN: 2.0 at FP16, 1.5 at the FP32 side -> FP16 gap / FP32 gap = 1.33 (wider at FP16)
    return [
        cell("vgg", "bn", "fp16", 1.0),
        cell("vgg", "ln", "fp16", 2.0),
        cell("vgg", "bn", fp32, 2.0),
        cell("vgg", "ln", fp32, 3.0),
    ]


def test_the_fp16_gap_claim_uses_tf32_and_calls_strict_fp32_not_comparable() -> None:
    strict = evaluate(spec("fp16_widens_gaps"), inputs(*_gap_cells("fp32")))
    assert strict.verdict == STRICT.format(n=1)
    tf32 = evaluate(spec("fp16_widens_gaps"), inputs(*_gap_cells("tf32")))
    assert tf32.verdict == "holds (1 of 1 cells)"
    ours = tf32.details[tf32.details["source"] == "ours"]
    assert ours["FP32 side"].tolist() == ["TF32"] and ours["FP16 gap / FP32 gap"].tolist() == ["1.33×"]


def test_a_claim_within_our_data_counts_strict_fp32_as_its_own_scope() -> None:
    # LN/BN at FP16: 2.0 (holds); at strict FP32: 1.0 (equivalent). Never one "mixed" count over both.
    found = evaluate(
        spec("bn_faster_than_ln"),
        inputs(
            cell("vgg", "bn", "fp16", 1.0),
            cell("vgg", "ln", "fp16", 2.0),
            cell("vgg", "bn", "fp32", 2.0),
            cell("vgg", "ln", "fp32", 2.0),
        ),
    )
    assert found.verdict == (
        "holds (1 of 1 cells at FP16); strict FP32, its own scope (the paper's FP32 allows TF32): "
        "equivalent (1 of 1 cells) within ±5%"
    )
    rows = found.details.set_index("Precision")
    assert rows.loc["strict FP32", "paper LN/BN"] == "—" and rows.loc["FP16", "paper LN/BN"] != "—"
    assert "strict FP32, its own scope" in found.ours


def test_a_speed_up_against_the_papers_tables_is_not_comparable_at_strict_fp32() -> None:
    found = evaluate(
        spec("mobilenet_vs_convnext_64"),
        inputs(
            cell("convnext", "bn", "fp16", 3.0),
            cell("mobilenet", "bn", "fp16", 1.0),
            cell("convnext", "bn", "fp32", 1.0),
            cell("mobilenet", "bn", "fp32", 1.0),
        ),
    )
    assert found.verdict == "reproduced (1 reproduced; of 1 cells); " + STRICT.format(n=1)
    assert found.ours.startswith("64×64 at FP16: 3.00× (n=1); geometric mean 3.00×; not comparable (strict FP32)")


def test_the_slowest_block_is_ranked_at_the_papers_precisions_apart_from_strict_fp32() -> None:
    # FP16: ConvNeXt slowest (2.0 vs 1.0); strict FP32: VGG slowest (4.0 vs 2.0).
    found = evaluate(
        spec("convnext_slowest"),
        inputs(
            cell("convnext", "bn", "fp16", 2.0),
            cell("vgg", "bn", "fp16", 1.0),
            cell("convnext", "bn", "fp32", 2.0),
            cell("vgg", "bn", "fp32", 4.0),
        ),
    )
    assert found.verdict == (
        "holds (1 of 1 configurations at FP16); strict FP32, its own scope (the paper's FP32 allows TF32): "
        "reversed (1 of 1 configurations)"
    )


def test_tally_counts_not_comparable_cells_apart() -> None:
    why = f"{NOT_COMPARABLE} (strict FP32, the paper's FP32 allows TF32)"
    assert tally(pd.Series(["holds", why, why])) == "holds (1 of 1 cells); " + STRICT.format(n=2)
    assert tally_by_precision(pd.Series(["holds", "holds"]), pd.Series(["fp16", "tf32"])) == "holds (2 of 2 cells)"


def test_strict_fp32_is_labelled_as_such_and_the_rule_is_written_down() -> None:
    assert PRECISION_SHOWN["fp32"] == "strict FP32" and PRECISION_SHOWN["tf32"] == PRECISION_NAMES["tf32"] == "TF32"
    assert "allows TF32" in PRECISION_RULE and NOT_COMPARABLE in PRECISION_RULE
