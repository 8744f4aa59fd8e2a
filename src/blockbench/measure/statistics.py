"""How sure a run's median latency is: a distribution-free confidence interval from the kept samples.

Why the order-statistic interval, not a bootstrap: latency samples are skewed and heavy-tailed (clock changes,
interrupts), so no shape can be assumed; the interval between two order statistics covers the true median with a
probability that follows from the binomial distribution alone, exactly, for any continuous distribution; it needs
no resampling (no randomness, no cost) and it is what a reader can check by hand. Its one assumption is that the
samples are independent: drift over the measurement (temperature, clocks) is not covered by it, which is why runs
also log their CoV and the device's clocks.

Why a second, covering interval over trials (``benchmark.trials``, each a fresh process and engine build): the
within-trial interval describes one process's one engine. Engines that autotune (TensorRT's tactic timing,
inductor's autotuning, cuDNN's benchmark mode, ONNX Runtime's algorithm search) pick kernels by timing them, and
pick differently from build to build and process to process; a compiled MobileNet's median moved by more than 10 %
between processes while each process's interval was a fraction of that (docs/measurement.md). So with N >= 2
trials a run's median is the median of its trial medians (:func:`median_over_trials`) and its interval comes from a
two-level percentile bootstrap (:func:`trial_bootstrap`): the trials resampled with replacement, and within each
drawn trial its samples, so that it covers the variation between builds and processes as well as the noise within
each. With few trials a plain percentile bootstrap errs narrow: it cannot reach much past the range of the trial
medians, which misses the median over builds with probability 2 · 0.5^N (25 % at 3 trials); simulated with
normally spread build medians (300 runs each) it covered the true median in 77 % of runs at 3 trials and 93 % at
5 and 8, and a second sweep's median fell inside the first's interval in only 61 % at 3 trials. So the bootstrap
distribution is widened about the median of trial medians, in log space, by
``k_N = t(0.975, N - 1) / z(0.975) · sqrt(N / (N - 1))`` (:func:`small_sample_widening`): its percentile interval
is then the bootstrap-standard-error interval with Student's t quantile and the plug-in variance's N / (N - 1)
correction (2.69 at 3 trials, 1.37 at 8, -> 1). In the same simulation it covered the true median in 97 %, 98 %,
96 % of runs (3, 5, 8 trials) and held a second sweep's median in 97 %, 92 %, 88 %. Ratios of such distributions
(compare, the report) inherit the widening of each side.
Seeds come from content (:func:`seed_for`: a config hash, a cell's axes), never from where a run is stored, so
the same data gives the same interval in every store.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
METHOD = "order statistic (binomial), 95 %"
# Above this CoV a latency is not stable enough to compare finely: trtexec's rule, as in the paper's toolchain.
# TensorRT's trtexec reporting code, samples/common/sampleReporting.cpp,
# ``constexpr float kUNSTABLE_PERF_REPORTING_THRESHOLD{...}`` (a percent, compared with the GPU compute time's CoV):
# 1.0F in every release from 8.4 through 10.13.0, which includes TensorRT 8.5, the paper's; 2.5F since 10.13.2
# (10.13.3, 10.14-10.16 and main). 1.0 % is kept: it is the paper's toolchain's, and a user choosing between
# configurations a few percent apart needs runs whose spread is below that, not up to 2.5 %.
UNSTABLE_COV = 0.01


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """0-based ranks (lo, hi) of the sorted samples bounding the median with at least ``confidence``; None if n is
    too small for any interval to reach it (n < 6 at 95 %).

    With X ~ Binomial(n, 1/2) and k the largest count with P(X <= k - 1) <= (1 - confidence) / 2, the sorted
    samples' k-th and (n - k + 1)-th values (1-based) bound the median. The CDF is summed once, in log space
    (``0.5 ** n`` underflows past n ~ 1000).
    """
    limit = math.log((1.0 - confidence) / 2)
    log_pmf = n * math.log(0.5)  # P(X = 0)
    log_cdf = log_pmf
    k = 0
    while k < n // 2 and log_cdf <= limit:  # P(X <= k) still within the tail: x_(k+1) is still a valid bound
        k += 1
        log_pmf += math.log((n - k + 1) / k)
        log_cdf = float(np.logaddexp(log_cdf, log_pmf))
    if k == 0:
        return None
    return k - 1, n - k


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval around the median of ``samples``; (nan, nan) when there are too few samples for one."""
    ordered = np.sort(np.asarray(samples, dtype=float))
    ranks = median_ci_ranks(ordered.size, confidence)
    if ranks is None:
        return math.nan, math.nan
    return float(ordered[ranks[0]]), float(ordered[ranks[1]])


