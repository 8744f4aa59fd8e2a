"""The harness's CUDA-event timer (``measure/timer.py``) against bare loops of CUDA events on the same step: it adds
nothing to a per-request sample, and a per-request median of a GPU-bound CUDA graph is its back-to-back replay
time."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator

import pytest
import torch
from omegaconf import DictConfig

from blockbench.backends.base import InferenceStep
from blockbench.job.engine import open_step
from blockbench.job.plan import plan_job
from blockbench.measure.timer import Timer
from tests.gpu import GPU, HEAVY

pytestmark = GPU

WARMUP = 50
ROUNDS = 8  # Timer and bare loop alternate in rounds, so clock or temperature drift hits both alike
PER_ROUND = 40
REPLAYS = 100  # graph replays between two events in the back-to-back loop
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def graph_step(gpu_compose: Callable[..., DictConfig]) -> Iterator[InferenceStep]:
    """The GPU-bound network's CUDA-graph step, built in this process by the job's own sequence, warmed up."""
    plan = plan_job(gpu_compose(*HEAVY, "backend.mode=cuda_graph"))
    with open_step(plan) as step:
        assert step is not None and step.stream is not None
        assert getattr(step, "graph", None) is not None, "the CUDA graph capture failed"
        with step.context():
            for _ in range(WARMUP):
                step()
            step.stream.synchronize()
        yield step


def event_pairs(step: InferenceStep, n: int) -> list[float]:
    """Per request, by hand: an event before and after one call on the step's stream, waited for."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(n):
        start.record(step.stream)
        step()
        end.record(step.stream)
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return samples


def back_to_back(step: InferenceStep, replays: int) -> float:
    """Milliseconds per replay of the step's graph, ``replays`` enqueued between two events (no host gaps)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(step.stream)
    for _ in range(replays):
        step.graph.replay()  # type: ignore[attr-defined]
    end.record(step.stream)
    end.synchronize()
    return start.elapsed_time(end) / replays


def test_timer_samples_match_bare_event_pairs_around_each_request(graph_step: InferenceStep) -> None:
    timer = Timer(graph_step)
    assert timer.kind == "cuda_event"
    timed: list[float] = []
    bare: list[float] = []
    with graph_step.context():
        for _ in range(ROUNDS):
            timed += [timer() for _ in range(PER_ROUND)]
            bare += event_pairs(graph_step, PER_ROUND)
    ratio = statistics.median(timed) / statistics.median(bare)
    assert ratio == pytest.approx(1.0, abs=TOLERANCE), (statistics.median(timed), statistics.median(bare))


def test_timer_median_matches_back_to_back_replays_of_a_gpu_bound_graph(graph_step: InferenceStep) -> None:
    timer = Timer(graph_step)
    timed: list[float] = []
    replayed: list[float] = []
    with graph_step.context():
        for _ in range(ROUNDS):
            timed += [timer() for _ in range(PER_ROUND)]
            replayed.append(back_to_back(graph_step, REPLAYS))
    per_request, per_replay = statistics.median(timed), statistics.median(replayed)
    # GPU-bound, or the comparison would measure launch latency: the graph runs for a millisecond or more
    assert per_replay >= 1.0, f"the network is too light for this comparison: {per_replay:.3f} ms per replay"
    assert per_request / per_replay == pytest.approx(1.0, abs=TOLERANCE), (per_request, per_replay)
