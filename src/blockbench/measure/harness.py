"""The one latency harness every backend goes through (trtexec / MLPerf style stopping rule).

Cold first inference, then warm-up until both an iteration count and a duration are reached, then measurement
until both ``min_iters`` and ``min_s`` are reached (or ``max_s`` runs out); with ``target_precision`` > 0, until
``min_iters`` is reached and the median's 95 % interval lies within ± that fraction of it, ``min_s`` not waited for
(or ``max_s`` runs out). Every sample is kept, with the host's monotonic time right after it was taken (so the
parent can drop samples taken while the device throttled). GPU steps are timed with CUDA events on the step's
stream, synchronous steps with the host's monotonic clock.

Two latency definitions (``benchmark.timing``): **per-request** -- each inference timed alone and waited for, as a
service answering one request at a time sees it (``latency_ms_*``); **pipelined** -- ``PIPELINE_DEPTH`` inferences
issued back to back between two timestamps, the time per inference when requests queue up (``pipelined_ms_*``).
Two cache states (``benchmark.cache``): **warm** -- whatever the previous inference left in the caches, as in a
tight loop; **flushed** -- a buffer of twice the device's last-level cache (a GPU's L2) written before each timed
inference (pipelined: before each batch), outside the timed region, as when other work shares the device.
Per request, GPU steps also keep the host time to issue the inference (``enqueue_ms_*``), and end-to-end steps with
their own copies the host->device, compute and device->host parts (``h2d_ms_*``, ``compute_ms_*``, ``d2h_ms_*``),
from which trtexec's enqueue-bound and copy-bound rules are applied (:meth:`LatencyResult.bounds`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from blockbench.backends.base import InferenceStep
from blockbench.errors import ConfigError
from blockbench.measure.energy import EnergyMeter, EnergyReading
from blockbench.measure.hardware import MemoryProbe, gpu_state, last_level_cache_bytes
from blockbench.measure.metric_names import (
    COMPUTE_MEDIAN,
    D2H_MEDIAN,
    ENERGY_MEAN_W,
    ENERGY_PER_INFERENCE,
    ENERGY_WINDOW_S,
    ENQUEUE_MEDIAN,
    H2D_MEDIAN,
    LATENCY_COV,
    LATENCY_MEDIAN,
    LATENCY_MEDIAN_CI_HIGH,
    LATENCY_MEDIAN_CI_LOW,
    LATENCY_P99,
    PIPELINED_MEDIAN,
    PIPELINED_MEDIAN_CI_HIGH,
    PIPELINED_MEDIAN_CI_LOW,
)
from blockbench.measure.settings import BenchmarkSettings
from blockbench.measure.statistics import UNSTABLE_COV, median_ci, median_ci_ranks
from blockbench.measure.timer import Flusher, Timer

log = logging.getLogger(__name__)


ENQUEUE_BOUND_FRACTION = 0.8  # trtexec's rule: issuing takes over 80 % of the GPU compute time
BOUND_WARNINGS = {
    "enqueue": "enqueue-bound: the host needs more than 80 % of the GPU compute time to issue one inference, so the "
    "GPU waits on the host; a CUDA graph (backend.mode=cuda_graph, backend.cuda_graph=true) may help",
    "h2d": "copy-bound: the host->device copy of the input takes at least as long as the compute",
    "d2h": "copy-bound: the device->host copy of the output takes at least as long as the compute",
}


@dataclass(frozen=True)
class LatencyResult:
    """Per-iteration latencies in milliseconds plus the cold first inference."""

    samples_ms: np.ndarray  # per-request latencies (empty when only pipelined timing ran)
    first_inference_ms: float
    batch_size: int
    timer: str  # "cuda_event" or "host_clock"
    device_state: dict[str, float] = field(default_factory=dict)  # GPU clocks/temperature, start and end
    pipelined_ms: np.ndarray = field(default_factory=lambda: np.empty(0))  # per-inference time of each batch
    cache_bytes_flushed: int = 0  # size of the buffer written before each timed inference; 0 = warm caches
    enqueue_ms: np.ndarray = field(default_factory=lambda: np.empty(0))  # host time to issue each GPU request
    phase_ms: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))  # per request: h2d, compute, d2h
    energy: EnergyReading | None = None  # the device's energy over the measurement window
    energy_inferences: int = 0  # inferences run in that window
    stop_reason: str = ""  # why the per-request loop stopped (the pipelined one's when only it ran): STOP_*
    pipelined_stop_reason: str = ""  # why the pipelined loop stopped
    # time.monotonic() (the system-wide CLOCK_MONOTONIC) right after each sample, one-to-one with samples_ms /
    # pipelined_ms: what the parent matches against the device's throttle events
    sample_times_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    pipelined_times_s: np.ndarray = field(default_factory=lambda: np.empty(0))

    def summary(self) -> dict[str, float]:
        stats: dict[str, float] = {"first_inference_ms": self.first_inference_ms, **self.device_state}
        if self.samples_ms.size:
            stats.update(self._per_request())
        if self.pipelined_ms.size:
            p = self.pipelined_ms
            low, high = median_ci(p)
            stats.update(
                {
                    PIPELINED_MEDIAN: float(np.median(p)),
                    PIPELINED_MEDIAN_CI_LOW: low,
                    PIPELINED_MEDIAN_CI_HIGH: high,
                    "pipelined_ms_p99": float(np.percentile(p, 99)),
                    "pipelined_cov": float(p.std(ddof=1) / p.mean()) if p.size > 1 and p.mean() > 0 else 0.0,
                    "pipelined_throughput_qps": float(1000.0 * self.batch_size / np.median(p)),
                    "pipelined_batches": float(p.size),
                }
            )
        series = {ENQUEUE_MEDIAN: self.enqueue_ms}
        if self.phase_ms.size:
            series |= {
                H2D_MEDIAN: self.phase_ms[:, 0],
                COMPUTE_MEDIAN: self.phase_ms[:, 1],
                D2H_MEDIAN: self.phase_ms[:, 2],
            }
        for median_name, values in series.items():
            if values.size:
                stats[median_name] = float(np.median(values))
                stats[median_name.replace("_median", "_p99")] = float(np.percentile(values, 99))
        if self.cache_bytes_flushed:
            stats["cache_flush_mb"] = self.cache_bytes_flushed / 2**20
        if self.energy is not None and self.energy_inferences:
            stats[ENERGY_PER_INFERENCE] = 1000.0 * self.energy.joules / self.energy_inferences
            stats[ENERGY_MEAN_W] = self.energy.watts
            stats[ENERGY_WINDOW_S] = self.energy.seconds
        return stats

    def bounds(self) -> list[str]:
        """What limits this engine besides its GPU compute, by trtexec's rules: ``enqueue`` (issuing an inference
        takes over 80 % of its GPU compute time), ``h2d`` / ``d2h`` (a copy takes at least the compute time).
        GPU compute is the compute phase in end_to_end mode, the whole per-request sample otherwise."""
        compute = self.phase_ms[:, 1] if self.phase_ms.size else self.samples_ms
        if not compute.size:
            return []
        gpu = float(np.median(compute))
        found = []
        if self.enqueue_ms.size and np.median(self.enqueue_ms) > ENQUEUE_BOUND_FRACTION * gpu:
            found.append("enqueue")
        if self.phase_ms.size:
            found += [name for name, col in (("h2d", 0), ("d2h", 2)) if np.median(self.phase_ms[:, col]) >= gpu]
        return found

    def _per_request(self) -> dict[str, float]:
        s = self.samples_ms
        mean = float(s.mean())
        low, high = median_ci(s)
        return {
            "latency_ms_mean": mean,
            LATENCY_MEDIAN: float(np.median(s)),
            LATENCY_MEDIAN_CI_LOW: low,
            LATENCY_MEDIAN_CI_HIGH: high,
            "latency_ms_min": float(s.min()),
            "latency_ms_max": float(s.max()),
            "latency_ms_std": float(s.std(ddof=1)) if s.size > 1 else 0.0,
            LATENCY_COV: float(s.std(ddof=1) / mean) if s.size > 1 and mean > 0 else 0.0,
            "latency_ms_p90": float(np.percentile(s, 90)),
            "latency_ms_p95": float(np.percentile(s, 95)),
            LATENCY_P99: float(np.percentile(s, 99)),
            "throughput_qps": float(1000.0 * self.batch_size / np.median(s)),
            "iterations": float(s.size),
        }


PIPELINE_DEPTH = 20  # inferences issued back to back per pipelined sample
MIN_PIPELINED_SAMPLES = 10  # enough batches for a confidence interval of their median

# Why a measurement loop stopped (LatencyResult.stop_reason, the run's stop_reason tag).
STOP_PRECISION = "precision reached"  # target_precision > 0: the median's 95 % interval is within ± target of it
STOP_MINIMUMS = "min_iters/min_s"  # target_precision = 0: both minimums reached
STOP_MAX_S = "max_s"  # max_s ran out first
# With target_precision > 0 the interval is checked between samples, once the sample count has grown by
# PRECISION_CHECK_GROWTH since the last check and by at least PRECISION_CHECK_MIN_GAP samples: a few dozen checks
# in all, each O(n), so the check costs a few microseconds per sample and never runs inside a timed region.
PRECISION_CHECK_GROWTH = 0.1
PRECISION_CHECK_MIN_GAP = 24


def _warm_up(timer: Timer, settings: BenchmarkSettings) -> int:
    begin, done = time.monotonic(), 0
    while (done < settings.warmup_iters or time.monotonic() - begin < settings.warmup_s) and (
        time.monotonic() - begin < settings.max_s
    ):
        timer()
        done += 1
    return done


def _precise(samples: list[float], target: float) -> bool:
    """Whether the median's 95 % interval lies within median x (1 ± target)."""
    ranks = median_ci_ranks(len(samples))
    if ranks is None:
        return False
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    median = float(np.median(ordered))
    return max(median - ordered[ranks[0]], ordered[ranks[1]] - median) <= target * median