# -- ratios between configurations ---------------------------------------------------------------------------------
#
# The ratio of two medians has no exact distribution-free interval, so comparisons bootstrap it: each sample set is
# resampled with replacement and its median taken, BOOTSTRAP_RESAMPLES times; any ratio (or ratio of ratios) of
# such medians, element by element, is a bootstrap distribution of that quantity, and its 2.5th and 97.5th
# percentiles are the 95 % interval. Seeded, so the same samples always give the same interval. The interval
# covers the noise within each measurement; two runs made minutes apart also differ by drift (clocks, temperature,
# kernel choices), which is what the equivalence margin of a verdict absorbs.

BOOTSTRAP_RESAMPLES = 4000
SEED = 20261202
RATIO_METHOD = f"percentile bootstrap of the ratio of medians, {BOOTSTRAP_RESAMPLES} resamples, 95 %"
_CHUNK = 500  # resamples drawn at once: bounds memory at 500 x n indices

HIGHER, LOWER, EQUIVALENT, UNCLEAR = "higher", "lower", "equivalent", "unclear"
CANNOT_TELL = "cannot tell"  # how every verdict words UNCLEAR: the interval crosses a bound of the margin


def bootstrap_medians(
    samples: Sequence[float] | np.ndarray, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES
) -> np.ndarray:
    """Medians of ``resamples`` resamples (with replacement) of ``samples``."""
    values = np.asarray(samples, dtype=float)
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        stop = min(start + _CHUNK, resamples)
        out[start:stop] = np.median(values[rng.integers(0, values.size, (stop - start, values.size))], axis=1)
    return out


