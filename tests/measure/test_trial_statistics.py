"""The covering interval over trials (Student's t over trial medians) on known distributions, and its seeds."""

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
    trial_bootstrap,
    trials_interval,
    trials_standard_error,
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
    # t(6) x sqrt(pi/2) x s / sqrt(7) about the median 1.00: s = 0.066, so about ±7.6 %
    assert low == pytest.approx(np.exp(-0.076), abs=0.01) and high == pytest.approx(np.exp(0.076), abs=0.01)


def test_identical_trials_give_about_the_within_trial_interval() -> None:
    """Trials from one distribution: the covering interval adds only what resampling trials adds, no spread."""
    trials = trials_around([1.0] * 5, n=300, spread=0.01, seed=2)
    low, high = trials_interval(trials, seed_for("same"), RESAMPLES)
    pooled_low, pooled_high = interval(bootstrap_medians(np.concatenate(trials), np.random.default_rng(3), RESAMPLES))
    one_low, one_high = interval(bootstrap_medians(trials[0], np.random.default_rng(4), RESAMPLES))
    assert low < 1.0 < high
    # no wider than one trial's interval (each trial's median is as uncertain; their median of 5, less so) …
    assert (high - low) < 1.5 * (one_high - one_low)
    # … and no narrower than the pooled samples' (the trials are not pretended to be one)
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


def test_the_draws_follow_students_t_about_the_median_and_give_the_exact_interval() -> None:
    trials = trials_around([1.0, 1.03, 0.98], n=100, spread=0.01, seed=7)
    draws = trial_bootstrap(trials, np.random.default_rng(7), 20000)
    low, high = trials_interval(trials)
    assert interval(draws) == pytest.approx((low, high), rel=0.01)
    se = trials_standard_error(trials)
    medians = np.array([np.median(t) for t in trials])
    assert se >= np.sqrt(np.pi / 2) * medians.std(ddof=1) / np.sqrt(3)  # the within-trial part only adds
    assert np.log(high / 1.0) == pytest.approx(4.303 * se / np.median(medians), rel=0.02)  # t(2) = 4.303


def test_trials_that_agree_closely_still_carry_their_own_noise() -> None:
    """Three trials whose medians happen to be equal: the interval is the trials' own noise, not zero."""
    trials = [np.linspace(0.9, 1.1, 61)] * 3  # median 1.0 each
    low, high = trials_interval(trials)
    assert low < 1.0 < high and high - low > 0.01


def test_the_interval_is_determined_by_its_seed_and_the_seed_by_content() -> None:
    trials = trials_around([1.0, 1.05, 0.98], n=100, spread=0.02, seed=8)
    assert trials_interval(trials, 123, RESAMPLES) == trials_interval(trials, 124, RESAMPLES)  # exact: no resampling
    draws = [trial_bootstrap(trials, np.random.default_rng(seed), RESAMPLES) for seed in (123, 123, 124)]
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
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


def test_short_trials_and_outliers_give_an_honest_interval_never_a_crash() -> None:
    """Trials too short for an order-statistic interval still carry their noise; a wild one never overflows."""
    short = [np.array([0.5, 0.9, 1.0, 1.1, 1.6])] * 3  # 5 samples: no 95 % order-statistic interval
    low, high = trials_interval(short)
    assert low < 0.9 and high > 1.1  # not the ±0 of three equal medians
    wild = [np.array([1.0] * 6), np.array([1e4] * 6)]
    low, high = trials_interval(wild)
    assert 0 < low < 1.0 and high > 1e4 and np.isfinite(high)
    assert np.isfinite(trial_bootstrap(wild, np.random.default_rng(0), 100)).all()
