"""Latency under each timing condition: warm vs flushed caches x per-request vs pipelined, with 95 % intervals.

Runs the real pipeline (``blockbench.job.run.run_job``, tracking off) for a few configurations, each with
``benchmark.timing=both`` and ``benchmark.cache`` warm and flushed, and prints a Markdown table; ``--csv`` also
writes every metric of every job. Which configurations and engine: ``--configs`` and ``--overrides``.

    python benchmarks/timing_conditions.py --csv docs/gpu/timing_conditions_h200.csv \\
        --overrides hardware.device=cuda precision=fp16 backend=torch backend.mode=cuda_graph
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from hydra import compose, initialize_config_dir
from job_rows import markdown, show_progress, with_interval, write_rows

from blockbench.config.paths import conf_dir
from blockbench.job.run import run_job
from blockbench.measure import metric_names as names

CONFIGS = [
    "block=vgg norm=bn act=relu resolution.size=64",
    "block=mobilenet norm=bn act=relu resolution.size=64",
    "block=mobilenet norm=ln act=relu resolution.size=64",
    "block=convnext norm=bn act=relu resolution.size=64",
    "block=mobilenet norm=bn act=relu resolution.size=256",
    "block=vgg norm=bn act=relu resolution.size=1024",
]
TIMING = ["benchmark.timing=both", "benchmark.min_iters=300", "benchmark.min_s=1", "benchmark.progress=false"]


def condition_row(config: str, cache: str, metrics: Mapping[str, float]) -> dict[str, str]:
    """One table row: both timings' medians with their 95 % intervals, and the per-request spread."""
    return {
        "config": config,
        "cache": cache,
        "per-request median ms [95 % CI]": with_interval(
            metrics, names.LATENCY_MEDIAN, names.LATENCY_MEDIAN_CI_LOW, names.LATENCY_MEDIAN_CI_HIGH
        ),
        "pipelined ms/inference [95 % CI]": with_interval(
            metrics, names.PIPELINED_MEDIAN, names.PIPELINED_MEDIAN_CI_LOW, names.PIPELINED_MEDIAN_CI_HIGH
        ),
        "CoV %": f"{100 * metrics[names.LATENCY_COV]:.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="one quoted override list per configuration")
    parser.add_argument("--overrides", nargs="*", default=[], help="applied to every job (device, engine, ...)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/blockbench-timing-conditions"))
    parser.add_argument("--csv", type=Path, help="write every job's metrics here")
    args = parser.parse_args(argv)
    rows, table = [], []
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        for number, config in enumerate(args.configs):
            for cache in ("warm", "flushed"):
                overrides = [
                    *config.split(),
                    *TIMING,
                    f"benchmark.cache={cache}",
                    *args.overrides,
                    "tracking.enabled=false",
                    f"work_dir={args.work_dir / f'{number}-{cache}'}",
                ]
                metrics = run_job(compose("config", overrides=overrides)).metrics
                rows.append({"config": config, "cache": cache, "overrides": " ".join(args.overrides), **metrics})
                table.append(condition_row(config, cache, metrics))
                show_progress(table[-1])
    print(markdown(table))
    if args.csv:
        write_rows(args.csv, rows, ("config", "cache"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