def interval(bootstrap: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of a bootstrap distribution."""
    low, high = np.percentile(bootstrap, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def classify(ratio: float, low: float, high: float, margin: float) -> str:
    """Where a ratio stands against 1 with an equivalence margin ``margin`` (0.05: ±5 %).

    ``higher`` / ``lower``: the whole interval lies beyond ``1 + margin`` / below ``1 / (1 + margin)``;
    ``equivalent``: it lies within both; ``unclear``: it straddles a bound. Without an interval (NaN bounds: a
    reference table, or runs without kept samples) the point ratio alone is placed the same way.
    """
    if not math.isfinite(ratio):
        return UNCLEAR
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = ratio
    upper, lower = 1 + margin, 1 / (1 + margin)
    if low > upper:
        return HIGHER
    if high < lower:
        return LOWER
    if lower <= low and high <= upper:
        return EQUIVALENT
    return UNCLEAR


def _signed_percent(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f} %"


def describe(ratio: float, low: float, high: float, margin: float, above: str, below: str) -> str:
    """The one wording of :func:`classify`'s outcome for a ratio of latencies, so that none can be misread.

    ``above`` / ``below`` name the two directions (``"B is slower than A"``). Higher: ``{above} by x–y %`` (the
    interval, as the ratio's excess over 1); lower: ``{below} by x–y %`` (as the latency saved); equivalent:
    ``within ±t %``; unclear: ``cannot tell at ±t %``, with the interval, which may exclude 1 and still cross a
    bound (1.02 in [1.006, 1.034] at ±1 %: slower, but by more or less than 1 % the samples cannot say).
    """
    where = classify(ratio, low, high, margin)
    t = f"±{100 * margin:g} %"
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = ratio
    if where == HIGHER:
        return f"{above} by {100 * (low - 1):.1f}–{100 * (high - 1):.1f} %"
    if where == LOWER:
        return f"{below} by {100 * (1 - high):.1f}–{100 * (1 - low):.1f} %"
    if where == EQUIVALENT:
        return f"within {t}"
    if not math.isfinite(ratio):
        return f"{CANNOT_TELL} at {t}: no ratio"
    return f"{CANNOT_TELL} at {t}: the interval, {_signed_percent(low)} to {_signed_percent(high)}, crosses {t}"


# -- trials: the median over fresh processes and builds, and the interval that covers them --------------------------

TRIALS_METHOD = (
    "two-level percentile bootstrap of the median of trial medians (trials resampled with replacement, then each "
    f"drawn trial's samples), {BOOTSTRAP_RESAMPLES} resamples, widened for few trials (Student's t), 95 %"
)
TRIALS_RATIO_METHOD = (
    "two-level percentile bootstrap of the ratio of medians of trial medians (trials resampled, then each drawn "
    f"trial's samples), {BOOTSTRAP_RESAMPLES} resamples, widened for few trials (Student's t), 95 %"
)
COVERING = "covering trials (two-level bootstrap)"  # how a reader is told which interval a verdict used
WITHIN = "within one process"


def seed_for(material: str) -> int:
    """A seed derived from content (a config hash; a cell's axes and engine), never from a store's run ids: the
    same data gives the same interval wherever it is stored, and different material gives unrelated streams."""
    return int.from_bytes(hashlib.sha256(f"{SEED}:{material}".encode()).digest()[:8], "big")


def median_over_trials(trials: Sequence[np.ndarray]) -> float:
    """The median of the trial medians (a run's headline median when it has trials); NaN without any."""
    medians = [float(np.median(t)) for t in trials if len(t)]
    return float(np.median(medians)) if medians else math.nan


def two_level_medians(
    trials: Sequence[np.ndarray] | Sequence[Sequence[float]],
    rng: np.random.Generator,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> np.ndarray:
    """The plain two-level bootstrap distribution of the median of trial medians (:func:`trial_bootstrap` widens it).

    Each resample draws N trials with replacement, and for each drawn trial a median of its samples resampled with
    replacement; the statistic is the median of those N. Computed as: per trial, ``resamples`` bootstrap medians
    (:func:`bootstrap_medians`); per resample, N trial indices and, for each, an independent one of that trial's
    bootstrap medians. With one trial it is that trial's :func:`bootstrap_medians`, draw for draw.
    """
    arrays = [np.asarray(t, dtype=float) for t in trials]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("a bootstrap over trials needs at least one trial, and samples in each")
    per_trial = np.stack([bootstrap_medians(a, rng, resamples) for a in arrays])  # N x resamples
    n = len(arrays)
    if n == 1:
        return per_trial[0]
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        stop = min(start + _CHUNK, resamples)
        picked = rng.integers(0, n, (stop - start, n))  # which trials this resample holds
        which = rng.integers(0, resamples, (stop - start, n))  # which of each one's bootstrap medians
        out[start:stop] = np.median(per_trial[picked, which], axis=1)
    return out


def trial_bootstrap(
    trials: Sequence[np.ndarray] | Sequence[Sequence[float]],
    rng: np.random.Generator,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> np.ndarray:
    """Bootstrap distribution of the median of trial medians: :func:`two_level_medians`, widened in log space about
    the median of trial medians by :func:`small_sample_widening` (1 for one trial: the within-trial bootstrap)."""
    draws = two_level_medians(trials, rng, resamples)
    if len(trials) < 2:
        return draws
    center = median_over_trials([np.asarray(t, dtype=float) for t in trials])
    return center * np.exp(small_sample_widening(len(trials)) * np.log(draws / center))


def small_sample_widening(trials: int) -> float:
    """How much the two-level bootstrap's spread is widened at ``trials`` trials (the module docstring says why):
    Student's t over the normal quantile at N - 1 degrees of freedom, times the plug-in variance's correction."""
    if trials < 2:
        return 1.0
    z = scipy_stats.norm.ppf((1 + CONFIDENCE) / 2)
    return float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, trials - 1) / z * math.sqrt(trials / (trials - 1)))


def trials_interval(
    trials: Sequence[np.ndarray] | Sequence[Sequence[float]], seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """The 95 % interval of the median of trial medians from :func:`trial_bootstrap`, seeded (:func:`seed_for`)."""
    return interval(trial_bootstrap(trials, np.random.default_rng(seed), resamples))


def interval_words(trials: int) -> str:
    """Which interval a bootstrap over ``trials`` trials is, in words: ``covering 3 trials`` or ``within one
    process`` (one trial: its samples only)."""
    return f"covering {trials} trials" if trials >= 2 else WITHIN
