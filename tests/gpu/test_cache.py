"""``benchmark.cache=flushed`` on a GPU: an L2-resident network measured after twice the L2 was written before each
inference is slower than the same network measured warm."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from blockbench.measure import metric_names as names
from tests.gpu import GPU, Job

pytestmark = GPU

# Small widths at 64x64, but weights that fill part of the L2 (4.7 M parameters, 19 MB in FP32; the H100's L2 is
# 50 MB), so a flushed inference must read them from HBM again while a warm one finds them in the L2.
L2_RESIDENT = ["block=vgg", "model.channels=[32,64,128,256,512]", "model.blocks_per_stage=1", "resolution.size=64"]


@pytest.fixture(scope="module")
def warm_and_flushed(gpu_job: Callable[..., Job]) -> tuple[Job, Job]:
    common = [*L2_RESIDENT, "backend.mode=cuda_graph"]
    return gpu_job(*common, "benchmark.cache=warm"), gpu_job(*common, "benchmark.cache=flushed")


def test_a_flushed_l2_makes_an_l2_resident_network_slower(warm_and_flushed: tuple[Job, Job]) -> None:
    warm, flushed = warm_and_flushed
    l2_mb = warm.metrics["last_level_cache_mb"]
    assert 4 * warm.metrics[names.PARAMS] < 0.5 * l2_mb * 2**20, "the weights would not stay in the L2"
    assert warm.tags["cache_state"] == "warm" and flushed.tags["cache_state"] == "flushed"
    assert flushed.metrics["cache_flush_mb"] == pytest.approx(2 * l2_mb)
    assert "cache_flush_mb" not in warm.metrics
    # the warm run's interval lies below the flushed run's median: slower by more than the noise
    assert warm.metrics[names.LATENCY_MEDIAN_CI_HIGH] < flushed.metrics[names.LATENCY_MEDIAN], (
        warm.metrics[names.LATENCY_MEDIAN],
        flushed.metrics[names.LATENCY_MEDIAN],
    )