def _measure_loop(timer: Timer, settings: BenchmarkSettings, depth: int = 1) -> tuple[list[float], list[float], str]:
    """Samples until both ``min_iters`` inferences and ``min_s`` are reached, or with ``target_precision`` > 0
    until ``min_iters`` is and the median is that precise (checked at geometric checkpoints), or until ``max_s``;
    each sample times ``depth`` inferences (then at least MIN_PIPELINED_SAMPLES samples). Returns the samples,
    the host's monotonic time right after each, and why it stopped (a STOP_* constant). Nothing but the samples
    happens here: no progress display, no logging."""
    samples: list[float] = []
    times: list[float] = []
    target = settings.target_precision
    least = MIN_PIPELINED_SAMPLES if depth > 1 else 1
    next_check = 0
    begin = now = time.monotonic()
    while True:
        n = len(samples)
        if n and now - begin >= settings.max_s:
            return samples, times, STOP_MAX_S
        if n * depth >= settings.min_iters and n >= least:
            if target <= 0:
                if now - begin >= settings.min_s:
                    return samples, times, STOP_MINIMUMS
            elif n >= next_check:
                if _precise(samples, target):
                    return samples, times, STOP_PRECISION
                next_check = n + max(PRECISION_CHECK_MIN_GAP, int(n * PRECISION_CHECK_GROWTH))
        samples.append(timer(depth))
        now = time.monotonic()
        times.append(now)


