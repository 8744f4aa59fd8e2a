"""One job end to end: validate -> model -> complexity -> ONNX -> engine -> parity -> benchmark -> MLflow.

Everything that can be refused is refused before an MLflow run exists; once a run exists it always ends
FINISHED, FAILED or KILLED, with the failing stage recorded.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from blockbench.backends import Backend, JobContext, parse_settings
from blockbench.benchmark import BenchmarkSettings, LatencyResult, measure
from blockbench.complexity import measure_complexity
from blockbench.config import project_root, validate_core
from blockbench.environment import device_name, environment_record, git_commit
from blockbench.errors import ParityError
from blockbench.export import export_onnx
from blockbench.hardware import MemoryProbe, resolve_device, set_numeric_mode
from blockbench.models import build_model
from blockbench.tracking import Tracker, flatten

log = logging.getLogger(__name__)

# Largest allowed ||engine - reference|| / ||reference|| per precision (reference: PyTorch FP32, TF32 off).
PARITY_TOLERANCE = {"fp32": 1e-3, "tf32": 2e-2, "fp16": 5e-2, "bf16": 1e-1}


@dataclass
class JobPlan:
    """A validated job: everything decided, nothing built yet."""

    cfg: DictConfig
    ctx: JobContext
    backend_class: type[Backend]
    settings: Any


@dataclass
class JobResult:
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def plan_job(cfg: DictConfig) -> JobPlan:
    """Validate every value and this machine's ability to run the job; raise ConfigError otherwise."""
    validate_core(cfg)
    device = resolve_device(cfg.hardware.device)
    backend_class, settings = parse_settings(cfg.backend)
    ctx = JobContext(
        device=device,
        precision=cfg.precision.name,
        batch_size=cfg.benchmark.batch_size,
        resolution=cfg.resolution.size,
        work_dir=Path(cfg.work_dir),
        cache_dir=Path(cfg.cache_dir),
        cpu_threads=cfg.hardware.cpu_threads,
        pinned_memory=cfg.benchmark.pinned_memory and device.type == "cuda",
    )
    backend_class.check(settings, ctx)
    return JobPlan(cfg=cfg, ctx=ctx, backend_class=backend_class, settings=settings)


class _Stages:
    """Names the stage in progress (recorded on failure) and logs how long each took."""

    def __init__(self) -> None:
        self.current = "setup"

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current = name
        start = time.perf_counter()
        log.info("%s ...", name)
        yield
        log.info("%s: %.1f s", name, time.perf_counter() - start)


def run_name(cfg: DictConfig) -> str:
    return cfg.tracking.run_name or (
        f"{cfg.block.name}-{cfg.norm.name}-{cfg.act.name}-{cfg.resolution.size}-{cfg.precision.name}-{cfg.backend.name}"
    )


def run_job(cfg: DictConfig, parent_run_id: str | None = None) -> JobResult:
    """Run one job. Raises on failure (after ending its MLflow run as FAILED/KILLED)."""
    plan = plan_job(cfg)
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment) if cfg.tracking.enabled else None
    root = project_root()
    tags = {
        "backend": cfg.backend.name,
        "device_name": device_name(plan.ctx.device),
        "git_commit": git_commit(root),
        "mlflow.source.git.commit": git_commit(root).removesuffix("-dirty"),
        "status": "running",
        "block": cfg.block.name,
        "norm": cfg.norm.name,
        "act": cfg.act.name,
        "precision": cfg.precision.name,
        "resolution": str(cfg.resolution.size),
    }
    run_id = tracker.start_run(run_name(cfg), tags, parent_run_id) if tracker else None
    if tracker and run_id:
        tracker.log_params(run_id, flatten(OmegaConf.to_container(cfg, resolve=True)))  # type: ignore[arg-type]
    stages = _Stages()
    try:
        result = _execute(plan, stages)
        result.run_id = run_id
        if tracker and run_id:
            with stages("tracking"):
                tracker.log_metrics(run_id, result.metrics)
                tracker.set_tags(run_id, result.tags)
                _log_artifacts(tracker, run_id, plan)
                tracker.finish(run_id)
            _drop_logged_files(plan)
            log.info("tracking: run %s in %s — open with: %s", run_id, tracker.uri, tracker.ui_command())
        return result
    except KeyboardInterrupt as exc:
        if tracker and run_id:
            tracker.fail(run_id, exc, stages.current, status="KILLED")
        raise
    except BaseException as exc:
        if tracker and run_id:
            tracker.fail(run_id, exc, stages.current)
        raise


