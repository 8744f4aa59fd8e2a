"""ONNX Runtime's CUDA provider end to end through ``run_job``: I/O bound to device buffers and timed with CUDA
events on the provider's own stream, with and without its CUDA graph, NHWC kernels, FP16 through an FP16 graph,
and the end-to-end split. Skipped where the installed onnxruntime has no CUDA provider (the CPU build)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from blockbench.axes.precisions import TOLERANCE as PARITY_TOLERANCE
from blockbench.measure import metric_names as names
from blockbench.recording.files import MEASURED_STATE_KEY
from blockbench.recording.layout import ENVIRONMENT_FILE
from tests.gpu import GPU, SMALL, Job

ort = pytest.importorskip("onnxruntime")
pytestmark = [
    *GPU,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason=f"onnxruntime {ort.__version__} has no CUDA provider (install onnxruntime-gpu: pip install -e '.[gpu]')",
    ),
]

ORT = ["backend=onnxruntime", *SMALL]


def check_on_the_cuda_provider(job: Job, precision: str) -> float:
    metrics, tags = job.metrics, job.tags
    assert tags["ort_providers"].split(",")[0] == "CUDAExecutionProvider", tags
    assert tags["parity"] == "pass" and metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE[precision], metrics
    median = metrics[names.LATENCY_MEDIAN]
    assert math.isfinite(median) and 0 < median < 100, median
    assert metrics[names.LATENCY_MEDIAN_CI_LOW] <= median <= metrics[names.LATENCY_MEDIAN_CI_HIGH]
    return median


@pytest.fixture(scope="module")
def compute_run(gpu_job: Callable[..., Job]) -> Job:
    return gpu_job(*ORT)


def test_the_cuda_provider_runs_with_io_bound_on_the_device_and_cuda_event_timing(compute_run: Job) -> None:
    check_on_the_cuda_provider(compute_run, "fp32")
    assert compute_run.tags["timer"] == "cuda_event"  # enqueued on the provider's stream, not waited for by the host
    assert "bound_by" in compute_run.tags


def test_cuda_graph_and_nhwc_in_fp16_are_what_the_provider_ran(gpu_job: Callable[..., Job]) -> None:
    job = gpu_job(*ORT, "precision=fp16", "backend.cuda_graph=true", "backend.prefer_nhwc=true")
    check_on_the_cuda_provider(job, "fp16")
    state = json.loads((job.work / ENVIRONMENT_FILE).read_text())[MEASURED_STATE_KEY]
    for option in ("enable_cuda_graph", "prefer_nhwc"):
        assert state[f"ort_CUDAExecutionProvider_{option}"] == "1", state


def test_end_to_end_on_the_cuda_provider_feeds_host_arrays_and_waits(
    gpu_job: Callable[..., Job], compute_run: Job
) -> None:
    compute = check_on_the_cuda_provider(compute_run, "fp32")
    job = gpu_job(*ORT, "benchmark.mode=end_to_end")
    end_to_end = check_on_the_cuda_provider(job, "fp32")
    assert job.tags["timer"] == "host_clock"  # session.run copies in and out itself and returns when done
    assert end_to_end > compute  # the copies are inside the request
