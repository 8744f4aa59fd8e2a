"""Trials (``benchmark.trials``: each a fresh worker and engine) and the precision stopping rule
(``benchmark.target_precision``) on a CUDA graph."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from blockbench.measure import metric_names as names
from blockbench.recording.layout import RUN_FILE
from tests.gpu import GPU, SMALL, Job

pytestmark = GPU

TARGET = 0.005
MIN_S = 20.0  # far longer than the precision takes to reach on a CUDA graph (a few hundred samples of ~0.1 ms)


def test_two_trials_give_a_median_inside_the_interval_covering_them(gpu_job: Callable[..., Job]) -> None:
    job = gpu_job(*SMALL, "backend.mode=cuda_graph", "benchmark.trials=2")
    metrics = job.metrics
    assert metrics[names.TRIALS] == 2
    low, high = metrics[names.LATENCY_MEDIAN_TRIALS_CI_LOW], metrics[names.LATENCY_MEDIAN_TRIALS_CI_HIGH]
    assert low <= metrics[names.LATENCY_MEDIAN] <= high, (low, metrics[names.LATENCY_MEDIAN], high)
    run = json.loads((job.work / RUN_FILE).read_text())
    assert len(run["trial_metrics"]) == 2 and all(trial[names.TRIAL_MEDIAN] > 0 for trial in run["trial_metrics"])


@pytest.fixture(scope="module")
def precise_run(gpu_job: Callable[..., Job]) -> Job:
    return gpu_job(
        *SMALL,
        "backend.mode=cuda_graph",
        f"benchmark.target_precision={TARGET}",
        f"benchmark.min_s={MIN_S}",
        f"benchmark.max_s={2 * MIN_S}",
    )


def test_the_precision_rule_stops_the_loop_before_min_s(precise_run: Job) -> None:
    metrics, tags = precise_run.metrics, precise_run.tags
    assert tags[names.STOP_REASON_TAG] == "precision reached", tags[names.STOP_REASON_TAG]
    assert precise_run.wall_s < MIN_S  # the whole job, build included, took less than min_s
    assert metrics["iterations"] * metrics[names.LATENCY_MEDIAN] / 1000 < MIN_S / 2  # the timed window, far less
    assert metrics["iterations"] >= 100  # min_iters is still honoured


def test_the_precision_reached_is_the_one_asked_for(precise_run: Job) -> None:
    metrics = precise_run.metrics
    median = metrics[names.LATENCY_MEDIAN]
    low, high = metrics[names.LATENCY_MEDIAN_CI_LOW], metrics[names.LATENCY_MEDIAN_CI_HIGH]
    assert max(median - low, high - median) <= TARGET * median, (low, median, high)