def _execute(plan: JobPlan, stages: _Stages) -> JobResult:
    cfg, ctx = plan.cfg, plan.ctx
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    set_numeric_mode(ctx.precision, ctx.cpu_threads)
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    (ctx.work_dir / "environment.json").write_text(json.dumps(environment_record(ctx.device, project_root()), indent=2))

    with stages("model"):
        model = build_model(cfg, ctx.device)
    with stages("complexity"):
        complexity = measure_complexity(model, ctx.resolution, cfg.complexity.counter)
    metrics["params_count"] = complexity.params
    metrics["macs"] = complexity.macs
    tags["complexity_counter"] = complexity.counter

    generator = torch.Generator().manual_seed(cfg.seed + 1)
    host_input = torch.randn(ctx.input_shape, generator=generator).to(ctx.dtype)
    if ctx.pinned_memory:
        host_input = host_input.pin_memory()
    with stages("reference"):
        reference = _reference_output(model, host_input, ctx)
    onnx_path: Path | None = None
    if plan.backend_class.needs_onnx:
        onnx_dtype = plan.backend_class.onnx_dtype(plan.settings, ctx)
        with stages("export"):
            exported = export_onnx(
                model.to(onnx_dtype),
                host_input.to(ctx.device, onnx_dtype),
                ctx.work_dir / "model.onnx",
                cfg.export.opset,
            )
        onnx_path = exported.path
        metrics["export_s"] = exported.seconds
    else:
        metrics["export_s"] = 0.0
        tags["onnx_export"] = "skipped (backend runs the PyTorch module)"

    probe = MemoryProbe(ctx.device)
    backend = plan.backend_class(plan.settings, ctx)
    try:
        with stages("build"):
            start = time.perf_counter()
            build = backend.build(model.to(ctx.dtype), onnx_path)
            step = backend.step(host_input, cfg.benchmark.mode)
            metrics["build_s"] = time.perf_counter() - start
        tags.update(build.tags)
        metrics.update(build.metrics)

        def check_parity() -> None:
            abs_err, rel_err = _parity(step.output(), reference)
            metrics["parity_max_abs_err"] = abs_err
            metrics["parity_rel_l2_err"] = rel_err
            tolerance = PARITY_TOLERANCE[ctx.precision]
            log.info("parity: max abs %.3g, relative L2 %.3g (tolerance %.0e)", abs_err, rel_err, tolerance)
            if cfg.benchmark.check_parity and not rel_err <= tolerance:
                raise ParityError(
                    f"{cfg.backend.name} output differs from PyTorch FP32: relative L2 error {rel_err:.3g} > "
                    f"{tolerance:.0e} allowed for precision={ctx.precision} (max abs {abs_err:.3g})"
                )

        with stages("benchmark"):
            latency = measure(step, _benchmark_settings(cfg), probe, on_first=check_parity)
        after = backend.after_benchmark(step)
        build.engine_files += after.engine_files
        tags.update(after.tags)
        metrics.update(after.metrics)
        (ctx.work_dir / "engine_files.json").write_text(json.dumps([str(p) for p in build.engine_files]))
    finally:
        backend.close()
    metrics.update(latency.summary())
    metrics["peak_memory_mb"] = probe.peak_mb
    tags["timer"] = latency.timer
    tags["benchmark_mode"] = cfg.benchmark.mode
    _write_latencies(latency, ctx.work_dir / "latencies.csv")
    return JobResult(run_id=None, metrics=metrics, tags=tags)


def _benchmark_settings(cfg: DictConfig) -> BenchmarkSettings:
    b = cfg.benchmark
    return BenchmarkSettings(
        warmup_iters=b.warmup_iters,
        warmup_s=b.warmup_s,
        min_iters=b.min_iters,
        min_s=b.min_s,
        max_s=b.max_s,
        batch_size=b.batch_size,
        progress=b.progress,
    )


def _reference_output(model: torch.nn.Module, host_input: torch.Tensor, ctx: JobContext) -> torch.Tensor:
    """PyTorch FP32 with TF32 off, on the job's device, fed the run-dtype input's exact values."""
    allow = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            model = model.to(ctx.device)
            out = model(host_input.float().to(ctx.device)).cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = allow
    return out


def _parity(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(max |out - ref|, ||out - ref|| / ||ref||); the L2 ratio is robust to a few large logits."""
    if output.shape != reference.shape:
        raise ParityError(f"engine output shape {tuple(output.shape)} != PyTorch's {tuple(reference.shape)}")
    if not torch.isfinite(output).all():
        raise ParityError("engine output contains NaN or Inf")
    diff = (output.double() - reference.double()).flatten()
    scale = float(reference.double().norm())
    rel = float(diff.norm()) / scale if scale > 0 else float(diff.norm())
    return float(diff.abs().max()), rel


def _write_latencies(latency: LatencyResult, path: Path) -> None:
    rows = np.column_stack([np.arange(latency.samples_ms.size), latency.samples_ms])
    np.savetxt(path, rows, delimiter=",", header="iteration,latency_ms", comments="", fmt=["%d", "%.6f"])


def _log_artifacts(tracker: Tracker, run_id: str, plan: JobPlan) -> None:
    cfg, work = plan.cfg, plan.ctx.work_dir
    (work / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    for name in ("config.yaml", "environment.json", "latencies.csv"):
        tracker.log_artifact(run_id, work / name)
    if (work / ".hydra").is_dir():
        tracker.log_artifact(run_id, work / ".hydra", ".hydra")
    if cfg.tracking.log_onnx and (work / "model.onnx").exists():
        for path in work.glob("model.onnx*"):
            tracker.log_artifact(run_id, path, "onnx")
    if cfg.tracking.log_engine:
        for name in json.loads((work / "engine_files.json").read_text()):
            if Path(name).exists():
                tracker.log_artifact(run_id, Path(name), "engine")


def _drop_logged_files(plan: JobPlan) -> None:
    """Large model files logged to MLflow are not kept twice; the job folder keeps logs, config, latencies."""
    cfg, work = plan.cfg, plan.ctx.work_dir
    if cfg.tracking.log_engine:
        for name in json.loads((work / "engine_files.json").read_text()):
            path = Path(name)
            if path.is_relative_to(work):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if cfg.tracking.log_onnx:
        for path in work.glob("model.onnx*"):
            path.unlink(missing_ok=True)
