"""NVML's energy counter read around the per-request loop: energy per inference and a plausible mean power."""

from __future__ import annotations

from blockbench.measure import metric_names as names
from blockbench.measure.energy import MIN_WINDOW_S
from tests.gpu import GPU, Job

pytestmark = GPU

SANE_W = (20.0, 1000.0)  # an H100 SXM idles near 70 W and is capped at 700 W


def test_nvml_energy_per_inference_and_mean_power_are_sane(cuda_graph_run: Job) -> None:
    metrics, tags = cuda_graph_run.metrics, cuda_graph_run.tags
    assert tags["energy"] == "nvml", tags["energy"]  # the counter read, a window long enough, warm caches
    assert metrics[names.ENERGY_PER_INFERENCE] > 0
    assert SANE_W[0] <= metrics[names.ENERGY_MEAN_W] <= SANE_W[1], metrics[names.ENERGY_MEAN_W]
    assert metrics[names.ENERGY_WINDOW_S] >= MIN_WINDOW_S  # the window spans the loop's min_s=1.0
    # the window's energy over its inferences: mean power x the window's time per inference
    per_inference_s = metrics[names.ENERGY_WINDOW_S] / metrics["iterations"]
    expected_mj = 1000 * metrics[names.ENERGY_MEAN_W] * per_inference_s
    assert abs(metrics[names.ENERGY_PER_INFERENCE] / expected_mj - 1) < 1e-6
