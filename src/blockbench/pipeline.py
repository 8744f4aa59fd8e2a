"""One job end to end: validate -> model -> complexity -> ONNX -> engine -> parity -> benchmark -> MLflow.

Everything that can be refused is refused before an MLflow run exists; once a run exists it always ends
FINISHED, FAILED or KILLED, with the failing stage recorded. In a sweep, a config the experiment already has
FINISHED (same config hash, :mod:`blockbench.resume`) is skipped; the ONNX export comes from a content-addressed
cache (:mod:`blockbench.cache`) when the same model was exported before.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from blockbench import (
    attribution,
    backends,
    faults,
    latencies,
    precisions,
    preflight,
    quantize,
    record,
    resume,
    statistics,
)
from blockbench import metric_names as names
from blockbench.backends import Backend, BuildResult, InferenceStep, JobContext
from blockbench.benchmark import LatencyResult, measure
from blockbench.cache import ContentCache, sha256_file
from blockbench.complexity import Complexity, measure_complexity
from blockbench.config import RunConfig, project_root, typed_config
from blockbench.energy import EnergyMeter, energy_tag
from blockbench.environment import device_name, environment_record, git_commit, gpu_facts, package_version
from blockbench.errors import BlockbenchError, ConfigError, ParityError
from blockbench.export import export_onnx
from blockbench.hardware import (
    MemoryProbe,
    clock_event_names,
    last_level_cache_bytes,
    resolve_device,
    set_numeric_mode,
)
from blockbench.memory import check_memory
from blockbench.models import build_model, build_skeleton
from blockbench.precisions import PRECISIONS
from blockbench.tracking import CONFIG_HASH_TAG, HEARTBEAT_TAG, STAGE_TAG, Tracker, flatten

log = logging.getLogger(__name__)


# Set on an exception that ended a job: the stage it escaped from (the summary and the run's error_stage agree).
FAILED_STAGE_ATTR = "blockbench_stage"
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"  # precision=int8: the QDQ graph the ONNX engines build from
# Sources an exported graph depends on beyond its config: a change to them must miss the export cache.
_EXPORT_SOURCES = ("models/*.py", "export.py")
_COMPLEXITY_SOURCES = ("models/*.py", "complexity.py")
COMPLEXITY_FILE = "complexity.json"


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


@dataclass
class JobResult:
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    skipped: str = ""  # why the job did not run (``run_id`` is then the run that already has it), else empty
    experiment_id: str | None = None  # the MLflow experiment holding the run
    failure: BlockbenchError | None = None  # measured and logged, then failed (benchmark.parity=fail)
    engine_files: list[Path] = field(default_factory=list)  # what the build produced, logged with the run


def plan_job(cfg: DictConfig) -> JobPlan:
    """Validate every value and this machine's ability to run the job; raise ConfigError otherwise."""
    preflight.check_job(cfg)
    config = typed_config(cfg)
    device = resolve_device(config.hardware.device)
    check_memory(cfg, device)
    settings = config.backend
    backend_class = backends.backend_class(settings.name)
    ctx = JobContext(
        device=device,
        precision=cfg.precision.name,
        batch_size=cfg.benchmark.batch_size,
        resolution=cfg.resolution.size,
        work_dir=Path(cfg.work_dir),
        cache_dir=Path(cfg.cache_dir),
        cpu_threads=cfg.hardware.cpu_threads,
        pinned_memory=cfg.benchmark.pinned_memory and device.type == "cuda",
        seed=int(cfg.seed),
        calibration_samples=int(cfg.precision.calibration_samples),
    )
    reason = "run.build_only=true" if cfg.run.build_only else (backend_class.build_only_reason(settings, ctx) or "")
    if reason:
        ctx = dataclasses.replace(ctx, build_only=True)
    backend_class.check(settings, ctx)
    if cfg.benchmark.attribution and not ctx.build_only:
        refusal = backend_class.attribution_refusal(settings, ctx)
        if refusal:
            raise ConfigError(
                f"benchmark.attribution=true cannot run for backend={cfg.backend.name} here: {refusal}; "
                "set benchmark.attribution=false"
            )
    return JobPlan(cfg=cfg, config=config, ctx=ctx, backend_class=backend_class, build_only_reason=reason)


