"""How sure a run's median latency is: a distribution-free confidence interval from the kept samples.

Why the order-statistic interval, not a bootstrap: latency samples are skewed and heavy-tailed (clock changes,
interrupts), so no shape can be assumed; the interval between two order statistics covers the true median with a
probability that follows from the binomial distribution alone, exactly, for any continuous distribution; it needs
no resampling (no randomness, no cost) and it is what a reader can check by hand. Its one assumption is that the
samples are independent: drift over the measurement (temperature, clocks) is not covered by it, which is why runs
also log their CoV and the device's clocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
METHOD = "order statistic (binomial), 95 %"
UNSTABLE_COV = 0.025  # trtexec's rule: above 2.5 % CoV a latency is not stable enough to compare finely


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
