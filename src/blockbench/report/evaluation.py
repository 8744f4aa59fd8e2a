"""The findings of a run set: every claim of the paper, the new comparisons and the penalty breakdown, evaluated
by the one verdict rule (:mod:`blockbench.report.verdict`, a leaf that the claims, their arithmetic in
:mod:`blockbench.report.findings` and the breakdown import)."""

from __future__ import annotations

from blockbench.report.breakdown import penalty_finding
from blockbench.report.claims import CLAIMS, ClaimInputs, evaluate
from blockbench.report.data import RunSet
from blockbench.report.findings import BOOTSTRAPPED_METRIC, Finding, our_cells, paper_cells
from blockbench.report.store import load_trials


def compute_findings(runs: RunSet, metric: str = BOOTSTRAPPED_METRIC) -> list[Finding]:
    """Every claim of the paper, then the new comparisons (:data:`blockbench.report.claims.CLAIMS`, in order), then
    the penalty breakdown, on the runs' FINISHED cells (with intervals where the metric is the median and the runs
    kept their samples: covering a cell's trials where its runs measured several)."""
    samples = load_trials(runs) if metric == BOOTSTRAPPED_METRIC else {}
    inputs = ClaimInputs(runs, metric, samples, our_cells(runs, metric, samples), paper_cells())
    return [*(evaluate(spec, inputs) for spec in CLAIMS), penalty_finding(runs)]
