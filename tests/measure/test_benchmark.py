"""The latency harness on a fake step: stopping rules, latency definitions, cache flushing, no thread beside it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from blockbench.backends.base import InferenceStep, Phases
from blockbench.errors import ConfigError
from blockbench.measure import harness as benchmark
from blockbench.measure import timer
from blockbench.measure.harness import PIPELINE_DEPTH, LatencyResult, measure
from blockbench.measure.settings import BenchmarkSettings


class FakeClock:
    """Monotonic time that only moves when the fake step runs (or the flush writes)."""

    def __init__(self) -> None:
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9


class FakeStep(InferenceStep):
    """A synchronous step whose n-th call takes ``costs_ms[n % len]`` on the fake clock."""

    def __init__(self, clock: FakeClock, costs_ms: list[float], cold_ms: float = 50.0) -> None:
        self.clock, self.costs, self.cold = clock, costs_ms, cold_ms
        self.calls = 0

    def __call__(self) -> None:
        cost = self.cold if self.calls == 0 else self.costs[(self.calls - 1) % len(self.costs)]
        self.clock.ns += int(cost * 1e6)
        self.calls += 1

    def output(self) -> torch.Tensor:
        return torch.zeros(1)


def settings(**changes: object) -> BenchmarkSettings:
    base = {"warmup_iters": 3, "warmup_s": 0.0, "min_iters": 40, "min_s": 0.0, "max_s": 60.0, "progress": False}
    return BenchmarkSettings(**{**base, **changes})  # type: ignore[arg-type]


def test_per_request_samples_are_the_step_times_and_the_cold_call_is_apart(clock: FakeClock) -> None:
    step = FakeStep(clock, [1.0, 3.0])
    result = measure(step, settings())
    assert result.first_inference_ms == pytest.approx(50.0)
    assert result.samples_ms.size == 40 and set(np.round(result.samples_ms, 6)) == {1.0, 3.0}
    summary = result.summary()
    assert summary["latency_ms_median"] == pytest.approx(2.0)
    assert summary["latency_ms_median_ci95_low"] == pytest.approx(1.0)
    assert summary["latency_ms_median_ci95_high"] == pytest.approx(3.0)
    assert "pipelined_ms_median" not in summary


def test_the_stopping_rule_needs_both_iterations_and_seconds(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [10.0]), settings(min_iters=5, min_s=1.0))
    assert result.samples_ms.size == 100  # 1 s of 10 ms inferences, though 5 were asked for


def test_max_s_stops_a_long_measurement_and_keeps_what_it_measured(clock: FakeClock) -> None:
    result = measure(FakeStep(clock, [100.0]), settings(min_iters=1000, max_s=2.0))
    assert 0 < result.samples_ms.size < 1000


def test_pipelined_timing_divides_a_back_to_back_batch(clock: FakeClock) -> None:
    step = FakeStep(clock, [1.0, 3.0])
    result = measure(step, settings(timing="both"))
    summary = result.summary()
    assert result.pipelined_ms.size == 10  # 40 inferences would be 2 batches: at least 10 for an interval
    assert summary["pipelined_ms_median"] == pytest.approx(2.0)  # a batch alternates 1 and 3 ms
    assert summary["pipelined_throughput_qps"] == pytest.approx(500.0)
    only = measure(FakeStep(clock, [2.0]), settings(timing="pipelined"))
    assert only.samples_ms.size == 0 and "latency_ms_median" not in only.summary()
    assert only.summary()["pipelined_ms_median"] == pytest.approx(2.0) and PIPELINE_DEPTH == 20


def test_a_flush_runs_before_each_timed_inference_and_outside_its_time(clock: FakeClock, monkeypatch) -> None:
    flushed_at: list[int] = []
    monkeypatch.setattr(benchmark, "last_level_cache_bytes", lambda device: 1024)

    class Recording(timer.Flusher):
        def __call__(self) -> None:
            super().__call__()
            flushed_at.append(clock.ns)
            clock.ns += 5_000_000  # the write takes 5 ms: it must not show in any sample

    monkeypatch.setattr(benchmark, "Flusher", Recording)
    step = FakeStep(clock, [1.0])
    result = measure(step, settings(cache="flushed", min_iters=10))
    assert len(flushed_at) == 10  # timed calls only: not the cold call, not the warm-up
    assert np.allclose(result.samples_ms, 1.0)
    assert result.summary()["cache_flush_mb"] == pytest.approx(2048 / 2**20)


def test_flushing_is_refused_where_the_cache_size_is_unknown(clock: FakeClock, monkeypatch) -> None:
    monkeypatch.setattr(benchmark, "last_level_cache_bytes", lambda device: 0)
    with pytest.raises(ConfigError, match=r"benchmark\.cache=flushed needs the size"):
        measure(FakeStep(clock, [1.0]), settings(cache="flushed"))


def test_the_flush_buffer_is_twice_the_cache_and_changes_every_time() -> None:
    flush = timer.Flusher(FakeStep(FakeClock(), [1.0]), 4096)
    flush()
    first = int(flush.buffer[0])
    flush()
    assert flush.nbytes == 8192 and flush.buffer.size == 8192 and int(flush.buffer[0]) != first


def test_the_timed_loop_starts_no_thread_and_the_window_hook_runs_once_before_it(clock: FakeClock) -> None:
    """Progress belongs to the parent process: with ``progress=True`` the loop still shows nothing and starts no
    thread (a progress bar's monitor thread would run beside the measurement)."""
    before = {t.ident for t in threading.enumerate()}
    seen: list[set[int | None]] = []
    opened: list[int] = []

    class Watched(FakeStep):
        def __call__(self) -> None:
            seen.append({t.ident for t in threading.enumerate()})
            super().__call__()

    step = Watched(clock, [10.0])
    result = measure(step, settings(min_iters=5, min_s=1.0, progress=True), on_window=lambda: opened.append(step.calls))
    assert result.samples_ms.size == 100 and all(threads == before for threads in seen)
    assert opened == [1 + 3]  # after the cold call and the warm-up, before the first timed call


def test_clock_event_reasons_are_spelled_out() -> None:
    from blockbench.measure.hardware import clock_event_names

    assert clock_event_names(0) == "none"
    assert clock_event_names(0x4 | 0x40) == "sw_power_cap+hw_thermal_slowdown"


class PhasedStep(FakeStep):
    """A synchronous end-to-end step: copy-in, compute and copy-out each take their own time on the fake clock."""

    def __init__(self, clock: FakeClock, h2d_ms: float, compute_ms: float, d2h_ms: float) -> None:
        super().__init__(clock, [h2d_ms + compute_ms + d2h_ms])
        self.parts = (h2d_ms, compute_ms, d2h_ms)

    def _advance(self, ms: float) -> None:
        self.clock.ns += int(ms * 1e6)

    def phases(self) -> Phases:
        h2d, compute, d2h = self.parts
        return Phases(lambda: self._advance(h2d), lambda: self._advance(compute), lambda: self._advance(d2h))


def test_end_to_end_parts_are_timed_each_and_add_up_to_the_latency(clock: FakeClock) -> None:
    result = measure(PhasedStep(clock, 0.5, 2.0, 0.25), settings(min_iters=30, timing="both"))
    assert result.phase_ms.shape == (30, 3)  # per request only: pipelined batches are not split
    summary = result.summary()
    assert summary["h2d_ms_median"] == pytest.approx(0.5) and summary["h2d_ms_p99"] == pytest.approx(0.5)
    assert summary["compute_ms_median"] == pytest.approx(2.0) and summary["d2h_ms_median"] == pytest.approx(0.25)
    assert summary["latency_ms_median"] == pytest.approx(2.75) and summary["pipelined_ms_median"] == pytest.approx(2.75)
    assert "enqueue_ms_median" not in summary  # a synchronous step has no enqueue time apart from its latency
    assert result.bounds() == []


def test_a_copy_slower_than_the_compute_is_copy_bound(clock: FakeClock) -> None:
    assert measure(PhasedStep(clock, 3.0, 2.0, 0.1), settings()).bounds() == ["h2d"]
    assert measure(PhasedStep(clock, 0.1, 2.0, 2.0), settings()).bounds() == ["d2h"]  # equal counts: trtexec's >=


@pytest.mark.parametrize(
    ("enqueue_ms", "expected"),
    [(0.79, []), (0.81, ["enqueue"]), (2.0, ["enqueue"])],
)
def test_enqueue_bound_above_80_percent_of_the_gpu_compute(enqueue_ms: float, expected: list[str]) -> None:
    samples = np.full(50, 1.0)
    result = LatencyResult(samples, 5.0, 1, "cuda_event", enqueue_ms=np.full(50, enqueue_ms))
    assert result.bounds() == expected
    assert result.summary()["enqueue_ms_median"] == pytest.approx(enqueue_ms)


def test_enqueue_bound_compares_with_the_compute_part_in_end_to_end_mode() -> None:
    phases = np.tile([0.2, 1.0, 0.1], (50, 1))  # latency 1.3 ms, compute 1.0 ms
    result = LatencyResult(np.full(50, 1.3), 5.0, 1, "cuda_event", enqueue_ms=np.full(50, 0.9), phase_ms=phases)
    assert result.bounds() == ["enqueue"]  # 0.9 > 0.8 x 1.0, though 0.9 < 0.8 x 1.3


def test_latencies_file_round_trip_and_the_older_layout(tmp_path) -> None:
    from blockbench.measure import latencies

    path = tmp_path / latencies.FILE
    latencies.write(path, [[("per_request", np.array([1.0, 2.0])), ("h2d", np.array([0.5]))]])
    text = path.read_text()
    assert latencies.read(text).tolist() == [1.0, 2.0] and latencies.read(text, "h2d").tolist() == [0.5]
    assert latencies.read(text, "pipelined").size == 0
    older = "sample,latency_ms\n0,1.5\n1,2.5\n"  # written before the timing column existed: per-request only
    assert latencies.read(older).tolist() == [1.5, 2.5] and latencies.read(older, "pipelined").size == 0
    one_trial = "timing,sample,latency_ms\nper_request,0,1.5\nh2d,0,0.5\n"  # before the trial column
    assert latencies.read_trials(one_trial)[0].tolist() == [1.5] and latencies.read(one_trial, "h2d").tolist() == [0.5]
    latencies.write(path, [[("per_request", np.array([1.0, 2.0]))], [("per_request", np.array([3.0]))]])
    trials = latencies.read_trials(path.read_text())
    assert [t.tolist() for t in trials] == [[1.0, 2.0], [3.0]]
    assert latencies.read(path.read_text()).tolist() == [1, 2, 3]
