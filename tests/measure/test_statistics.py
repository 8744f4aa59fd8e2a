"""The median's confidence interval: known ranks in, known bounds out; coverage on known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blockbench.measure.harness import LatencyResult
from blockbench.measure.statistics import (
    EQUIVALENT,
    HIGHER,
    LOWER,
    UNCLEAR,
    bootstrap_medians,
    classify,
    interval,
    median_ci,
    median_ci_ranks,
)


@pytest.mark.parametrize(
    ("n", "ranks"),
    # 1-based order statistics from the binomial table of the median's 95 % interval: n=10 -> (2, 9),
    # n=20 -> (6, 15), n=100 -> (40, 61)
    [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (50, (18, 33)), (100, (40, 61)), (1000, (469, 532))],
)
def test_ranks_match_the_binomial_table(n: int, ranks: tuple[int, int]) -> None:
    assert median_ci_ranks(n) == (ranks[0] - 1, ranks[1] - 1)


def test_too_few_samples_give_no_interval_never_a_false_one() -> None:
    assert median_ci_ranks(5) is None
    low, high = median_ci([1.0, 2.0, 3.0])
    assert math.isnan(low) and math.isnan(high)


def test_the_interval_is_read_from_the_sorted_samples() -> None:
    samples = np.arange(100, 0, -1, dtype=float)  # 100 .. 1, unsorted order on purpose
    assert median_ci(samples) == (40.0, 61.0)


def test_large_runs_are_fast_and_shrink_like_one_over_root_n() -> None:
    lo, hi = median_ci_ranks(1_000_000)
    assert 1_900 < hi - lo < 2_000  # 2 * 1.96 * sqrt(n) / 2 = 1960


@pytest.mark.parametrize("draw", ["lognormal", "exponential"])
def test_coverage_is_at_least_95_percent_on_skewed_latency_like_distributions(draw: str) -> None:
    rng = np.random.default_rng(7)
    true_median = {"lognormal": 1.0, "exponential": math.log(2)}[draw]
    hits = 0
    trials = 2000
    for _ in range(trials):
        samples = rng.lognormal(0.0, 0.5, 60) if draw == "lognormal" else rng.exponential(1.0, 60)
        low, high = median_ci(samples)
        hits += low <= true_median <= high
    assert 0.95 <= hits / trials <= 0.985  # exact binomial intervals are conservative, not loose


def test_every_run_summary_carries_the_interval() -> None:
    result = LatencyResult(np.linspace(1.0, 2.0, 101), first_inference_ms=5.0, batch_size=1, timer="host_clock")
    summary = result.summary()
    assert (
        summary["latency_ms_median_ci95_low"] <= summary["latency_ms_median"] <= summary["latency_ms_median_ci95_high"]
    )


@pytest.mark.parametrize(
    ("ratio", "low", "high", "expected"),
    [
        (1.10, 1.06, 1.14, HIGHER),  # wholly above 1.05
        (0.90, 0.85, 0.94, LOWER),  # wholly below 1/1.05
        (1.01, 0.99, 1.03, EQUIVALENT),  # wholly within the margin
        (1.04, 0.98, 1.10, UNCLEAR),  # straddles 1.05
        (1.03, 1.01, 1.06, UNCLEAR),  # excludes 1, but not the margin
        (1.20, math.nan, math.nan, HIGHER),  # no interval: the point ratio is placed
        (1.02, math.nan, math.nan, EQUIVALENT),
    ],
)
def test_classify_places_the_interval_against_the_margin(ratio: float, low: float, high: float, expected: str) -> None:
    assert classify(ratio, low, high, 0.05) == expected


def test_the_bootstrap_interval_of_a_ratio_covers_the_true_ratio_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    a = 1.0 + 0.05 * rng.standard_normal(400)
    b = 1.2 + 0.05 * rng.standard_normal(400)
    boot = bootstrap_medians(b, np.random.default_rng(1)) / bootstrap_medians(a, np.random.default_rng(2))
    low, high = interval(boot)
    assert low < 1.2 < high and high - low < 0.03
    again = bootstrap_medians(b, np.random.default_rng(1)) / bootstrap_medians(a, np.random.default_rng(2))
    assert interval(again) == (low, high)


def test_the_unstable_threshold_is_trtexecs_and_every_doc_states_the_same() -> None:
    """trtexec (samples/common/sampleReporting.cpp, kUNSTABLE_PERF_REPORTING_THRESHOLD): 1.0F in TensorRT 8.4-10.13.0,
    the paper's 8.5 included, which the project keeps; 2.5F since 10.13.2."""
    from blockbench.measure.statistics import UNSTABLE_COV
    from tests.helpers import ROOT

    assert UNSTABLE_COV == 0.01
    for doc in ("README.md", "docs/measurement.md"):
        text = (ROOT / doc).read_text()
        assert "CoV exceeds 1.0 %" in text or "CoV above 1.0 %" in text, doc
        assert "CoV exceeds 2.5 %" not in text and "CoV above 2.5 %" not in text, doc
