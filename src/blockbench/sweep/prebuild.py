"""Parallel engine builds before a sweep's timed jobs (``run.prebuild_workers=N``).

Compiling is CPU work that a GPU sweep otherwise pays job after job (``torch.compile`` takes 8-25 s per network on
the H100 machine, the measurement 1-4 s). With ``N`` workers, the sweep first builds every job's engine in ``N``
processes at once — MAC count, ONNX export, ``torch.compile`` / TensorRT engine, into the project's caches — and
only then times the jobs one at a time, as always, each loading its engine from the caches. Nothing is timed
while builders run, so the parallel builds cannot disturb a measurement.

* Only for Hydra's basic sweeper and launcher (jobs in this process). Ray and submitit jobs build on their own.
* Configs the experiment already has FINISHED are not built (a resumed sweep skips them), unless ``run.force``.
* A build that fails is logged and left to its job, which fails the same way and records it in MLflow.
* Each worker gets ``cpus / N`` inductor compile threads, so ``N`` workers do not oversubscribe the CPU.
* Choices a builder made by timing kernels (inductor's runtime autotuning) are dropped afterwards
  (:meth:`Backend.forget_prebuild_timings`): timed on a GPU shared with the other builders they are noisy, so each
  timed job makes them again, alone on the GPU.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from blockbench.backends.registry import backend_class
from blockbench.config.argv import quote_numeric_group_choices
from blockbench.config.paths import conf_dir
from blockbench.errors import ConfigError
from blockbench.job.engine import prebuild_job
from blockbench.job.plan import plan_job, run_name
from blockbench.job.worker import COMPILE_THREADS_ENV
from blockbench.recording import resume
from blockbench.tracking import Tracker

log = logging.getLogger(__name__)

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@dataclass
class PrebuildSummary:
    jobs: int
    built: int
    skipped: int
    failed: int
    seconds: float


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, in the order Hydra's basic sweeper launches them (same parser, same expansion)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()]
    arguments += quote_numeric_group_choices(list(config.hydra.overrides.task))
    overrides = OverridesParser.create().parse_overrides(arguments)
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def check_supported(config: DictConfig) -> None:
    """Refuse (before anything is written) a worker count below 0 or a sweeper / launcher prebuild cannot serve."""
    workers = config.run.prebuild_workers
    if workers < 0:
        raise ConfigError(f"run.prebuild_workers={workers!r} is not allowed; it must be >= 0")
    sweeper = OmegaConf.select(config, "hydra.sweeper._target_")
    launcher = OmegaConf.select(config, "hydra.launcher._target_")
    if sweeper != BASIC_SWEEPER or launcher != BASIC_LAUNCHER:
        raise ConfigError(
            f"run.prebuild_workers={workers} needs Hydra's basic sweeper and launcher (this sweep uses "
            f"{sweeper} and {launcher}); with a launcher that spreads jobs, each job builds its own engine: "
            "set run.prebuild_workers=0"
        )


def prebuild(config: DictConfig) -> PrebuildSummary:
    """Build the engines of every job of this sweep in ``run.prebuild_workers`` processes; return the counts."""
    workers = int(config.run.prebuild_workers)
    jobs = sweep_jobs(config)
    done: set[str] = set()
    if config.tracking.enabled and not config.run.force:
        done = Tracker(config.tracking.uri, config.tracking.experiment).finished_config_hashes()
    threads = max(1, (os.cpu_count() or 1) // workers)
    log.info("prebuild: %d jobs in %d processes (%d compile threads each)", len(jobs), workers, threads)
    counts = {"built": 0, "skipped": 0, "failed": 0}
    built_by: set[tuple[str, str]] = set()  # (backend, cache dir) pairs whose timing choices get dropped
    started, start = time.time(), time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="blockbench-prebuild-") as scratch,
        _environment(**{COMPILE_THREADS_ENV: str(threads)}),  # workers read it at import
        ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool,
    ):
        futures = [pool.submit(_build, overrides, f"{scratch}/{i}", done) for i, overrides in enumerate(jobs)]
        try:
            for n, future in enumerate(as_completed(futures), 1):
                result = future.result()
                counts[result.outcome] += 1
                if result.outcome == "failed":
                    log.warning(
                        "prebuild %d/%d: %s failed (its job will report it): %s",
                        n,
                        len(jobs),
                        result.name,
                        result.detail,
                    )
                else:
                    log.info("prebuild %d/%d: %s %s", n, len(jobs), result.name, result.detail)
                if result.backend:
                    built_by.add((result.backend, result.cache_dir))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for backend, cache_dir in sorted(built_by):
        backend_class(backend).forget_prebuild_timings(Path(cache_dir), since=started)
    summary = PrebuildSummary(jobs=len(jobs), seconds=time.perf_counter() - start, **counts)
    log.info(
        "prebuild: %d built, %d already finished, %d failed in %.0f s",
        summary.built,
        summary.skipped,
        summary.failed,
        summary.seconds,
    )
    return summary


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the spawned workers to inherit, and restore the parent's afterwards."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class _Built:
    outcome: str  # built | skipped | failed
    name: str
    detail: str
    backend: str = ""
    cache_dir: str = ""


def _init_worker() -> None:
    logging.basicConfig(level=logging.WARNING, format="[prebuild %(process)d] %(levelname)s %(name)s: %(message)s")


def _build(overrides: list[str], work_dir: str, done: set[str]) -> _Built:
    """In a worker: compose the job's config as Hydra would and build its engine."""
    name = " ".join(overrides)
    start = time.perf_counter()
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[*overrides, f"work_dir={work_dir}"])
        name = run_name(cfg)
        plan = plan_job(cfg)
        if done and resume.config_hash(resume.fingerprint(cfg, plan.ctx.device, plan.ctx.build_only)) in done:
            return _Built("skipped", name, "already FINISHED in the experiment")
        prebuild_job(plan)
    except Exception as exc:  # noqa: BLE001 - reported by the parent; the job itself raises it again
        return _Built("failed", name, f"{type(exc).__name__}: {exc}")
    detail = f"built in {time.perf_counter() - start:.1f} s"
    return _Built("built", name, detail, backend=cfg.backend.name, cache_dir=str(cfg.cache_dir))
