"""The one latency harness every backend goes through (trtexec / MLPerf style stopping rule).

Cold first inference, then warm-up until both an iteration count and a duration are reached, then measurement
until both ``min_iters`` and ``min_s`` are reached (or ``max_s`` runs out). Every sample is kept. GPU steps are
timed with CUDA events on the step's stream and synchronised per iteration (per-request latency, no queueing);
synchronous steps with the host's monotonic clock.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from blockbench.backends.base import InferenceStep
from blockbench.hardware import MemoryProbe, gpu_state
from blockbench.metric_names import (
    LATENCY_COV,
    LATENCY_MEDIAN,
    LATENCY_MEDIAN_CI_HIGH,
    LATENCY_MEDIAN_CI_LOW,
    LATENCY_P99,
)
from blockbench.statistics import UNSTABLE_COV, median_ci

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkSettings:
    warmup_iters: int
    warmup_s: float
    min_iters: int
    min_s: float
    max_s: float
    batch_size: int = 1
    progress: bool = True


@dataclass(frozen=True)
class LatencyResult:
    """Per-iteration latencies in milliseconds plus the cold first inference."""

    samples_ms: np.ndarray
    first_inference_ms: float
    batch_size: int
    timer: str  # "cuda_event" or "host_clock"
    device_state: dict[str, float] = field(default_factory=dict)  # GPU clocks/temperature, start and end

    def summary(self) -> dict[str, float]:
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
            "first_inference_ms": self.first_inference_ms,
            "iterations": float(s.size),
            **self.device_state,
        }


class _Timer:
    """Times one call of a step: CUDA events on its stream, or the host clock for synchronous steps."""

    def __init__(self, step: InferenceStep) -> None:
        self.step = step
        self.stream = step.stream
        if self.stream is not None:
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
        self.kind = "cuda_event" if self.stream is not None else "host_clock"

    def __call__(self) -> float:
        if self.stream is None:
            t0 = time.perf_counter_ns()
            self.step()
            return (time.perf_counter_ns() - t0) / 1e6
        self.start.record(self.stream)
        self.step()
        self.end.record(self.stream)
        self.end.synchronize()
        return self.start.elapsed_time(self.end)


def _warm_up(timer: _Timer, settings: BenchmarkSettings) -> int:
    begin, done = time.monotonic(), 0
    while (done < settings.warmup_iters or time.monotonic() - begin < settings.warmup_s) and (
        time.monotonic() - begin < settings.max_s
    ):
        timer()
        done += 1
    return done


def _measure_loop(timer: _Timer, settings: BenchmarkSettings) -> list[float]:
    samples: list[float] = []
    begin = time.monotonic()
    # A bar only on a terminal: redirected to a log, its carriage returns glue the next line onto it.
    shown = settings.progress and sys.stderr.isatty()
    with tqdm(total=settings.min_iters, desc="measure", unit="it", disable=not shown, leave=False) as bar:
        while True:
            elapsed = time.monotonic() - begin
            if samples and elapsed >= settings.max_s:
                log.warning("benchmark: stopped at max_s=%.0f s after %d iterations", settings.max_s, len(samples))
                break
            if len(samples) >= settings.min_iters and elapsed >= settings.min_s:
                break
            samples.append(timer())
            if len(samples) <= settings.min_iters:
                bar.update(1)
    return samples


def measure(
    step: InferenceStep,
    settings: BenchmarkSettings,
    probe: MemoryProbe | None = None,
    on_first: Callable[[], None] | None = None,
) -> LatencyResult:
    """Run the cold call, the warm-up and the measurement loop on ``step``.

    ``on_first`` runs right after the cold call (the parity check, so a wrong engine fails before minutes of
    measurement); ``probe`` is sampled after warm-up and at the end; GPU clocks are read at both ends of the
    measurement.
    """
    timer = _Timer(step)
    with step.context():
        first = timer()
        if on_first is not None:
            on_first()
        warmed = _warm_up(timer, settings)
        log.info("benchmark: cold %.3f ms, then %d warm-up iterations", first, warmed)
        if probe is not None:
            probe.sample()
        state = {f"gpu_{k}_start": v for k, v in (gpu_state(probe.device) if probe else {}).items()}
        begin = time.monotonic()
        samples = _measure_loop(timer, settings)
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
    )
    stats = result.summary()
    log.info(
        "benchmark: %d iterations in %.1f s, median %.3f ms (95 %% CI %.3f-%.3f), p99 %.3f ms, CoV %.2f%% (%s)",
        len(samples),
        seconds,
        stats[LATENCY_MEDIAN],
        stats[LATENCY_MEDIAN_CI_LOW],
        stats[LATENCY_MEDIAN_CI_HIGH],
        stats[LATENCY_P99],
        100 * stats[LATENCY_COV],
        timer.kind,
    )
    if stats[LATENCY_COV] > UNSTABLE_COV:
        log.warning(
            "benchmark: CoV %.1f %% > %.1f %%: this latency is unstable (clocks, power and temperature are logged "
            "with the run); compare it only coarsely",
            100 * stats[LATENCY_COV],
            100 * UNSTABLE_COV,
        )
    return result
