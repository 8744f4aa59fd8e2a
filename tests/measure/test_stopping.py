"""The precision stopping rule on a fake step and clock: why each loop stops, and the samples' host timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from blockbench.measure import harness
from blockbench.measure.harness import (
    MIN_PIPELINED_SAMPLES,
    PIPELINE_DEPTH,
    STOP_MAX_S,
    STOP_MINIMUMS,
    STOP_PRECISION,
    measure,
)
from blockbench.measure.statistics import median_ci
from tests.measure.test_benchmark import FakeClock, FakeStep, settings


def spread_ms(n: int, low: float, high: float, seed: int = 7) -> list[float]:
    return np.random.default_rng(seed).uniform(low, high, n).round(4).tolist()


def test_a_constant_latency_reaches_the_precision_long_before_min_s(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [1.0]), settings(target_precision=0.005, min_s=5.0, max_s=10.0))
    assert result.stop_reason == STOP_PRECISION and result.pipelined_stop_reason == ""
    assert result.samples_ms.size == 40  # min_iters: the first check already passes
    assert result.sample_times_s[-1] - result.sample_times_s[0] < 0.1  # 40 ms of 5 s


def test_without_a_target_the_minimums_stop_the_loop(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [10.0]), settings(min_iters=5, min_s=1.0, target_precision=0.0))
    assert result.stop_reason == STOP_MINIMUMS and result.samples_ms.size == 100


def test_a_noisy_step_with_a_tiny_target_stops_at_max_s(clock: FakeClock) -> None:
    step = FakeStep(clock, spread_ms(500, 1.0, 100.0))
    result = measure(step, settings(target_precision=1e-4, min_s=0.0, max_s=2.0))
    assert result.stop_reason == STOP_MAX_S
    assert 0 < result.samples_ms.size < 200 and result.samples_ms.size == result.sample_times_s.size


def test_max_s_without_a_target_is_reported_too(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [100.0]), settings(min_iters=1000, max_s=2.0))
    assert result.stop_reason == STOP_MAX_S


def test_a_noisy_step_stops_once_its_interval_is_narrow_enough(clock: FakeClock, monkeypatch) -> None:
    """Uniform 1-2 ms: ±2 % of the median needs ~1000 samples; the check runs only at geometric checkpoints."""
    checked: list[int] = []
    real = harness.median_ci_ranks
    monkeypatch.setattr(harness, "median_ci_ranks", lambda n: checked.append(n) or real(n))
    result = measure(FakeStep(clock, spread_ms(5000, 1.0, 2.0)), settings(target_precision=0.02, max_s=60.0))
    n = result.samples_ms.size
    assert result.stop_reason == STOP_PRECISION and 500 < n < 3000
    low, high = median_ci(result.samples_ms)
    median = float(np.median(result.samples_ms))
    assert max(median - low, high - median) <= 0.02 * median
    before = result.samples_ms[: checked[-2]]  # at the previous checkpoint it was not yet precise
    low, high = median_ci(before)
    assert max(np.median(before) - low, high - np.median(before)) > 0.02 * np.median(before)
    assert checked[0] == 40 and checked[-1] == n and len(checked) < 40  # geometric: dozens of checks, not n
    gaps = np.diff(checked)
    assert np.all(gaps >= harness.PRECISION_CHECK_MIN_GAP) and np.all(gaps >= np.array(checked[:-1]) // 10)


def test_sample_times_are_aligned_with_the_samples_and_increasing(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [1.0, 3.0]), settings(timing="both"))
    assert result.sample_times_s.shape == result.samples_ms.shape == (40,)
    assert result.pipelined_times_s.shape == result.pipelined_ms.shape == (MIN_PIPELINED_SAMPLES,)
    assert np.all(np.diff(result.sample_times_s) > 0) and np.all(np.diff(result.pipelined_times_s) > 0)
    # on the fake clock each timestamp is read right after its sample: the gaps are the samples themselves
    assert np.allclose(np.diff(result.sample_times_s) * 1000.0, result.samples_ms[1:])
    assert np.allclose(np.diff(result.pipelined_times_s) * 1000.0, result.pipelined_ms[1:] * PIPELINE_DEPTH)
    assert result.pipelined_times_s[0] > result.sample_times_s[-1]  # the pipelined loop runs after


def test_the_pipelined_loop_honours_the_rule(clock: FakeClock) -> None:
    only = measure(FakeStep(clock, [2.0]), settings(timing="pipelined", target_precision=0.005, min_s=5.0))
    assert only.stop_reason == only.pipelined_stop_reason == STOP_PRECISION
    assert only.pipelined_ms.size == MIN_PIPELINED_SAMPLES and only.samples_ms.size == 0
    assert only.pipelined_times_s[-1] - only.pipelined_times_s[0] < 1.0
    both = measure(FakeStep(clock, [2.0]), settings(timing="both", min_iters=5, min_s=1.0))
    assert both.stop_reason == both.pipelined_stop_reason == STOP_MINIMUMS
    noisy = FakeStep(clock, spread_ms(500, 1.0, 100.0))
    result = measure(noisy, settings(timing="both", target_precision=1e-4, max_s=1.0))
    assert result.stop_reason == result.pipelined_stop_reason == STOP_MAX_S


@pytest.mark.parametrize("reason", [STOP_PRECISION, STOP_MINIMUMS, STOP_MAX_S])
def test_the_stop_reason_is_in_the_info_line(clock: FakeClock, caplog, reason: str) -> None:
    changes = {
        STOP_PRECISION: {"target_precision": 0.005},
        STOP_MINIMUMS: {},
        STOP_MAX_S: {"min_iters": 10_000, "max_s": 0.5},
    }[reason]
    with caplog.at_level("INFO", logger=harness.__name__):
        assert measure(FakeStep(clock, [1.0]), settings(**changes)).stop_reason == reason
    assert any(f"(stopped: {reason})" in r.getMessage() for r in caplog.records)
