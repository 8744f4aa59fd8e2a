"""The one sequence from a planned job to a runnable engine: model, complexity, [references], ONNX, engine, step.

Timed jobs, prebuilds and interleaved comparisons all start here; every product comes from the content caches
(:mod:`blockbench.build.cache`) when it was made before, keyed on what it depends on (:mod:`blockbench.job.materials`).
"""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from blockbench.axes.precisions import PRECISIONS
from blockbench.backends.base import Backend, BuildResult, InferenceStep, JobContext
from blockbench.build import quantize
from blockbench.build.cache import ContentCache
from blockbench.build.complexity import Complexity, measure_complexity
from blockbench.build.export import export_onnx
from blockbench.job.materials import complexity_material, export_material, quantized_material, reference_material
from blockbench.job.plan import JobPlan
from blockbench.job.stages import Stages
from blockbench.measure import metric_names as names
from blockbench.measure.hardware import set_numeric_mode
from blockbench.models import build_model, build_skeleton
from blockbench.recording.layout import INT8_ONNX_FILE, ONNX_FILE

log = logging.getLogger(__name__)

COMPLEXITY_FILE = "complexity.json"
REFERENCE_FILE = "reference.pt"
AGREEMENT_INPUTS = 16  # reduced and quantized precisions: inputs whose top class is compared with PyTorch FP32's


@dataclass
class Engine:
    """A job's built engine and what was made on the way: what timing, prebuilding and comparisons start from."""

    backend: Backend
    build: BuildResult
    step: InferenceStep | None  # None for a build-only job
    metrics: dict[str, float]
    tags: dict[str, str]
    reference: torch.Tensor | None = None  # PyTorch FP32's output for the timed input (parity)
    agreement: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (input, FP32 top-1 class)


@contextmanager
def built_engine(plan: JobPlan, stages: Stages, references: bool) -> Iterator[Engine]:
    """Build the job's engine; ``references``: also compute PyTorch FP32's outputs the engine is checked against
    (before the export, which may cast the model). The engine is released on exit."""
    config, ctx = plan.config, plan.ctx
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    set_numeric_mode(ctx.precision, ctx.cpu_threads)
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}

    with stages("model"):
        model = build_model(config, ctx.device)
    with stages("complexity"):
        complexity, complexity_hit = _cached_complexity(plan)
    metrics[names.PARAMS] = complexity.params
    metrics[names.MACS] = complexity.macs
    tags["complexity_counter"] = complexity.counter
    tags["complexity_cache"] = "hit" if complexity_hit else "miss"

    host_input = job_input(plan)
    reference = None
    agreement: list[tuple[torch.Tensor, torch.Tensor]] = []
    if ctx.build_only:
        log.info("build only: %s", plan.build_only_reason)
        tags["build_only"] = "true"
        tags["build_only_reason"] = plan.build_only_reason
    elif references:
        with stages("reference"):
            reference, agreement, reference_hit = _cached_references(plan, model, host_input)
        tags["reference_cache"] = "hit" if reference_hit else "miss"
    onnx_path: Path | None = None
    if plan.backend_class.needs_onnx:
        with stages("export"):
            start = time.perf_counter()
            onnx_path, cache_hit = _cached_export(plan, model, host_input)
            metrics[names.EXPORT_S] = time.perf_counter() - start
        tags["export_cache"] = "hit" if cache_hit else "miss"
    else:
        metrics[names.EXPORT_S] = 0.0
        tags["onnx_export"] = "skipped (backend runs the PyTorch module)"

    backend = plan.backend_class(config.backend, ctx)
    try:
        with stages("build"):
            start = time.perf_counter()
            build = backend.build(model.to(ctx.dtype), onnx_path)
            step = None if ctx.build_only else backend.step(host_input, config.benchmark.mode)
            metrics[names.BUILD_S] = time.perf_counter() - start
        tags.update(build.tags)
        metrics.update(build.metrics)
        yield Engine(backend, build, step, metrics, tags, reference, agreement)
    finally:
        backend.close()
        del model


@contextmanager
def open_step(plan: JobPlan, references: bool = False) -> Iterator[InferenceStep | None]:
    """The job's engine as an inference step, built by the job's own sequence without timing or tracking.

    What prebuilding and interleaved comparisons need; None for a build-only job; released on exit.
    ``references``: also fill the reference cache (PyTorch FP32's outputs) that the timed job reads.
    """
    try:
        with built_engine(plan, Stages(), references=references) as engine:
            yield engine.step
    finally:
        release_memory()


def prebuild_job(plan: JobPlan) -> None:
    """Execute a job without timing it: fill the caches its timed run reads (MAC count, references, ONNX export,
    engine).

    The engine is the backend's own cache (inductor's FX-graph and kernel caches for ``torch.compile``, the engine
    cache for TensorRT); building it means ``build`` plus the first call, which is where compilers do their work.
    """
    with open_step(plan, references=True) as step:
        if step is not None:
            step.output()