class _Stages:
    """Names the stage in progress (recorded on failure) and logs how long each took.

    ``on_enter(name)`` runs as each stage starts: it records the stage on the MLflow run (so a run whose
    process is killed shows where) and is where test-only faults are injected.
    """

    def __init__(self, on_enter: Callable[[str], None] | None = None) -> None:
        self.current = "setup"
        self.on_enter = on_enter

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current = name
        if self.on_enter:
            self.on_enter(name)
        start = time.perf_counter()
        log.info("%s ...", name)
        done = threading.Event()
        if name in TICKING_STAGES:  # long and silent otherwise; never the benchmark, which a thread could perturb
            threading.Thread(target=_tick, args=(name, start, done), daemon=True).start()
        try:
            yield
        finally:
            done.set()
        log.info("%s: %.1f s", name, time.perf_counter() - start)


# Stages that can take many seconds without a word: their elapsed time is logged every TICK_S while they run.
TICKING_STAGES = ("export", "build")
TICK_S = 10.0


def _tick(name: str, start: float, done: threading.Event) -> None:
    while not done.wait(TICK_S):
        log.info("%s: %.0f s so far ...", name, time.perf_counter() - start)


def run_name(cfg: DictConfig) -> str:
    engine = cfg.backend.get("library") or cfg.backend.name  # tensorrt_rtx names its runs apart from tensorrt's
    return cfg.tracking.run_name or (
        f"{cfg.block.name}-{cfg.norm.name}-{cfg.act.name}-{cfg.resolution.size}-{cfg.precision.name}-{engine}"
    )


