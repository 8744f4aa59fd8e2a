"""``benchmark.mode=end_to_end`` on a GPU: each request's host->device copy, compute and device->host copy are timed
between CUDA events, and their medians add up to the end-to-end median."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from blockbench.measure import metric_names as names
from tests.gpu import GPU, HEAVY, Job

pytestmark = GPU

TOLERANCE = 0.05
RESOLUTION = 512  # HEAVY's: one FP32 input image of 3 x 512 x 512
INPUT_BYTES = 3 * RESOLUTION * RESOLUTION * 4
FASTEST_COPY_BYTES_PER_S = 100e9  # beyond any PCIe or C2C host link of today: a faster "copy" copied nothing


@pytest.fixture(scope="module")
def end_to_end_run(gpu_job: Callable[..., Job]) -> Job:
    return gpu_job(*HEAVY, "backend.mode=cuda_graph", "benchmark.mode=end_to_end")


def test_copy_in_compute_and_copy_out_medians_add_up_to_the_end_to_end_median(end_to_end_run: Job) -> None:
    metrics, tags = end_to_end_run.metrics, end_to_end_run.tags
    assert tags["benchmark_mode"] == "end_to_end" and tags["end_to_end_split"] == "h2d/compute/d2h", tags
    parts = [metrics[names.H2D_MEDIAN], metrics[names.COMPUTE_MEDIAN], metrics[names.D2H_MEDIAN]]
    assert all(part > 0 for part in parts), parts
    assert sum(parts) == pytest.approx(metrics[names.LATENCY_MEDIAN], rel=TOLERANCE), (parts, metrics)


def test_the_host_to_device_copy_really_moves_the_input(end_to_end_run: Job) -> None:
    metrics = end_to_end_run.metrics
    assert INPUT_BYTES / (metrics[names.H2D_MEDIAN] / 1000) < FASTEST_COPY_BYTES_PER_S, metrics[names.H2D_MEDIAN]
    assert metrics[names.COMPUTE_MEDIAN] > metrics[names.D2H_MEDIAN]  # 10 logits out, milliseconds of convolutions
