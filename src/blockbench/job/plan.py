"""Plan a job: validate every value and this machine's ability to run it; no work, nothing written.

This is the one place that reads the composed ``DictConfig``; every stage below takes the typed
:class:`~blockbench.config.schema.RunConfig` and the resolved :class:`~blockbench.backends.base.JobContext`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from blockbench.backends import registry
from blockbench.backends.base import Backend, JobContext
from blockbench.config import preflight
from blockbench.config.schema import RunConfig, typed_config
from blockbench.errors import ConfigError
from blockbench.job.memory import check_memory
from blockbench.measure.hardware import resolve_device


@dataclass
class JobPlan:
    """A validated job: everything decided, nothing built yet.

    ``config`` is the typed config every stage reads; ``cfg`` the composed one it came from, kept for what is
    logged (the resolved YAML, the parameters, the resume fingerprint) so those stay as the user wrote them.
    """

    cfg: DictConfig
    config: RunConfig
    ctx: JobContext
    backend_class: type[Backend]
    build_only_reason: str = ""  # why the engine is built and logged but not run (``ctx.build_only``), else empty

    @property
    def name(self) -> str:
        return run_name(self.config)


def plan_job(cfg: DictConfig) -> JobPlan:
    """Validate every value and this machine's ability to run the job; raise ConfigError otherwise."""
    preflight.check_job(cfg)
    config = typed_config(cfg)
    device = resolve_device(config.hardware.device)
    check_memory(config, device)
    settings = config.backend
    backend_class = registry.backend_class(settings.name)
    ctx = JobContext(
        device=device,
        precision=config.precision.name,
        batch_size=config.benchmark.batch_size,
        resolution=config.resolution.size,
        work_dir=Path(config.work_dir),
        cache_dir=Path(config.cache_dir),
        cpu_threads=config.hardware.cpu_threads,
        pinned_memory=config.benchmark.pinned_memory and device.type == "cuda",
        seed=int(config.seed),
        calibration_samples=int(config.precision.calibration_samples),
    )
    reason = "run.build_only=true" if config.run.build_only else (backend_class.build_only_reason(settings, ctx) or "")
    if reason:
        ctx = dataclasses.replace(ctx, build_only=True)
    backend_class.check(settings, ctx)
    if config.benchmark.attribution and not ctx.build_only:
        refusal = backend_class.attribution_refusal(settings, ctx)
        if refusal:
            raise ConfigError(
                f"benchmark.attribution=true cannot run for backend={settings.name} here: {refusal}; "
                "set benchmark.attribution=false"
            )
    return JobPlan(cfg=cfg, config=config, ctx=ctx, backend_class=backend_class, build_only_reason=reason)


def run_name(config: RunConfig | DictConfig) -> str:
    """The run's name: its axes and engine (tensorrt_rtx names its runs apart from tensorrt's)."""
    backend = config.backend
    engine = getattr(backend, "library", None) or backend.name
    return config.tracking.run_name or (
        f"{config.block.name}-{config.norm.name}-{config.act.name}-{config.resolution.size}-"
        f"{config.precision.name}-{engine}"
    )
