"""The one latency harness every backend goes through (trtexec / MLPerf style stopping rule).

Cold first inference, then warm-up until both an iteration count and a duration are reached, then measurement
until both ``min_iters`` and ``min_s`` are reached (or ``max_s`` runs out). Every sample is kept. GPU steps are
timed with CUDA events on the step's stream, synchronous steps with the host's monotonic clock.

Two latency definitions (``benchmark.timing``): **per-request** -- each inference timed alone and waited for, as a
service answering one request at a time sees it (``latency_ms_*``); **pipelined** -- ``PIPELINE_DEPTH`` inferences
issued back to back between two timestamps, the time per inference when requests queue up (``pipelined_ms_*``).
Two cache states (``benchmark.cache``): **warm** -- whatever the previous inference left in the caches, as in a
tight loop; **flushed** -- a buffer of twice the device's last-level cache (a GPU's L2) written before each timed
inference (pipelined: before each batch), outside the timed region, as when other work shares the device.
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
from blockbench.errors import ConfigError
from blockbench.hardware import MemoryProbe, gpu_state, last_level_cache_bytes
from blockbench.metric_names import (
    LATENCY_COV,
    LATENCY_MEDIAN,
    LATENCY_MEDIAN_CI_HIGH,
    LATENCY_MEDIAN_CI_LOW,
    LATENCY_P99,
    PIPELINED_MEDIAN,
    PIPELINED_MEDIAN_CI_HIGH,
    PIPELINED_MEDIAN_CI_LOW,
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
    timing: str = "per_request"  # per_request | pipelined | both
    cache: str = "warm"  # warm | flushed


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
        if self.cache_bytes_flushed:
            stats["cache_flush_mb"] = self.cache_bytes_flushed / 2**20
        return stats

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


class _Flusher:
    """Writes a buffer twice the last-level cache's size: evicts what the previous inference left there.

    On a GPU the write is enqueued on the step's stream before the start event, so stream order puts it outside
    the timed region; on the CPU it runs before the host clock starts.
    """

    def __init__(self, step: InferenceStep, cache_bytes: int) -> None:
        self.stream = step.stream
        self.nbytes = 2 * cache_bytes
        if self.stream is not None:
            self.buffer: torch.Tensor | np.ndarray = torch.empty(
                self.nbytes, dtype=torch.uint8, device=self.stream.device
            )
        else:
            self.buffer = np.empty(self.nbytes, dtype=np.uint8)
        self.value = 0

    def __call__(self) -> None:
        self.value = (self.value + 1) % 256  # a new value each time: no write can be skipped as unchanged
        if isinstance(self.buffer, torch.Tensor):
            with torch.cuda.stream(self.stream):
                self.buffer.fill_(self.value)
        else:
            self.buffer.fill(self.value)


class _Timer:
    """Times ``depth`` calls of a step: CUDA events on its stream, or the host clock for synchronous steps."""

    def __init__(self, step: InferenceStep, flush: _Flusher | None = None) -> None:
        self.step = step
        self.stream = step.stream
        self.flush = flush
        if self.stream is not None:
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
        self.kind = "cuda_event" if self.stream is not None else "host_clock"

    def __call__(self, depth: int = 1) -> float:
        """Milliseconds per call, ``depth`` calls issued back to back (1: one request, waited for)."""
        if self.flush is not None:
            self.flush()
        if self.stream is None:
            t0 = time.perf_counter_ns()
            for _ in range(depth):
                self.step()
            return (time.perf_counter_ns() - t0) / 1e6 / depth
        self.start.record(self.stream)
        for _ in range(depth):
            self.step()
        self.end.record(self.stream)
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / depth


def _warm_up(timer: _Timer, settings: BenchmarkSettings) -> int:
    begin, done = time.monotonic(), 0
    while (done < settings.warmup_iters or time.monotonic() - begin < settings.warmup_s) and (
        time.monotonic() - begin < settings.max_s
    ):
        timer()
        done += 1
    return done


def _measure_loop(timer: _Timer, settings: BenchmarkSettings, depth: int = 1) -> list[float]:
    """Samples until both ``min_iters`` inferences and ``min_s`` are reached (or ``max_s``); each sample times
    ``depth`` inferences (then at least MIN_PIPELINED_SAMPLES samples). The progress bar counts inferences run."""
    samples: list[float] = []
    begin = time.monotonic()
    # A bar only on a terminal: redirected to a log, its carriage returns glue the next line onto it.
    shown = settings.progress and sys.stderr.isatty()
    label = "measure" if depth == 1 else "measure (pipelined)"
    with tqdm(total=settings.min_iters, desc=label, unit="it", disable=not shown, leave=False) as bar:
        while True:
            elapsed = time.monotonic() - begin
            if samples and elapsed >= settings.max_s:
                log.warning("benchmark: stopped at max_s=%.0f s after %d samples", settings.max_s, len(samples))
                break
            enough = len(samples) * depth >= settings.min_iters and len(samples) >= (
                MIN_PIPELINED_SAMPLES if depth > 1 else 1
            )
            if enough and elapsed >= settings.min_s:
                break
            samples.append(timer(depth))
            if bar.n + depth > bar.total:  # past min_iters (min_s not reached yet): the bar keeps counting
                bar.total = bar.n + depth
            bar.update(depth)
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
    flush = None
    if settings.cache == "flushed":
        device = step.stream.device if step.stream is not None else torch.device("cpu")
        cache_bytes = last_level_cache_bytes(device)
        if not cache_bytes:
            raise ConfigError(
                f"benchmark.cache=flushed needs the size of {device}'s last-level cache, which this machine does not "
                "report; use benchmark.cache=warm"
            )
        flush = _Flusher(step, cache_bytes)
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
        timer.flush = flush  # cold call and warm-up ran as they always do; only timed calls are flushed
        begin = time.monotonic()
        samples = _measure_loop(timer, settings) if settings.timing != "pipelined" else []
        pipelined = _measure_loop(timer, settings, PIPELINE_DEPTH) if settings.timing != "per_request" else []
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
    )
    stats = result.summary()
    if samples:
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
    if pipelined:
        log.info(
            "benchmark: pipelined, %d x %d inferences back to back: %.3f ms per inference (95 %% CI %.3f-%.3f)",
            len(pipelined),
            PIPELINE_DEPTH,
            stats[PIPELINED_MEDIAN],
            stats[PIPELINED_MEDIAN_CI_LOW],
            stats[PIPELINED_MEDIAN_CI_HIGH],
        )
    if samples and stats[LATENCY_COV] > UNSTABLE_COV:
        log.warning(
            "benchmark: CoV %.1f %% > %.1f %%: this latency is unstable (clocks, power and temperature are logged "
            "with the run); compare it only coarsely",
            100 * stats[LATENCY_COV],
            100 * UNSTABLE_COV,
        )
    return result
