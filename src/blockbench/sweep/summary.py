"""What a run and a sweep print when they end: each figure named for what it is (measured, derived, decided)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from blockbench.axes.precisions import TOLERANCE
from blockbench.job.plan import run_name
from blockbench.job.run import JobResult
from blockbench.measure import metric_names as names
from blockbench.measure.hardware import peak_memory_meaning
from blockbench.measure.statistics import UNSTABLE_COV
from blockbench.tracking import (
    redact,
    ui_hint,
)

_LISTED_SKIPS = 10


def print_sweep_summary(
    sweep_dir: Path, info: dict[str, Any], results: list[dict[str, Any]], interrupted: str | None
) -> None:
    counts = Counter(r["status"] for r in results)
    failed = [r for r in results if r["status"] in ("failed", "killed")]
    head = f"sweep interrupted ({interrupted})" if interrupted else "sweep"
    print(
        f"{head}: {len(results)} jobs, {counts['finished']} finished, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
        + (f", {counts['killed']} killed" if counts["killed"] else "")
        + f" ({sweep_dir})"
    )
    for r in failed:
        print(f"  {r['status'].upper()} {r['name']} [{r.get('stage')}]: {redact(str(r.get('error')))}")
    beyond = [r["name"] for r in results if r["status"] == "finished" and r.get("parity") == "fail"]
    if beyond:
        print(f"  parity beyond tolerance, latency kept (benchmark.parity=warn): {', '.join(beyond)}")
    skipped = [r for r in results if r["status"] == "skipped"]
    for r in skipped[:_LISTED_SKIPS]:
        print(f"  skipped {r['name']}: {r.get('reason')}")
    if len(skipped) > _LISTED_SKIPS:
        print(f"  ... and {len(skipped) - _LISTED_SKIPS} more skipped (run.force=true re-runs them)")
    if interrupted:
        print("  run the same command again to resume: finished configs are skipped, the killed one is redone")
    if info.get("parent_run_id"):
        print(f"  open with: {ui_hint(info['tracking_uri'])}", flush=True)


def print_run_summary(cfg: DictConfig, result: JobResult) -> None:
    """The run in a few lines, each figure named for what it is: measured, derived (images/s = batch / median)
    or decided (the parity verdict with the number and tolerance that decide it)."""
    m, tags = result.metrics, result.tags
    device_type = "cuda" if str(cfg.hardware.device).startswith("cuda") else "cpu"
    lines = [f"{run_name(cfg)}: {m['params_count'] / 1e6:.2f} M params, {m['macs'] / 1e9:.2f} GMACs"]
    if tags.get("build_only") == "true":  # an engine and its build facts, no latency (docs/tensorrt.md)
        lines += [
            f"  built, not timed ({tags.get('build_only_reason')})",
            f"  engine {m.get(names.ENGINE_SIZE_MB, float('nan')):.1f} MiB, build {m[names.BUILD_S]:.1f} s "
            f"(engine cache {tags.get('engine_cache', 'not used')}), export {m[names.EXPORT_S]:.1f} s "
            f"({tags.get('export_cache', 'no export')})",
        ]
    else:
        if names.LATENCY_MEDIAN in m:
            cov = m[names.LATENCY_COV]
            unstable = f" UNSTABLE (> {100 * UNSTABLE_COV:g} %)" if cov > UNSTABLE_COV else ""
            interval = (
                f"95 % CI {m[names.LATENCY_MEDIAN_CI_LOW]:.3f}-{m[names.LATENCY_MEDIAN_CI_HIGH]:.3f}"
                if m.get(names.TRIALS, 1) < 2
                else f"median of {m[names.TRIALS]:.0f} trials, 95 % interval covering them "
                f"{m[names.LATENCY_MEDIAN_TRIALS_CI_LOW]:.3f}-{m[names.LATENCY_MEDIAN_TRIALS_CI_HIGH]:.3f}; within "
                f"the median trial {m[names.LATENCY_MEDIAN_CI_LOW]:.3f}-{m[names.LATENCY_MEDIAN_CI_HIGH]:.3f}"
            )
            lines.append(
                f"  latency median {m[names.LATENCY_MEDIAN]:.3f} ms ({interval}), p99 {m[names.LATENCY_P99]:.3f} ms, "
                f"CoV {100 * cov:.1f} %{unstable}, batch/median = {m['throughput_qps']:.1f} images/s "
                f"({cfg.benchmark.mode}, {tags.get('timer')}, {tags.get('cache_state', 'warm')} caches)"
            )
        if names.PIPELINED_MEDIAN in m:
            pipelined_interval = (
                f"95 % CI {m[names.PIPELINED_MEDIAN_CI_LOW]:.3f}-{m[names.PIPELINED_MEDIAN_CI_HIGH]:.3f}"
                if m.get(names.TRIALS, 1) < 2 or names.PIPELINED_MEDIAN_TRIALS_CI_LOW not in m
                else f"median of {m[names.TRIALS]:.0f} trials, 95 % interval covering them "
                f"{m[names.PIPELINED_MEDIAN_TRIALS_CI_LOW]:.3f}-{m[names.PIPELINED_MEDIAN_TRIALS_CI_HIGH]:.3f}"
            )
            lines.append(
                f"  pipelined {m[names.PIPELINED_MEDIAN]:.3f} ms per inference ({pipelined_interval}), "
                f"batch/pipelined median = {m['pipelined_throughput_qps']:.1f} images/s"
            )
        if names.PARITY_REL_L2 in m:
            tolerance = TOLERANCE[cfg.precision.name]
            passed = tags.get("parity", "pass" if m[names.PARITY_REL_L2] <= tolerance else "fail") == "pass"
            parity = (
                f"parity {'pass' if passed else 'FAIL'} (relative L2 {m[names.PARITY_REL_L2]:.3g}, tolerance "
                f"{tolerance:.3g}; max abs {m[names.PARITY_MAX_ABS]:.3g})"
            )
        else:
            parity = "parity not checked"
        lines += [
            f"  {parity}, build {m[names.BUILD_S]:.1f} s, "
            f"export {m[names.EXPORT_S]:.1f} s ({tags.get('export_cache', 'no export')}), "
            f"peak memory {m['peak_memory_mb']:.0f} MiB ({peak_memory_meaning(device_type)})",
        ]
    if result.run_id:
        stored = m.get(names.ARTIFACT_MB)
        disk = f", {stored:.1f} MiB of artifacts stored" if stored is not None else ""
        lines.append(f"  MLflow run {result.run_id}{disk}: {ui_hint(cfg.tracking.uri, result.experiment_id)}")
    print("\n".join(lines), flush=True)