def run_job(
    cfg: DictConfig, parent_run_id: str | None = None, resume_sweep: bool = False, plan: JobPlan | None = None
) -> JobResult:
    """Run one job: :func:`plan_job`, :func:`_execute`, and record the result (the only part that talks to the
    tracking store). Raises on failure, after ending its MLflow run as FAILED/KILLED.

    ``resume_sweep``: a config the experiment already has FINISHED, or RUNNING in a live process, is not run
    again (unless ``run.force``); the result then has ``skipped`` set and the existing run's id. ``plan``: the
    job's :func:`plan_job` result, when the caller planned it already.
    """
    plan = plan or plan_job(cfg)
    config = plan.config
    tracker = Tracker(config.tracking.uri, config.tracking.experiment) if config.tracking.enabled else None
    root = project_root()
    tags = {
        "backend": config.backend.name,
        "device_name": device_name(plan.ctx.device),
        "git_commit": git_commit(root),
        "mlflow.source.git.commit": git_commit(root).removesuffix("-dirty"),
        "status": "running",
        "block": config.block.name,
        "norm": config.norm.name,
        "act": config.act.name,
        "precision": config.precision.name,
        "resolution": str(config.resolution.size),
    }
    if plan.ctx.device.type == "cuda":
        # The physical GPU this run measured (launchers pick it: Ray and Slurm set CUDA_VISIBLE_DEVICES per job),
        # in nvidia-smi's form, so runs that ran at the same time can be checked for never sharing one.
        uuid = gpu_facts(plan.ctx.device).get("gpu_uuid", "")
        tags["gpu_uuid"] = uuid if not uuid or uuid.startswith("GPU-") else f"GPU-{uuid}"
        tags["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    fingerprint = resume.fingerprint(cfg, plan.ctx.device, plan.ctx.build_only)
    run_id = None
    if tracker:
        claim = tracker.claim(
            resume.config_hash(fingerprint),
            run_name(cfg),
            tags,
            parent_run_id,
            skip_done=resume_sweep and not config.run.force,
            stale_after_s=config.run.stale_after_s,
        )
        if claim.skipped:
            log.info("skip: %s: %s (run.force=true runs it again)", run_name(cfg), claim.reason)
            return JobResult(run_id=claim.run_id, skipped=claim.reason)
        run_id = claim.run_id

    def enter_stage(name: str) -> None:
        if tracker and run_id:
            tracker.set_tags(run_id, {STAGE_TAG: name, HEARTBEAT_TAG: f"{time.time():.3f}"})
        faults.inject(name, cfg)

    stages = _Stages(enter_stage)
    started = time.time()
    run_file_written: list[Path] = []

    def write_run_file(status: str, result: JobResult | None, more_tags: dict[str, str]) -> None:
        """Tracking off: what the run would have logged, for ``python -m blockbench.record`` to log later."""
        config_tags = {**tags, CONFIG_HASH_TAG: resume.config_hash(fingerprint), **more_tags, "status": status.lower()}
        params = flatten(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        (plan.ctx.work_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        metrics = result.metrics if result else {}
        files = result.engine_files if result else None
        path = record.write_run_file(
            plan.ctx.work_dir, run_name(cfg), config_tags, params, metrics, status, started, fingerprint, files
        )
        run_file_written.append(path)
        log.info("tracking off: the run is kept in %s (log it later: python -m blockbench.record <folder>)", path)

    try:
        if tracker and run_id:
            tracker.keep_alive(run_id, config.run.heartbeat_s)
            tracker.log_params(run_id, flatten(OmegaConf.to_container(cfg, resolve=True)))  # type: ignore[arg-type]
            tracker.log_text(run_id, json.dumps(fingerprint, indent=2, sort_keys=True), "fingerprint.json")
        result = _execute(plan, stages)
        result.run_id = run_id
        result.experiment_id = tracker.experiment_id if tracker else None
        if tracker and run_id:
            with stages("tracking"):
                tracker.log_metrics(run_id, result.metrics)
                tracker.set_tags(run_id, result.tags)
                stored = log_run_files(tracker, run_id, cfg, plan.ctx.work_dir, result.engine_files)
                tracker.log_metrics(run_id, {names.ARTIFACT_MB: stored / 2**20})
                if result.failure is None:  # else everything is logged, and the run ends FAILED below
                    tracker.finish(run_id)
            result.metrics[names.ARTIFACT_MB] = stored / 2**20
            _drop_logged_files(plan, result.engine_files)
            log.info("tracking: run %s in %s — open with: %s", run_id, tracker.display_uri, tracker.ui_command())
        if tracker is None:
            write_run_file("FAILED" if result.failure else "FINISHED", result, result.tags)
        if result.failure is not None:
            stages.current = result.failure.stage
            raise result.failure
        return result
    except BaseException as exc:
        with suppress(AttributeError, TypeError):  # an exception type without instance attributes
            setattr(exc, FAILED_STAGE_ATTR, stages.current)
        if tracker is None and not run_file_written:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            with suppress(OSError):
                error = {"error": f"{type(exc).__name__}: {exc}"[:5000], "error_stage": stages.current}
                write_run_file(status, None, error)
        if tracker and run_id:
            tracker.fail(
                run_id, exc, stages.current, status="KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            )
        _release_memory()
        raise


def _release_memory() -> None:
    """After a failed job (often out of memory), free what it held so the sweep's next job starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class _Engine:
    """A job's built engine and what was made on the way: what timing, prebuilding and comparisons all start from."""

    backend: Backend
    build: BuildResult
    step: InferenceStep | None  # None for a build-only job
    metrics: dict[str, float]
    tags: dict[str, str]
    reference: torch.Tensor | None = None  # PyTorch FP32's output for the timed input (parity)
    agreement: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (input, FP32 top-1 class)


@contextmanager
def _built_engine(plan: JobPlan, stages: _Stages, references: bool) -> Iterator[_Engine]:
    """The one job sequence up to a runnable engine: model, complexity, [references], ONNX, engine, step.

    Every product comes from the content caches when it was made before. ``references``: also compute PyTorch
    FP32's outputs the engine is checked against (before the export, which may cast the model). The engine is
    released on exit.
    """
    config, ctx = plan.config, plan.ctx
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    set_numeric_mode(ctx.precision, ctx.cpu_threads)
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    (ctx.work_dir / "environment.json").write_text(json.dumps(environment_record(ctx.device, project_root()), indent=2))

    with stages("model"):
        model = build_model(plan.cfg, ctx.device)
    with stages("complexity"):
        complexity, complexity_hit = _cached_complexity(plan)
    metrics[names.PARAMS] = complexity.params
    metrics[names.MACS] = complexity.macs
    tags["complexity_counter"] = complexity.counter
    tags["complexity_cache"] = "hit" if complexity_hit else "miss"

    host_input = _job_input(plan)
    reference = None
    agreement: list[tuple[torch.Tensor, torch.Tensor]] = []
    if ctx.build_only:
        log.info("build only: %s", plan.build_only_reason)
        tags["build_only"] = "true"
        tags["build_only_reason"] = plan.build_only_reason
    elif references:
        with stages("reference"):
            reference = _reference_output(model, host_input, ctx)
            inputs = _agreement_inputs(plan) if ctx.precision != "fp32" else []
            agreement = [(x, _reference_output(model, x, ctx).argmax(-1)) for x in inputs]
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
        yield _Engine(backend, build, step, metrics, tags, reference, agreement)
    finally:
        backend.close()
        del model


def _execute(plan: JobPlan, stages: _Stages) -> JobResult:
    """Build and measure one planned job; returns metrics, tags and files, and knows nothing of tracking."""
    config, ctx = plan.config, plan.ctx
    probe = MemoryProbe(ctx.device)
    parity_failure: list[ParityError] = []
    with _built_engine(plan, stages, references=True) as engine:
        metrics, tags, step = engine.metrics, engine.tags, engine.step
        if step is None:  # build-only: the engine is the result; nothing is run, so no parity and no latency
            return JobResult(run_id=None, metrics=metrics, tags=tags, engine_files=engine.build.engine_files)

        def check_parity() -> None:
            """Right after the cold call: the error is recorded, and the latency is measured whatever it is."""
            abs_err, rel_err = _parity(step.output(), engine.reference)
            metrics[names.PARITY_MAX_ABS] = abs_err
            metrics[names.PARITY_REL_L2] = rel_err
            tolerance = precisions.TOLERANCE[ctx.precision]
            log.info("parity: max abs %.3g, relative L2 %.3g (tolerance %.0e)", abs_err, rel_err, tolerance)
            tags["parity"] = "pass" if rel_err <= tolerance else "fail"
            if tags["parity"] == "fail":
                message = (
                    f"{config.backend.name} output differs from PyTorch FP32: relative L2 error {rel_err:.3g} > "
                    f"{tolerance:.0e} allowed for precision={ctx.precision} (max abs {abs_err:.3g}); the latency is "
                    f"measured and logged anyway (benchmark.parity={config.benchmark.parity})"
                )
                log.warning("parity: %s", message)
                parity_failure.append(ParityError(message))

        meter = EnergyMeter(ctx.device)
        with stages("benchmark"):
            latency = measure(step, config.benchmark, probe, on_first=check_parity, meter=meter)
        after = engine.backend.after_benchmark(step)
        engine_files = engine.build.engine_files + after.engine_files
        tags.update(after.tags)
        metrics.update(after.metrics)
        if engine.agreement:  # after timing: the step's input buffer is overwritten
            with stages("agreement"):
                agree = [(step.run_on(x).argmax(-1) == classes).float() for x, classes in engine.agreement]
            share = float(torch.cat(agree).mean())
            metrics[names.TOP1_AGREEMENT] = share
            log.info("parity: top-1 agreement with PyTorch FP32 %.3f over %d inputs", share, len(torch.cat(agree)))
        tags["energy"] = energy_tag(meter, latency.energy, config.benchmark.cache)
        if config.benchmark.attribution:
            with stages("attribution"):
                found = engine.backend.attribute(step, attribution.ITERATIONS)
            attribution.write(found, ctx.work_dir / attribution.FILE)
            summary = latency.summary()
            metrics.update(found.metrics(summary.get(names.LATENCY_MEDIAN) or summary.get(names.PIPELINED_MEDIAN, 0.0)))
            tags["attribution"] = found.method
            log.info(
                "attribution: %.3f ms attributed (%.0f %% of the median latency), profiled inferences %.3f ms; %s",
                found.total_ms,
                100 * metrics[names.ATTR_COVERAGE],
                found.profiled_ms,
                ", ".join(f"{name} {ms:.3f}" for name, ms in list(found.by_class().items())[:6]),
            )
    metrics.update(latency.summary())
    metrics["peak_memory_mb"] = probe.peak_mb
    tags["timer"] = latency.timer
    tags["benchmark_mode"] = config.benchmark.mode
    tags["latency_ci"] = statistics.METHOD
    tags["timing"] = config.benchmark.timing
    tags["cache_state"] = config.benchmark.cache
    if config.benchmark.mode == "end_to_end":
        tags["end_to_end_split"] = (
            "h2d/compute/d2h"
            if latency.phase_ms.size
            else "none (no copies of its own: CPU, or copied inside one call)"
        )
    if latency.enqueue_ms.size:  # a GPU step timed per request: trtexec's rules can be applied
        tags["bound_by"] = ",".join(latency.bounds()) or "gpu_compute"
    metrics["last_level_cache_mb"] = last_level_cache_bytes(ctx.device) / 2**20  # 0: the machine does not say
    if metrics.get(names.LATENCY_COV, 0.0) > statistics.UNSTABLE_COV:
        cov, limit = 100 * metrics[names.LATENCY_COV], 100 * statistics.UNSTABLE_COV
        ends = [
            metrics[key] for key in ("gpu_clock_event_reasons_start", "gpu_clock_event_reasons_end") if key in metrics
        ]
        why = f"; GPU clock events {clock_event_names(ends[0])} -> {clock_event_names(ends[-1])}" if ends else ""
        tags["latency_unstable"] = f"CoV {cov:.1f} % > {limit:.1f} %{why}"
    _write_latencies(latency, ctx.work_dir / latencies.FILE)
    failure = parity_failure[0] if parity_failure and config.benchmark.parity == "fail" else None
    return JobResult(run_id=None, metrics=metrics, tags=tags, failure=failure, engine_files=engine_files)


@contextmanager
def open_step(plan: JobPlan) -> Iterator[InferenceStep | None]:
    """The job's engine as an inference step, built by the job's own sequence without timing or tracking.

    What prebuilding and interleaved comparisons need; None for a build-only job; released on exit.
    """
    try:
        with _built_engine(plan, _Stages(), references=False) as engine:
            yield engine.step
    finally:
        _release_memory()


def prebuild_job(cfg: DictConfig) -> None:
    """Execute a job without timing it: fill the caches its timed run reads (MAC count, ONNX export, engine).

    The engine is the backend's own cache (inductor's FX-graph and kernel caches for ``torch.compile``, the engine
    cache for TensorRT); building it means ``build`` plus the first call, which is where compilers do their work.
    Sweeps run this for many jobs in parallel processes (:mod:`blockbench.prebuild`) before timing them one by one.
    """
    with open_step(plan_job(cfg)) as step:
        if step is not None:
            step.output()


def _sources_sha256(patterns: tuple[str, ...]) -> str:
    """SHA-256 over this package's source files matching ``patterns``: a code change must miss the cache."""
    sources = hashlib.sha256()
    package = Path(__file__).parent
    for pattern in patterns:
        for path in sorted(package.glob(pattern)):
            sources.update(path.read_bytes())
    return sources.hexdigest()


def _model_material(cfg: DictConfig) -> dict[str, Any]:
    return {
        "block": cfg.block.name,
        "norm": cfg.norm.name,
        "act": cfg.act.name,
        "channels": list(cfg.model.channels),
        "blocks_per_stage": cfg.model.blocks_per_stage,
        "num_classes": cfg.model.num_classes,
    }


def export_cache_material(cfg: DictConfig, ctx: JobContext, onnx_dtype: torch.dtype) -> dict[str, Any]:
    """What an exported graph depends on: the model config, input shape and type, opset, exporter versions."""
    return {
        "kind": "onnx-export",
        **_model_material(cfg),
        "seed": cfg.seed,
        "resolution": ctx.resolution,
        "batch": ctx.batch_size,
        "dtype": str(onnx_dtype),
        "opset": cfg.export.opset,
        "device_type": ctx.device.type,
        "versions": {name: package_version(name) for name in ("torch", "onnx", "onnxscript")},
        "sources_sha256": _sources_sha256(_EXPORT_SOURCES),
    }


def complexity_cache_material(cfg: DictConfig, ctx: JobContext) -> dict[str, Any]:
    """What a parameter / MAC count depends on: the architecture, resolution, counter and its version."""
    return {
        "kind": "complexity",
        **_model_material(cfg),
        "resolution": ctx.resolution,
        "counter": cfg.complexity.counter,
        "versions": {name: package_version(name) for name in ("torch", "thop", "ultralytics-thop", "ptflops")},
        "sources_sha256": _sources_sha256(_COMPLEXITY_SOURCES),
    }


def _cached_complexity(plan: JobPlan) -> tuple[Complexity, bool]:
    """Params and MACs from the complexity cache, counted on the meta device (shapes only) on a miss."""
    cfg, ctx = plan.cfg, plan.ctx

    def count(folder: Path) -> None:
        result = measure_complexity(build_skeleton(cfg), ctx.resolution, cfg.complexity.counter)
        (folder / COMPLEXITY_FILE).write_text(json.dumps(dataclasses.asdict(result)))

    entry = ContentCache(ctx.cache_dir, "complexity").get_or_build(complexity_cache_material(cfg, ctx), count)
    result = Complexity(**json.loads(entry.read_bytes(COMPLEXITY_FILE)))
    if entry.hit:
        log.info(
            "complexity: %.2f M params, %.2f GMACs (%s, cached)", result.params / 1e6, result.macs / 1e9, result.counter
        )
    return result, entry.hit


def _job_input(plan: JobPlan) -> torch.Tensor:
    """The seeded input image(s) in the run's dtype, on the host (pinned when the backend copies it per call)."""
    generator = torch.Generator().manual_seed(plan.cfg.seed + 1)
    host_input = torch.randn(plan.ctx.input_shape, generator=generator).to(plan.ctx.dtype)
    return host_input.pin_memory() if plan.ctx.pinned_memory else host_input


def _cached_export(plan: JobPlan, model: torch.nn.Module, host_input: torch.Tensor) -> tuple[Path, bool]:
    """The job's ONNX file in its work dir, exported or copied (hash-checked) from the export cache; (path, hit)."""
    cfg, ctx = plan.cfg, plan.ctx
    onnx_dtype = plan.backend_class.onnx_dtype(plan.config.backend, ctx)
    sample = host_input.to(ctx.device, onnx_dtype)
    cache = ContentCache(ctx.cache_dir, "onnx")
    material = export_cache_material(cfg, ctx, onnx_dtype)
    entry = cache.get_or_build(
        material, lambda folder: export_onnx(model.to(onnx_dtype), sample, folder / ONNX_FILE, cfg.export.opset)
    )
    log.info("export: cache %s (%s)", "hit" if entry.hit else "miss", entry.key[:12])
    entry.materialize(ctx.work_dir)
    if not PRECISIONS[ctx.precision].quantized:
        return ctx.work_dir / ONNX_FILE, entry.hit
    return _cached_quantized(plan, material, entry.hit)


def _cached_quantized(plan: JobPlan, export_material: dict[str, Any], export_hit: bool) -> tuple[Path, bool]:
    """The INT8 QDQ graph of the job's export (:mod:`blockbench.quantize`), from its own cache; (path, hit)."""
    ctx = plan.ctx
    samples = ctx.calibration_samples
    material = {
        "kind": "onnx-int8",
        "export": export_material,
        "recipe": quantize.SETTINGS,
        "calibration_samples": samples,
        "versions": {"onnxruntime": package_version("onnxruntime")},
        "sources_sha256": _sources_sha256(("quantize.py",)),
    }

    def build(folder: Path) -> None:  # calibration inputs are drawn only on a miss
        inputs = quantize.calibration_inputs(ctx.input_shape, samples, ctx.seed)
        quantize.quantize_onnx(ctx.work_dir / ONNX_FILE, folder / INT8_ONNX_FILE, inputs)

    entry = ContentCache(ctx.cache_dir, "onnx_int8").get_or_build(material, build)
    log.info(
        "quantize: INT8 cache %s (%s), %d calibration inputs", "hit" if entry.hit else "miss", entry.key[:12], samples
    )
    entry.materialize(ctx.work_dir)
    return ctx.work_dir / INT8_ONNX_FILE, export_hit and entry.hit


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


AGREEMENT_INPUTS = 16  # reduced and quantized precisions: inputs whose top class is compared with PyTorch FP32's


def _agreement_inputs(plan: JobPlan) -> list[torch.Tensor]:
    """Inputs of the job's shape and dtype, drawn from the seed apart from the timed and calibration inputs."""
    generator = torch.Generator().manual_seed(plan.cfg.seed + 3)
    shape, dtype = plan.ctx.input_shape, plan.ctx.dtype
    return [torch.randn(shape, generator=generator).to(dtype) for _ in range(AGREEMENT_INPUTS)]


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
    """Every kept sample, one series per measurement (:mod:`blockbench.latencies`)."""
    series = [("per_request", latency.samples_ms), ("pipelined", latency.pipelined_ms), ("enqueue", latency.enqueue_ms)]
    series += [(part, latency.phase_ms[:, col]) for col, part in enumerate(("h2d", "compute", "d2h"))]
    latencies.write(path, series)


def log_run_files(tracker: Tracker, run_id: str, cfg: DictConfig, work: Path, engine_files: list[Path]) -> int:
    """Log a run's files from its work folder (now, or later by :mod:`blockbench.record`); returns the bytes this
    run added to the artifact store."""
    (work / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    kept = ("config.yaml", "environment.json", latencies.FILE, attribution.FILE)
    small = [work / name for name in kept if (work / name).exists()]
    for path in small:  # a build-only run has no latencies
        tracker.log_artifact(run_id, path)
    added = sum(path.stat().st_size for path in small)
    if (work / ".hydra").is_dir():
        tracker.log_artifact(run_id, work / ".hydra", ".hydra")
    if cfg.tracking.log_onnx:
        for path in _onnx_files(work):
            added += _log_model_file(tracker, run_id, path, "onnx", cfg.tracking)
    if cfg.tracking.log_engine:
        for path in engine_files:
            if path.is_file():
                added += _log_model_file(tracker, run_id, path, "engine", cfg.tracking)
            elif path.is_dir():
                tracker.log_artifact(run_id, path, "engine")
                added += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return added


def _onnx_files(work: Path) -> list[Path]:
    """The exported graph and, for int8, its quantized form, with any external-data side files."""
    return sorted(path for name in (ONNX_FILE, INT8_ONNX_FILE) for path in work.glob(f"{name}*"))


CONTENT_TAG = "content_sha256"


def _log_model_file(tracker: Tracker, run_id: str, path: Path, folder: str, tracking: DictConfig) -> int:
    """Log an ONNX or engine file, or a reference to the FINISHED run that stored the same bytes; bytes added.

    Files under ``tracking.large_file_mb`` are always copied: a reference would save little.
    """
    keep = tracking.keep_model_files
    size = path.stat().st_size
    if size < tracking.large_file_mb * 2**20:
        tracker.log_artifact(run_id, path, folder)
        return size
    digest = sha256_file(path)
    tag = f"{CONTENT_TAG}/{folder}/{path.name}"
    holder = tracker.run_holding(tag, digest) if keep == "first_per_content" else None
    tracker.set_tags(run_id, {tag: digest})
    if keep == "all" or (keep == "first_per_content" and holder is None):
        tracker.log_artifact(run_id, path, folder)
        return size
    reference = {"sha256": digest, "bytes": size, "run_id": holder, "artifact": f"{folder}/{path.name}"}
    if holder is None:
        reference["note"] = "not stored: tracking.keep_model_files=none"
    tracker.log_text(run_id, json.dumps(reference, indent=2), f"{folder}/{path.name}.ref.json")
    log.info(
        "tracking: %s/%s (%.0f MiB) already stored by run %s; logged a reference",
        folder,
        path.name,
        size / 2**20,
        holder,
    )
    return 0


def _drop_logged_files(plan: JobPlan, engine_files: list[Path]) -> None:
    """Large model files logged to MLflow are not kept twice; the job folder keeps logs, config, latencies."""
    cfg, work = plan.config, plan.ctx.work_dir
    if cfg.tracking.log_engine:
        for path in engine_files:
            if path.is_relative_to(work):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if cfg.tracking.log_onnx:
        for path in _onnx_files(work):
            path.unlink(missing_ok=True)
