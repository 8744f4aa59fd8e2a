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
trials a run's median is the median of its trial medians (:func:`median_over_trials`), and its interval combines
both levels (:func:`trials_standard_error`): the spread of the trial medians (which holds the between-build
variation and each trial's own noise) as the standard error of a median, ``sqrt(pi / 2) · s / sqrt(N)``, and the
trials' own within-trial standard errors, in quadrature; the interval is the median ± Student's t quantile at
N - 1 degrees of freedom times that, in log space (:func:`trial_bootstrap` draws from it, so that ratios of two
runs, in compare and the report, are resampled as one-level bootstraps are). Not a percentile bootstrap of the
trials: with N = 3 the bootstrap distribution of a median of medians sits on the observed trial medians (two
trials a hair apart put one end of its interval on them), and it cannot reach past their range, which misses the
median over builds with probability 2 · 0.5^N. On an H100 (docs/gpu/reproducibility.md) a second sweep's medians
fell inside the first's widened percentile bootstrap interval for 3 of 6 configs, inside this one for 5 of 6, on
the same data; simulated with normally spread build medians (300 sweeps each) this interval covered the true
median in 97 % / 98 % / 97 % of sweeps at 3 / 5 / 8 trials and held a second sweep's median in 93 % / 90 % / 86 %.
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
    "median of trial medians ± Student's t (N - 1 degrees of freedom) × its standard error (the trial medians' "
    "spread and the trials' own noise), in log space, 95 %"
)
TRIALS_RATIO_METHOD = (
    "percentile bootstrap of the ratio of medians of trial medians, each side drawn from its interval over trials "
    f"(Student's t about the median, log space), {BOOTSTRAP_RESAMPLES} resamples, 95 %"
)
COVERING = "covering trials (Student's t over trial medians)"  # how a reader is told which interval a verdict used
WITHIN = "within one process"


def seed_for(material: str) -> int:
    """A seed derived from content (a config hash; a cell's axes and engine), never from a store's run ids: the
    same data gives the same interval wherever it is stored, and different material gives unrelated streams."""
    return int.from_bytes(hashlib.sha256(f"{SEED}:{material}".encode()).digest()[:8], "big")


def median_over_trials(trials: Sequence[np.ndarray]) -> float:
    """The median of the trial medians (a run's headline median when it has trials); NaN without any."""
    medians = [float(np.median(t)) for t in trials if len(t)]
    return float(np.median(medians)) if medians else math.nan


def trials_standard_error(trials: Sequence[np.ndarray]) -> float:
    """The standard error of the median of trial medians: the trial medians' spread as a median's standard error
    (``sqrt(pi / 2) · s / sqrt(N)``, the median's asymptotic efficiency against the mean) and the trials' mean
    within-trial variance of the median over N (each from its order-statistic interval), in quadrature. The second
    term keeps trials that happen to agree closely from claiming more than their own samples allow."""
    medians = np.array([float(np.median(t)) for t in trials])
    n = medians.size
    between = math.pi / 2 * medians.var(ddof=1) / n if n > 1 else 0.0
    within = [_within_variance(np.asarray(t, dtype=float)) for t in trials]
    return math.sqrt(between + float(np.mean(within)) / n)


def _within_variance(samples: np.ndarray) -> float:
    """A trial's variance of its median: from its order-statistic interval, or for fewer samples than that needs
    (< 6) the median's asymptotic ``(pi / 2) · var / n``; infinite for a single sample (it says nothing)."""
    low, high = median_ci(samples)
    if math.isfinite(low):
        return ((high - low) / (2 * float(scipy_stats.norm.ppf((1 + CONFIDENCE) / 2)))) ** 2
    if samples.size < 2:
        return math.inf
    return math.pi / 2 * float(samples.var(ddof=1)) / samples.size


def trial_bootstrap(
    trials: Sequence[np.ndarray] | Sequence[Sequence[float]],
    rng: np.random.Generator,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> np.ndarray:
    """Draws of the median of trial medians, from the interval over trials (the module docstring says why):
    ``median · exp(se / median · T)`` with T Student's t at N - 1 degrees of freedom and se
    :func:`trials_standard_error`, so its percentile interval is that interval and ratios of two runs' draws are
    bootstrapped as one-process runs are. One trial: that trial's :func:`bootstrap_medians`, draw for draw."""
    arrays = [np.asarray(t, dtype=float) for t in trials]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("a bootstrap over trials needs at least one trial, and samples in each")
    if len(arrays) == 1:
        return bootstrap_medians(arrays[0], rng, resamples)
    center = median_over_trials(arrays)
    spread = trials_standard_error(arrays) / center * rng.standard_t(len(arrays) - 1, resamples)
    return center * np.exp(np.clip(spread, -_LOG_LIMIT, _LOG_LIMIT))  # t(1)'s tails would under/overflow exp


_LOG_LIMIT = 20.0  # a draw beyond e^±20 of the median is as good as infinite for every interval and ratio


def trials_interval(
    trials: Sequence[np.ndarray] | Sequence[Sequence[float]], seed: int = SEED, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """The 95 % interval of the median of trial medians, ``median · exp(± t · se / median)`` (exact; ``seed`` and
    ``resamples`` matter only for one trial, whose interval is its bootstrap's)."""
    arrays = [np.asarray(t, dtype=float) for t in trials]
    if len(arrays) < 2:
        return interval(trial_bootstrap(arrays, np.random.default_rng(seed), resamples))
    center = median_over_trials(arrays)
    half = float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, len(arrays) - 1)) * trials_standard_error(arrays) / center
    half = min(half, _LOG_LIMIT)  # e^20 of the median either side is no interval at all, and must not overflow
    return center * math.exp(-half), center * math.exp(half)


def interval_words(trials: int) -> str:
    """Which interval a bootstrap over ``trials`` trials is, in words: ``covering 3 trials`` or ``within one
    process`` (one trial: its samples only)."""
    return f"covering {trials} trials" if trials >= 2 else WITHIN
