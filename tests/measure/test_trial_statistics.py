"""The covering interval over trials: a two-level bootstrap on known distributions, and its seeds."""

from __future__ import annotations

import numpy as np
import pytest

from blockbench.measure.statistics import (
    WITHIN,
    bootstrap_medians,
    interval,
    interval_words,
    median_over_trials,
    seed_for,
    small_sample_widening,
    trial_bootstrap,
    trials_interval,
    two_level_medians,
)

RESAMPLES = 1000  # enough for a 95 % interval to a few percent of its width, and fast


def trials_around(centres: list[float], n: int = 200, spread: float = 0.002, seed: int = 0) -> list[np.ndarray]:
    """One trial per centre: ``n`` samples from N(centre, spread)."""
    rng = np.random.default_rng(seed)
    return [c + spread * rng.standard_normal(n) for c in centres]


def test_trials_whose_medians_differ_give_an_interval_far_wider_than_one_trials() -> None:
    """True trial medians 0.90 … 1.10 (kernel choices differing build to build), each trial tightly measured."""
    centres = [0.90, 0.95, 0.97, 1.00, 1.02, 1.05, 1.10]
    trials = trials_around(centres)
    low, high = trials_interval(trials, seed_for("spread"), RESAMPLES)
    within_low, within_high = interval(bootstrap_medians(trials[3], np.random.default_rng(1), RESAMPLES))
    assert low < float(np.median(centres)) < high
    assert (high - low) > 20 * (within_high - within_low)
    assert 0.90 < low < 1.0 < high < 1.10  # 7 trials: widened by 1.35, still within the trials' range here


def test_identical_trials_give_about_the_within_trial_interval() -> None:
    """Trials from one distribution: the covering interval adds only what resampling trials adds, no spread."""
    trials = trials_around([1.0] * 5, n=300, spread=0.01, seed=2)
    low, high = trials_interval(trials, seed_for("same"), RESAMPLES)
    pooled_low, pooled_high = interval(bootstrap_medians(np.concatenate(trials), np.random.default_rng(3), RESAMPLES))
    one_low, one_high = interval(bootstrap_medians(trials[0], np.random.default_rng(4), RESAMPLES))
    assert low < 1.0 < high
    # no wider than one trial's interval (each trial's median is as uncertain; their median of 5, less so) …
    assert (high - low) < 1.5 * (one_high - one_low)
    # … and no narrower than the pooled samples' (the two-level bootstrap does not pretend the trials are one)
    assert (high - low) > 0.8 * (pooled_high - pooled_low)


def test_the_median_over_trials_is_the_median_of_the_trial_medians() -> None:
    trials = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 11.0, 12.0, 13.0]), np.array([5.0])]
    assert median_over_trials(trials) == 5.0  # medians 2, 11.5, 5
    assert median_over_trials(trials[:2]) == pytest.approx((2.0 + 11.5) / 2)
    assert np.isnan(median_over_trials([]))


def test_one_trial_is_the_within_trial_bootstrap_draw_for_draw() -> None:
    (trial,) = trials_around([1.0], n=50, spread=0.05, seed=5)
    one = trial_bootstrap([trial], np.random.default_rng(6), RESAMPLES)
    assert one.shape == (RESAMPLES,)
    assert np.array_equal(one, bootstrap_medians(trial, np.random.default_rng(6), RESAMPLES))


def test_the_distribution_has_one_value_per_resample_and_draws_medians_of_drawn_trials() -> None:
    """Two trials far apart and noiseless: every resample's median is one trial's, or the mean of the two."""
    trials = [np.full(20, 1.0), np.full(20, 3.0)]
    boot = two_level_medians(trials, np.random.default_rng(7), 2000)
    assert boot.shape == (2000,) and set(np.unique(boot)) == {1.0, 2.0, 3.0}
    shares = [float(np.mean(boot == v)) for v in (1.0, 2.0, 3.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.04)  # (1,1), (1,3) or (3,1), (3,3)


def test_the_interval_is_determined_by_its_seed_and_the_seed_by_content() -> None:
    trials = trials_around([1.0, 1.05, 0.98], n=100, spread=0.02, seed=8)
    assert trials_interval(trials, 123, RESAMPLES) == trials_interval(trials, 123, RESAMPLES)
    assert trials_interval(trials, 123, RESAMPLES) != trials_interval(trials, 124, RESAMPLES)
    assert seed_for("config-hash-abc") == seed_for("config-hash-abc") != seed_for("config-hash-abd")
    assert 0 <= seed_for("") < 2**64  # numpy seeds must be non-negative
    # a fixed value, so that the same content gives the same interval in every process and store
    assert seed_for("config-hash-abc") == int(seed_for("config-hash-abc"))


def test_empty_trials_are_refused_never_an_interval_from_nothing() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        trial_bootstrap([], np.random.default_rng(0), 10)
    with pytest.raises(ValueError, match="samples in each"):
        trial_bootstrap([np.array([1.0]), np.array([])], np.random.default_rng(0), 10)


def test_the_interval_is_named_as_what_it_covers() -> None:
    assert interval_words(1) == WITHIN == "within one process"
    assert interval_words(3) == "covering 3 trials"


def test_few_trials_widen_the_distribution_by_students_t_about_the_median_of_trial_medians() -> None:
    assert small_sample_widening(1) == 1.0
    assert small_sample_widening(3) == pytest.approx(4.303 / 1.960 * (3 / 2) ** 0.5, rel=1e-3)  # 2.69
    assert small_sample_widening(8) == pytest.approx(2.365 / 1.960 * (8 / 7) ** 0.5, rel=1e-3)  # 1.29
    assert small_sample_widening(1000) == pytest.approx(1.0, abs=0.01)
    trials = trials_around([1.0, 1.05, 0.98], n=100, spread=0.02, seed=9)
    raw = two_level_medians(trials, np.random.default_rng(1), RESAMPLES)
    wide = trial_bootstrap(trials, np.random.default_rng(1), RESAMPLES)
    center = median_over_trials(trials)
    assert np.allclose(np.log(wide / center), small_sample_widening(3) * np.log(raw / center))
    low, high = interval(wide)
    assert low < min(float(np.median(t)) for t in trials) and high > max(float(np.median(t)) for t in trials)
