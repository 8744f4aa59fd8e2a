"""The timer the harness and the interleaved comparison use: one call of a step timed with CUDA events on its
stream or with the host clock, optionally after flushing the device's last-level cache."""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from blockbench.backends.base import InferenceStep


class Flusher:
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


class Timer:
    """Times ``depth`` calls of a step: CUDA events on its stream, or the host clock for synchronous steps.

    While ``detail`` is on (the per-request measurement), each call also keeps the host time spent issuing it
    (GPU steps: the enqueue time; the device runs behind) and, for steps with :class:`Phases`, the time of each
    part, between events recorded at the part boundaries (host clock for synchronous steps).
    """

    def __init__(self, step: InferenceStep, flush: Flusher | None = None) -> None:
        self.step = step
        self.stream = step.stream
        self.flush = flush
        self.phases = step.phases()
        self.detail = False
        self.enqueue_ms: list[float] = []
        self.phase_ms: list[tuple[float, float, float]] = []
        if self.stream is not None:
            self.start, self.after_h2d, self.after_compute, self.end = (
                torch.cuda.Event(enable_timing=True) for _ in range(4)
            )
        self.kind = "cuda_event" if self.stream is not None else "host_clock"

    def __call__(self, depth: int = 1) -> float:
        """Milliseconds per call, ``depth`` calls issued back to back (1: one request, waited for)."""
        if self.flush is not None:
            self.flush()
        split = self.detail and depth == 1 and self.phases is not None
        if self.stream is None:
            return self._host(depth, split)
        self.start.record(self.stream)
        issued = time.perf_counter_ns()
        if split:
            assert self.phases is not None
            self.phases.h2d()
            self.after_h2d.record(self.stream)
            self.phases.compute()
            self.after_compute.record(self.stream)
            self.phases.d2h()
        else:
            for _ in range(depth):
                self.step()
        issued = time.perf_counter_ns() - issued
        self.end.record(self.stream)
        self.end.synchronize()
        if self.detail and depth == 1:
            self.enqueue_ms.append(issued / 1e6)
        if split:
            self.phase_ms.append(
                (
                    self.start.elapsed_time(self.after_h2d),
                    self.after_h2d.elapsed_time(self.after_compute),
                    self.after_compute.elapsed_time(self.end),
                )
            )
        return self.start.elapsed_time(self.end) / depth

    def _host(self, depth: int, split: bool) -> float:
        if split:
            assert self.phases is not None
            marks = [time.perf_counter_ns()]
            for part in (self.phases.h2d, self.phases.compute, self.phases.d2h):
                part()
                marks.append(time.perf_counter_ns())
            h2d, compute, d2h = ((b - a) / 1e6 for a, b in itertools.pairwise(marks))
            self.phase_ms.append((h2d, compute, d2h))
            return (marks[-1] - marks[0]) / 1e6
        t0 = time.perf_counter_ns()
        for _ in range(depth):
            self.step()
        return (time.perf_counter_ns() - t0) / 1e6 / depth
