"""The Timer's CUDA-event path on the CPU: a fake stream and fake events whose elapsed times are scripted."""

from __future__ import annotations

import pytest
import torch

from blockbench.backends.base import InferenceStep, Phases
from blockbench.measure import timer as timer_module
from blockbench.measure.timer import Timer

NAMES = ("start", "after_h2d", "after_compute", "end")


class FakeStream:
    """Keeps the events recorded on it in order: waiting for one completes all those before it (stream order)."""

    device = torch.device("cuda", 0)

    def __init__(self) -> None:
        self.pending: list[FakeEvent] = []


class FakeEvent:
    """Records what is done to it in a shared log; elapsed_time answers from a script, only once both events are
    known complete (the later one waited for, on the stream both were recorded on)."""

    def __init__(self, log: list[tuple], script: dict[tuple[str, str], float], name: str) -> None:
        self.log, self.script, self.name = log, script, name
        self.done = False
        self.stream: FakeStream | None = None

    def record(self, stream: FakeStream) -> None:
        self.done, self.stream = False, stream
        stream.pending.append(self)
        self.log.append(("record", self.name, stream))

    def synchronize(self) -> None:
        assert self.stream is not None, f"{self.name} waited for before it was recorded"
        pending = self.stream.pending
        for event in pending[: pending.index(self) + 1]:
            event.done = True
        self.log.append(("synchronize", self.name))

    def elapsed_time(self, other: FakeEvent) -> float:
        assert self.done and other.done, f"{self.name}->{other.name} read before both completed"
        self.log.append(("elapsed", self.name, other.name))
        return self.script[(self.name, other.name)]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch):
    """Patches torch.cuda.Event: the Timer's four events, in creation order, get NAMES; returns (log, script)."""
    log: list[tuple] = []
    script: dict[tuple[str, str], float] = {}
    made: list[FakeEvent] = []

    def event(enable_timing: bool = False) -> FakeEvent:
        assert enable_timing
        made.append(FakeEvent(log, script, NAMES[len(made) % 4]))
        return made[-1]

    monkeypatch.setattr(timer_module.torch.cuda, "Event", event)
    return log, script


class GpuStep(InferenceStep):
    def __init__(self, log: list[tuple], phased: bool = False) -> None:
        self.stream = FakeStream()  # type: ignore[assignment]
        self.log, self.phased = log, phased

    def __call__(self) -> None:
        self.log.append(("step",))

    def phases(self) -> Phases | None:
        if not self.phased:
            return None
        return Phases(*(lambda part=part: self.log.append((part,)) for part in ("h2d", "compute", "d2h")))

    def output(self) -> torch.Tensor:
        return torch.zeros(1)


def test_a_gpu_step_is_timed_by_events_on_its_stream_around_the_inference(events) -> None:
    log, script = events
    step = GpuStep(log)
    script[("start", "end")] = 2.5
    timer = Timer(step)
    assert timer.kind == "cuda_event"
    assert timer() == 2.5
    assert log == [
        ("record", "start", step.stream),
        ("step",),
        ("record", "end", step.stream),
        ("synchronize", "end"),
        ("elapsed", "start", "end"),
    ]
    assert timer.enqueue_ms == [] and timer.phase_ms == []  # detail is off: nothing else kept


def test_back_to_back_calls_are_divided_by_the_depth(events) -> None:
    log, script = events
    script[("start", "end")] = 40.0
    assert Timer(GpuStep(log))(20) == pytest.approx(2.0)
    assert [e for e in log if e == ("step",)] == [("step",)] * 20
    assert log[0][:2] == ("record", "start") and log[-3][:2] == ("record", "end")


def test_detail_keeps_the_enqueue_time_and_a_flush_runs_before_the_start_event(events, monkeypatch) -> None:
    log, script = events
    script[("start", "end")] = 1.0
    ticks = iter([1_000_000, 1_250_000])  # the host clock around the issue: 0.25 ms
    monkeypatch.setattr(timer_module.time, "perf_counter_ns", lambda: next(ticks))
    timer = Timer(GpuStep(log), flush=lambda: log.append(("flush",)))  # type: ignore[arg-type]
    timer.detail = True
    assert timer() == 1.0
    assert [e[0] for e in log[:3]] == ["flush", "record", "step"]
    assert timer.enqueue_ms == [pytest.approx(0.25)]


def test_an_end_to_end_step_records_its_parts_between_events(events) -> None:
    log, script = events
    script.update(
        {
            ("start", "after_h2d"): 0.5,
            ("after_h2d", "after_compute"): 2.0,
            ("after_compute", "end"): 0.25,
            ("start", "end"): 2.75,
        }
    )
    step = GpuStep(log, phased=True)
    timer = Timer(step)
    timer.detail = True
    assert timer() == 2.75
    s = step.stream
    assert log[:8] == [
        ("record", "start", s),
        ("h2d",),
        ("record", "after_h2d", s),
        ("compute",),
        ("record", "after_compute", s),
        ("d2h",),
        ("record", "end", s),
        ("synchronize", "end"),
    ]
    assert all(e[0] == "elapsed" for e in log[8:])
    assert timer.phase_ms == [(0.5, 2.0, 0.25)] and len(timer.enqueue_ms) == 1


def test_phases_are_not_split_without_detail_or_when_pipelined(events) -> None:
    log, script = events
    script[("start", "end")] = 60.0
    timer = Timer(GpuStep(log, phased=True))
    assert timer() == 60.0  # detail off: the whole step, one call
    timer.detail = True
    assert timer(20) == pytest.approx(3.0)  # pipelined: back-to-back whole calls
    assert ("h2d",) not in log and log.count(("step",)) == 21
    assert timer.phase_ms == [] and timer.enqueue_ms == []
