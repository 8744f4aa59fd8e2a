"""Fixtures of the GPU suite: compose a job's config with Hydra's compose API, run it through ``run_job`` (tracking
off, each job in its own worker process), share the expensive runs across modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests.gpu import GPU_BASE, SMALL, Job
from tests.helpers import CONF


@pytest.fixture(scope="session")
def gpu_compose(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., DictConfig]:
    """``compose(*overrides)``: ``conf/config.yaml`` with :data:`GPU_BASE`, a fresh job folder and the session's
    content cache (inductor's caches included). Hydra is initialised only while composing, so module- and
    session-scoped fixtures can call it."""
    cache = tmp_path_factory.mktemp("gpu-cache")

    def _compose(*overrides: str) -> DictConfig:
        work = tmp_path_factory.mktemp("gpu-job")
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                config_name="config", overrides=[f"work_dir={work}", f"cache_dir={cache}", *GPU_BASE, *overrides]
            )

    return _compose


@pytest.fixture(scope="session")
def gpu_job(gpu_compose: Callable[..., DictConfig]) -> Callable[..., Job]:
    """``run(*overrides)``: one job through ``run_job`` on the GPU; raises what the job raised."""
    from blockbench.job.run import run_job

    def _run(*overrides: str) -> Job:
        cfg = gpu_compose(*overrides)
        start = time.monotonic()
        result = run_job(cfg)
        return Job(dict(result.metrics), dict(result.tags), Path(cfg.work_dir), time.monotonic() - start)

    return _run


@pytest.fixture(scope="session")
def cuda_graph_run(gpu_job: Callable[..., Job]) -> Job:
    """The small network replayed in a CUDA graph, measured for at least 1 s (the energy counter's shortest exact
    window, ``energy.MIN_WINDOW_S``)."""
    return gpu_job(*SMALL, "backend.mode=cuda_graph", "benchmark.min_s=1.0")
