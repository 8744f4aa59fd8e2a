"""Execute a planned job: build its engine, check parity, measure; return a plain result. No tracking here.

This is what runs in the worker process (:mod:`blockbench.job.launch`): it imports nothing of MLflow, writes only
build products (the ONNX export, the engine) into the job folder, and hands everything else — metrics, tags, every
latency sample and the state the measurement ran under — back as an
:class:`ExecutionResult` for the parent to record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from blockbench.axes import precisions
from blockbench.errors import ParityError
from blockbench.job.engine import built_engine
from blockbench.job.plan import JobPlan
from blockbench.job.stages import Stages
from blockbench.measure import attribution, statistics
from blockbench.measure import metric_names as names
from blockbench.measure.energy import EnergyMeter, energy_tag
from blockbench.measure.hardware import MemoryProbe, clock_event_names, last_level_cache_bytes
from blockbench.measure.harness import LatencyResult, measure
from blockbench.measure.state import measured_state

log = logging.getLogger(__name__)


@dataclass
class ExecutionResult:
    """What executing a job produced, as plain data (it crosses the process boundary by pickling)."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    engine_files: list[Path] = field(default_factory=list)  # build products in the job folder, logged with the run
    state: dict[str, str] = field(default_factory=dict)  # the state it measured under (measured_state)
    attribution: attribution.Attribution | None = None  # benchmark.attribution=true: the profiled rows
    failure: ParityError | None = None  # measured and kept, then failed (benchmark.parity=fail)
    latency: LatencyResult | None = None  # every kept sample and its host time (what the parent's observation trims)

    @property
    def series(self) -> list[tuple[str, np.ndarray]]:
        """Every kept sample, one series per measurement (latencies.csv); none for a build-only job."""
        return latency_series(self.latency) if self.latency is not None else []


def execute(plan: JobPlan, stages: Stages) -> ExecutionResult:
    """Build and measure one planned job."""
    config, ctx = plan.config, plan.ctx
    result = ExecutionResult()
    probe = MemoryProbe(ctx.device)
    with built_engine(plan, stages, references=True) as engine:
        metrics, tags, step = engine.metrics, engine.tags, engine.step
        result.metrics, result.tags = metrics, tags
        if step is None:  # build-only: the engine is the result; nothing is run, so no parity and no latency
            result.engine_files = engine.build.engine_files
            return result

        def check_parity() -> None:
            """Right after the cold call: the error is recorded, and the latency is measured whatever it is."""
            abs_err, rel_err = parity(step.output(), engine.reference)
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
                if config.benchmark.parity == "fail":
                    result.failure = ParityError(message)

        def record_state() -> None:
            result.state = {**measured_state(ctx.device), **engine.backend.runtime_state()}

        meter = EnergyMeter(ctx.device)
        with stages("benchmark"):
            latency = measure(step, config.benchmark, probe, on_first=check_parity, meter=meter, on_window=record_state)
        after = engine.backend.after_benchmark(step)
        result.engine_files = engine.build.engine_files + after.engine_files
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
            result.attribution = found
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
    tags.update(_timing_tags(plan, latency))
    metrics["last_level_cache_mb"] = last_level_cache_bytes(ctx.device) / 2**20  # 0: the machine does not say
    if metrics.get(names.LATENCY_COV, 0.0) > statistics.UNSTABLE_COV:
        cov, limit = 100 * metrics[names.LATENCY_COV], 100 * statistics.UNSTABLE_COV
        ends = [
            metrics[key] for key in ("gpu_clock_event_reasons_start", "gpu_clock_event_reasons_end") if key in metrics
        ]
        why = f"; GPU clock events {clock_event_names(ends[0])} -> {clock_event_names(ends[-1])}" if ends else ""
        tags["latency_unstable"] = f"CoV {cov:.1f} % > {limit:.1f} %{why}"
    result.latency = latency
    return result


def _timing_tags(plan: JobPlan, latency: LatencyResult) -> dict[str, str]:
    """How the latency was taken: timer, mode, interval method, timing definition, cache state, bounds."""
    bench = plan.config.benchmark
    tags = {
        "timer": latency.timer,
        "benchmark_mode": bench.mode,
        "latency_ci": statistics.METHOD,
        "timing": bench.timing,
        "cache_state": bench.cache,
        names.STOP_REASON_TAG: latency.stop_reason or latency.pipelined_stop_reason,
    }
    if latency.stop_reason and latency.pipelined_stop_reason:
        tags["pipelined_stop_reason"] = latency.pipelined_stop_reason
    if bench.mode == "end_to_end":
        tags["end_to_end_split"] = (
            "h2d/compute/d2h"
            if latency.phase_ms.size
            else "none (no copies of its own: CPU, or copied inside one call)"
        )
    if latency.enqueue_ms.size:  # a GPU step timed per request: trtexec's rules can be applied
        tags["bound_by"] = ",".join(latency.bounds()) or "gpu_compute"
    return tags


def parity(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(max |out - ref|, ||out - ref|| / ||ref||); the L2 ratio is robust to a few large logits."""
    if output.shape != reference.shape:
        raise ParityError(f"engine output shape {tuple(output.shape)} != PyTorch's {tuple(reference.shape)}")
    if not torch.isfinite(output).all():
        raise ParityError("engine output contains NaN or Inf")
    diff = (output.double() - reference.double()).flatten()
    scale = float(reference.double().norm())
    rel = float(diff.norm()) / scale if scale > 0 else float(diff.norm())
    return float(diff.abs().max()), rel


def latency_series(latency: LatencyResult) -> list[tuple[str, np.ndarray]]:
    """Every kept sample, one series per measurement (:mod:`blockbench.latencies`)."""
    series = [("per_request", latency.samples_ms), ("pipelined", latency.pipelined_ms), ("enqueue", latency.enqueue_ms)]
    series += [(part, latency.phase_ms[:, col]) for col, part in enumerate(("h2d", "compute", "d2h"))]
    return series
