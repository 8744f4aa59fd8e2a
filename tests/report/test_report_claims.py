"""The claim table (blockbench.report.claims) and the verdict words, on SYNTHETIC cells (no store, no benchmark).

Cells are rows shaped like the report's own (the paper's axes, an engine label, a latency and no bootstrap), so
each ratio and verdict below can be checked against arithmetic done by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest

from blockbench.report.claims import CLAIMS, ClaimInputs, ClaimSpec, evaluate
from blockbench.report.data import RunSet
from blockbench.report.findings import KEYS, Finding, paper_cells
from blockbench.report.paper import PAPER_TEXT_CLAIMS
from blockbench.report.verdict import (
    DIRECTION_ONLY,
    HOLDS,
    NOT_TESTED,
    REPRODUCED,
    REVERSED,
    SAME,
    UNCLEAR,
    tally,
    tally_magnitude,
)

ENGINE = "torch eager"


def cell(block: str, norm: str, latency_ms: float, act: str = "relu", resolution: int = 64) -> dict[str, object]:
    return {
        "block": block,
        "norm": norm,
        "act": act,
        "resolution": resolution,
        "precision": "fp16",
        "label": ENGINE,
        "value": latency_ms,
        "boot": None,
    }


def inputs(*cells: dict[str, object]) -> ClaimInputs:
    """Claim inputs with the given cells as ours; runs without rows (only the custom claims read them)."""
    runs = RunSet(pd.DataFrame(columns=["label", "status"]), "sqlite:///synthetic.db", "blockbench", "0")
    return ClaimInputs(
        runs, "latency_ms_median", {}, pd.DataFrame(list(cells), columns=[*KEYS, "value", "boot"]), paper_cells()
    )


def spec(claim_id: str) -> ClaimSpec:
    return next(s for s in CLAIMS if s.id == claim_id)


# --- the verdict words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "verdict"),
    [
        ([HOLDS] * 3, "holds (3 of 3 cells)"),
        ([REVERSED] * 2, "reversed (2 of 2 cells)"),
        ([SAME] * 2, "equivalent (2 of 2 cells) within ±5%"),
        ([HOLDS, REVERSED, NOT_TESTED], "mixed: holds in 1, reversed in 1 (of 2 cells)"),
        ([REVERSED, SAME], "mixed: reversed in 1, equivalent in 1 (of 2 cells)"),
        ([UNCLEAR, SAME], "mixed: equivalent in 1, cannot tell in 1 (of 2 cells)"),
        ([NOT_TESTED], NOT_TESTED),
        ([], NOT_TESTED),
    ],
)
def test_tally_says_holds_only_when_every_cell_holds(cells: list[str], verdict: str) -> None:
    assert tally(pd.Series(cells, dtype=object)) == verdict


@pytest.mark.parametrize(
    ("cells", "verdict"),
    [
        ([REPRODUCED] * 2, "reproduced (2 reproduced; of 2 cells)"),
        ([REPRODUCED, DIRECTION_ONLY], f"{DIRECTION_ONLY} (1 reproduced; 1 {DIRECTION_ONLY}; of 2 cells)"),
        ([SAME] * 3, "equivalent (3 equivalent; of 3 cells)"),  # uniform: not "mixed"
        ([REPRODUCED, SAME], "mixed (1 reproduced; 1 equivalent; of 2 cells)"),
        ([NOT_TESTED], NOT_TESTED),
    ],
)
def test_tally_magnitude_says_mixed_only_when_the_cells_disagree(cells: list[str], verdict: str) -> None:
    assert tally_magnitude(pd.Series(cells, dtype=object)) == verdict


def test_a_claim_with_no_holding_cell_is_never_reported_as_partly_holding() -> None:
    # LN/BN: VGG 0.50 (reversed), MobileNet 1.01 (equivalent within ±5 %): 0 of 2 cells hold.
    found = evaluate(
        spec("bn_faster_than_ln"),
        inputs(
            cell("vgg", "bn", 2.0), cell("vgg", "ln", 1.0), cell("mobilenet", "bn", 1.0), cell("mobilenet", "ln", 1.01)
        ),
    )
    assert found.verdict == "mixed: reversed in 1, equivalent in 1 (of 2 cells)"
    assert "holds" not in found.verdict and "partly" not in found.verdict
    assert found.details["verdict"].tolist() == [REVERSED, SAME]


# --- the table -------------------------------------------------------------------------------------------------


def test_every_claim_is_specified_once_and_the_paper_claims_keep_the_papers_words() -> None:
    ids = [s.id for s in CLAIMS]
    assert len(ids) == len(set(ids))
    assert {s.id for s in CLAIMS if not s.new} == set(PAPER_TEXT_CLAIMS)
    for s in CLAIMS:
        if s.custom is None:  # a claim that is data says what it compares and how its details read
            assert s.axis and s.pairs and s.columns, s.id
        if not s.new:
            assert s.words == PAPER_TEXT_CLAIMS[s.id]
    data = [s.id for s in CLAIMS if s.custom is None]
    assert len(data) > len(CLAIMS) / 2, data  # most claims are data, not code


def test_every_claim_evaluates_without_runs_to_not_tested() -> None:
    empty = inputs()
    for s in CLAIMS:
        found = evaluate(s, empty)
        assert isinstance(found, Finding) and found.id == s.id and found.title == s.title
        assert found.verdict.startswith(NOT_TESTED), (s.id, found.verdict)
        assert found.details.empty or set(found.details["source"]) == {"paper"}, s.id  # the paper's own rows only


def test_a_scoped_claim_counts_only_its_scope_and_shows_the_rest() -> None:
    # ConvNeXt/MobileNet: 3.00 at 64x64 (the claim's scope; paper tables ~2.9: reproduced), 0.50 at 256x256.
    found = evaluate(
        spec("mobilenet_vs_convnext_64"),
        inputs(
            cell("convnext", "bn", 3.0),
            cell("mobilenet", "bn", 1.0),
            cell("convnext", "bn", 1.0, resolution=256),
            cell("mobilenet", "bn", 2.0, resolution=256),
        ),
    )
    rows = found.details.set_index("Resolution")
    assert rows.loc["64×64", "ratio"] == "3.00×" and rows.loc["64×64", "claim's scope"] == "yes"
    assert rows.loc["256×256", "ratio"] == "0.50×" and rows.loc["256×256", "claim's scope"] == ""
    assert rows.loc["256×256", "verdict"] == "contradicted"  # shown, but not counted
    assert found.verdict == "reproduced (1 reproduced; of 1 cells)"
    assert found.ours == "64×64: 3.00× (n=1); geometric mean 3.00×; elsewhere 0.50× (n=1)"


def test_a_new_claim_is_one_more_spec() -> None:
    """A comparison the table does not have, written as data only: GELU against ReLU with ratios counted."""
    gelu_vs_relu = ClaimSpec(
        "gelu_vs_relu",
        "GELU vs ReLU",
        claim="new: which activation is faster?",
        axis="act",
        pairs=(("gelu", "relu"),),
        rule="faster",
        sides=("relu", "gelu"),
        columns={"block": "Architecture", "ratio": "GELU/ReLU", "verdict": "verdict"},
        ours=lambda e: f"{len(e.rows)} pairs",
        new=True,
    )
    found = evaluate(
        gelu_vs_relu,
        inputs(cell("vgg", "bn", 1.0), cell("vgg", "bn", 1.5, act="gelu"), cell("resnet", "bn", 1.0, act="gelu")),
    )
    assert found.details.to_dict("records") == [
        {"Architecture": "VGG", "GELU/ReLU": "1.50×", "GELU/ReLU: 95 % interval": "—", "verdict": "relu faster"}
    ]
    assert found.verdict == "relu faster in 1 of 1 cells" and found.ours == "1 pairs" and found.new
