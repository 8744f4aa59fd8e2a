"""What the parent saw of the GPU while a worker measured, added to that worker's result (``benchmark.throttle``).

The parent samples the measuring GPU's clocks, power, temperature and throttle reasons through the worker's
benchmark stage (:class:`~blockbench.measure.observer.GpuObserver`); the measuring process does nothing for it.
``tag``: the run is tagged ``throttled`` (and how long); ``discard``: the samples the worker took inside a throttled
span are dropped and counted (``throttle_discarded``), and the latency statistics are those of the samples kept.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from blockbench.config.schema import BenchmarkConfig
from blockbench.job.execute import ExecutionResult
from blockbench.measure import metric_names as names
from blockbench.measure.harness import LatencyResult
from blockbench.measure.observer import GpuObserver
from blockbench.measure.statistics import median_ci_ranks

log = logging.getLogger(__name__)

THROTTLED_TAG = "throttled"


def add_observation(result: ExecutionResult, observer: GpuObserver | None, bench: BenchmarkConfig, why: str) -> None:
    """Tag ``result`` with what ``observer`` saw (or ``why`` nothing was observed) and, for
    ``benchmark.throttle=discard``, drop the samples taken while the GPU throttled."""
    if observer is None:
        result.tags[THROTTLED_TAG] = f"not observed: {why}"
        return
    if observer.unavailable or result.latency is None:  # build only: nothing was timed
        result.tags[THROTTLED_TAG] = observer.unavailable or "not observed: nothing was timed"
        return
    latency = result.latency
    stamps = np.concatenate([latency.sample_times_s, latency.pipelined_times_s])
    if stamps.size:
        observer.restrict(float(stamps.min()), float(stamps.max()))
    result.metrics.update(observer.summary())
    result.tags[THROTTLED_TAG] = observer.tag()
    if bench.throttle != "discard":
        return
    drop = observer.inside(latency.sample_times_s) if latency.sample_times_s.size else np.zeros(0, bool)
    drop_pipelined = observer.inside(latency.pipelined_times_s) if latency.pipelined_times_s.size else np.zeros(0, bool)
    dropped = int(drop.sum() + drop_pipelined.sum())
    result.metrics[names.THROTTLE_DISCARDED] = float(dropped)
    if not dropped:
        return
    kept = _kept(latency, drop, drop_pipelined)
    if kept is None:
        result.tags[THROTTLED_TAG] += f"; {dropped} samples inside throttled spans kept: too few would remain"
        result.metrics[names.THROTTLE_DISCARDED] = 0.0
        return
    result.metrics.update(kept.summary())
    result.latency = kept
    result.tags[THROTTLED_TAG] += f"; {dropped} samples inside throttled spans discarded (benchmark.throttle=discard)"
    log.warning("throttle: %d samples taken while the GPU throttled were discarded", dropped)


def _kept(latency: LatencyResult, drop: np.ndarray, drop_pipelined: np.ndarray) -> LatencyResult | None:
    """The samples outside throttled spans, or None when a series would keep too few for an interval."""
    keep, keep_pipelined = ~drop, ~drop_pipelined
    for mask in (keep, keep_pipelined):
        if mask.size and median_ci_ranks(int(mask.sum())) is None:
            return None
    changes: dict[str, np.ndarray] = {}
    if drop.size:
        changes |= {"samples_ms": latency.samples_ms[keep], "sample_times_s": latency.sample_times_s[keep]}
        if latency.enqueue_ms.size == drop.size:
            changes["enqueue_ms"] = latency.enqueue_ms[keep]
        if latency.phase_ms.shape[0] == drop.size:
            changes["phase_ms"] = latency.phase_ms[keep]
    if drop_pipelined.size:
        changes |= {
            "pipelined_ms": latency.pipelined_ms[keep_pipelined],
            "pipelined_times_s": latency.pipelined_times_s[keep_pipelined],
        }
    return dataclasses.replace(latency, **changes)