def release_memory() -> None:
    """After a job run in this process (often one that failed out of memory), free what it held."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _cached_complexity(plan: JobPlan) -> tuple[Complexity, bool]:
    """Params and MACs from the complexity cache, counted on the meta device (shapes only) on a miss."""
    config, ctx = plan.config, plan.ctx

    def count(folder: Path) -> None:
        result = measure_complexity(build_skeleton(config), ctx.resolution, config.complexity.counter)
        (folder / COMPLEXITY_FILE).write_text(json.dumps(dataclasses.asdict(result)))

    entry = ContentCache(ctx.cache_dir, "complexity").get_or_build(complexity_material(config, ctx), count)
    result = Complexity(**json.loads(entry.read_bytes(COMPLEXITY_FILE)))
    if entry.hit:
        log.info(
            "complexity: %.2f M params, %.2f GMACs (%s, cached)", result.params / 1e6, result.macs / 1e9, result.counter
        )
    return result, entry.hit


def _cached_references(
    plan: JobPlan, model: torch.nn.Module, host_input: torch.Tensor
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], bool]:
    """PyTorch FP32's output for the timed input and its top-1 classes for the agreement inputs (reduced and
    quantized precisions), from the reference cache: computed once per network, input and device (a prebuild
    computes them for the sweep's timed jobs); (output, [(input, class)], hit)."""
    ctx = plan.ctx
    inputs = agreement_inputs(plan) if ctx.precision != "fp32" else []

    def compute(folder: Path) -> None:
        classes = [reference_output(model, x, ctx).argmax(-1) for x in inputs]
        torch.save({"reference": reference_output(model, host_input, ctx), "classes": classes}, folder / REFERENCE_FILE)

    material = reference_material(plan.config, ctx, len(inputs))
    entry = ContentCache(ctx.cache_dir, "reference").get_or_build(material, compute)
    saved = torch.load(io.BytesIO(entry.read_bytes(REFERENCE_FILE)), weights_only=True)
    log.info("reference: cache %s (%s)", "hit" if entry.hit else "miss", entry.key[:12])
    return saved["reference"], list(zip(inputs, saved["classes"], strict=True)), entry.hit


def job_input(plan: JobPlan) -> torch.Tensor:
    """The seeded input image(s) in the run's dtype, on the host (pinned when the backend copies it per call)."""
    generator = torch.Generator().manual_seed(plan.config.seed + 1)
    host_input = torch.randn(plan.ctx.input_shape, generator=generator).to(plan.ctx.dtype)
    return host_input.pin_memory() if plan.ctx.pinned_memory else host_input


def _cached_export(plan: JobPlan, model: torch.nn.Module, host_input: torch.Tensor) -> tuple[Path, bool]:
    """The job's ONNX file in its work dir, exported or copied (hash-checked) from the export cache; (path, hit)."""
    config, ctx = plan.config, plan.ctx
    onnx_dtype = plan.backend_class.onnx_dtype(config.backend, ctx)
    sample = host_input.to(ctx.device, onnx_dtype)
    material = export_material(config, ctx, onnx_dtype)
    entry = ContentCache(ctx.cache_dir, "onnx").get_or_build(
        material, lambda folder: export_onnx(model.to(onnx_dtype), sample, folder / ONNX_FILE, config.export.opset)
    )
    log.info("export: cache %s (%s)", "hit" if entry.hit else "miss", entry.key[:12])
    entry.materialize(ctx.work_dir)
    if not PRECISIONS[ctx.precision].quantized:
        return ctx.work_dir / ONNX_FILE, entry.hit
    return _cached_quantized(plan, material, entry.hit)


def _cached_quantized(plan: JobPlan, export: dict, export_hit: bool) -> tuple[Path, bool]:
    """The INT8 QDQ graph of the job's export (:mod:`blockbench.build.quantize`), from its own cache; (path, hit)."""
    ctx = plan.ctx
    samples = ctx.calibration_samples

    def build(folder: Path) -> None:  # calibration inputs are drawn only on a miss
        inputs = quantize.calibration_inputs(ctx.input_shape, samples, ctx.seed)
        quantize.quantize_onnx(ctx.work_dir / ONNX_FILE, folder / INT8_ONNX_FILE, inputs)

    entry = ContentCache(ctx.cache_dir, "onnx_int8").get_or_build(quantized_material(export, samples), build)
    log.info(
        "quantize: INT8 cache %s (%s), %d calibration inputs", "hit" if entry.hit else "miss", entry.key[:12], samples
    )
    entry.materialize(ctx.work_dir)
    return ctx.work_dir / INT8_ONNX_FILE, export_hit and entry.hit


def reference_output(model: torch.nn.Module, host_input: torch.Tensor, ctx: JobContext) -> torch.Tensor:
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


def agreement_inputs(plan: JobPlan) -> list[torch.Tensor]:
    """Inputs of the job's shape and dtype, drawn from the seed apart from the timed and calibration inputs."""
    generator = torch.Generator().manual_seed(plan.config.seed + 3)
    shape, dtype = plan.ctx.input_shape, plan.ctx.dtype
    return [torch.randn(shape, generator=generator).to(dtype) for _ in range(AGREEMENT_INPUTS)]