def measure(
    step: InferenceStep,
    settings: BenchmarkSettings,
    probe: MemoryProbe | None = None,
    on_first: Callable[[], None] | None = None,
    meter: EnergyMeter | None = None,
    on_window: Callable[[], None] | None = None,
) -> LatencyResult:
    """Run the cold call, the warm-up and the measurement loop on ``step``.

    ``on_first`` runs right after the cold call (the parity check, so a wrong engine fails before minutes of
    measurement); ``probe`` is sampled after warm-up and at the end; GPU clocks are read at both ends of the
    measurement; ``meter`` reads the device's energy counter around the per-request loop (the pipelined one when
    that is the only one); ``on_window`` runs once as the timed window opens (what records the state measured under).
    """
    flush = None
    if settings.cache == "flushed":
        device = step.stream.device if step.stream is not None else torch.device("cpu")
        cache_bytes = last_level_cache_bytes(device)
        if not cache_bytes:
            raise ConfigError(
                f"benchmark.cache=flushed needs the size of {device}'s last-level cache, which this machine does not "
                "report; use benchmark.cache=warm"
            )
        flush = Flusher(step, cache_bytes)
    timer = Timer(step)
    with step.context():
        first = timer()
        if on_first is not None:
            on_first()
        warmed = _warm_up(timer, settings)
        log.info("benchmark: cold %.3f ms, then %d warm-up iterations", first, warmed)
        if probe is not None:
            probe.sample()
        state = {f"gpu_{k}_start": v for k, v in (gpu_state(probe.device) if probe else {}).items()}
        timer.flush = flush  # cold call and warm-up ran as they always do; only timed calls are flushed
        if on_window is not None:
            on_window()
        begin = time.monotonic()
        timer.detail = True
        metered = meter is not None and not meter.unavailable
        if metered:
            meter.start()
        none: tuple[list[float], list[float], str] = ([], [], "")
        samples, times, reason = _measure_loop(timer, settings) if settings.timing != "pipelined" else none
        timer.detail = False
        energy = meter.stop() if metered and samples else None  # else the window runs on over the pipelined loop
        pipelined, pipelined_times, pipelined_reason = (
            _measure_loop(timer, settings, PIPELINE_DEPTH) if settings.timing != "per_request" else none
        )
        if metered and not samples:
            energy = meter.stop()
        seconds = time.monotonic() - begin
    if probe is not None:
        probe.sample()
        state.update({f"gpu_{k}_end": v for k, v in gpu_state(probe.device).items()})
    result = LatencyResult(
        samples_ms=np.asarray(samples, dtype=np.float64),
        first_inference_ms=first,
        batch_size=settings.batch_size,
        timer=timer.kind,
        device_state=state,
        pipelined_ms=np.asarray(pipelined, dtype=np.float64),
        cache_bytes_flushed=flush.nbytes if flush else 0,
        enqueue_ms=np.asarray(timer.enqueue_ms, dtype=np.float64),
        phase_ms=np.asarray(timer.phase_ms, dtype=np.float64).reshape(-1, 3),
        energy=energy,
        energy_inferences=len(samples) if samples else len(pipelined) * PIPELINE_DEPTH,
        stop_reason=reason or pipelined_reason,
        pipelined_stop_reason=pipelined_reason,
        sample_times_s=np.asarray(times, dtype=np.float64),
        pipelined_times_s=np.asarray(pipelined_times, dtype=np.float64),
    )
    stats = result.summary()
    if samples:
        log.info(
            "benchmark: %d iterations in %.1f s (stopped: %s), median %.3f ms (95 %% CI %.3f-%.3f), p99 %.3f ms, "
            "CoV %.2f%% (%s)",
            len(samples),
            seconds,
            reason,
            stats[LATENCY_MEDIAN],
            stats[LATENCY_MEDIAN_CI_LOW],
            stats[LATENCY_MEDIAN_CI_HIGH],
            stats[LATENCY_P99],
            100 * stats[LATENCY_COV],
            timer.kind,
        )
    if pipelined:
        log.info(
            "benchmark: pipelined, %d x %d inferences back to back (stopped: %s): %.3f ms per inference "
            "(95 %% CI %.3f-%.3f)",
            len(pipelined),
            PIPELINE_DEPTH,
            pipelined_reason,
            stats[PIPELINED_MEDIAN],
            stats[PIPELINED_MEDIAN_CI_LOW],
            stats[PIPELINED_MEDIAN_CI_HIGH],
        )
    if result.phase_ms.size:
        log.info(
            "benchmark: end to end = host->device %.3f + compute %.3f + device->host %.3f ms (medians)",
            stats[H2D_MEDIAN],
            stats[COMPUTE_MEDIAN],
            stats[D2H_MEDIAN],
        )
    unmet = f", the median not within ±{100 * settings.target_precision:g} %" if settings.target_precision > 0 else ""
    for what, count, why in (("per-request", len(samples), reason), ("pipelined", len(pipelined), pipelined_reason)):
        if why == STOP_MAX_S:
            log.warning("benchmark: %s loop stopped at max_s=%.0f s, %d samples%s", what, settings.max_s, count, unmet)
    for bound in result.bounds():
        log.warning("benchmark: %s", BOUND_WARNINGS[bound])
    if samples and stats[LATENCY_COV] > UNSTABLE_COV:
        log.warning(
            "benchmark: CoV %.1f %% > %.1f %%: this latency is unstable (clocks, power and temperature are logged "
            "with the run); compare it only coarsely",
            100 * stats[LATENCY_COV],
            100 * UNSTABLE_COV,
        )
    return result
