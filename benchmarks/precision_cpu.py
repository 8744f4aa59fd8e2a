"""FP32 vs BF16 vs INT8 on this CPU: every block x BN/LN at 64x64, ONNX Runtime and torch.compile, with parity.

Runs the real pipeline (``blockbench.job.run.run_job``, tracking off, ``benchmark=sweep``) for each configuration
and precision each engine has a real path for -- ONNX Runtime: FP32 and INT8 (its CPU provider has no BF16
convolution, so BF16 is refused); torch.compile with freezing: FP32, BF16 and INT8 (PT2E) -- and prints a Markdown
table: the median latency with its 95 % interval, the speed-up over FP32 with a 95 % bootstrap interval from the kept
samples, the parity error against PyTorch FP32 and the top-1 agreement of the 10-class head; ``--csv``: every metric.

    python benchmarks/precision_cpu.py --csv docs/cpu/precision_cpu.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from job_rows import markdown, show_progress, with_interval, write_rows

from blockbench.compare import Comparison, compare_samples
from blockbench.config.paths import conf_dir
from blockbench.errors import BlockbenchError
from blockbench.job.run import run_job
from blockbench.measure import latencies
from blockbench.measure import metric_names as names

BLOCKS = ("vgg", "resnet", "mobilenet", "convnext")
NORMS = ("bn", "ln")
ENGINES = {
    "onnxruntime": (["backend=onnxruntime"], ("fp32", "int8")),
    # freezing for every precision: INT8 always freezes (it folds the quantize/dequantize pairs), and FP32/BF16
    # without it keep unpacked weights, which would credit INT8 with what freezing does
    "torch compile": (["backend=torch", "backend.mode=compile", "backend.freezing=true"], ("fp32", "bf16", "int8")),
}


def kept_samples(work_dir: Path) -> np.ndarray:
    """The per-request samples a job kept in its work folder."""
    return latencies.read((work_dir / latencies.FILE).read_text())


def precision_row(job: Mapping[str, str], metrics: Mapping[str, float], speedup: Comparison | None) -> dict[str, str]:
    """One table row: the median with its interval, the speed-up over FP32 (if any), parity and top-1 agreement."""
    agreement = metrics.get(names.TOP1_AGREEMENT)
    return {
        **job,
        "median ms [95 % CI]": with_interval(
            metrics, names.LATENCY_MEDIAN, names.LATENCY_MEDIAN_CI_LOW, names.LATENCY_MEDIAN_CI_HIGH
        ),
        "speed-up vs FP32 [95 % CI]": (
            "" if speedup is None else f"{speedup.ratio:.2f}× [{speedup.low:.2f}, {speedup.high:.2f}]"
        ),
        "parity rel. L2": f"{metrics[names.PARITY_REL_L2]:.3g}",
        "top-1 agreement": "" if agreement is None else f"{agreement:.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/blockbench-precision-cpu"))
    parser.add_argument("--csv", type=Path, help="write every job's metrics here")
    parser.add_argument("--overrides", nargs="*", default=[], help="applied to every job (e.g. model.channels=...)")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    table: list[dict[str, str]] = []
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        for block in BLOCKS:
            for norm in NORMS:
                for engine, (engine_overrides, precisions) in ENGINES.items():
                    fp32_folder: Path | None = None
                    for precision in precisions:
                        job = {"block": block, "norm": norm, "engine": engine, "precision": precision}
                        folder = args.work_dir / f"{block}-{norm}-{engine.replace(' ', '_')}-{precision}"
                        overrides = [
                            f"block={block}",
                            f"norm={norm}",
                            "act=relu",
                            "resolution.size=64",
                            f"precision={precision}",
                            "benchmark=sweep",
                            "benchmark.progress=false",
                            *engine_overrides,
                            *args.overrides,
                            "tracking.enabled=false",
                            f"work_dir={folder}",
                        ]
                        try:
                            metrics = run_job(compose("config", overrides=overrides)).metrics
                        except BlockbenchError as exc:
                            rows.append({**job, "error": str(exc)})
                            table.append({**job, "median ms [95 % CI]": f"failed: {exc}"})
                            show_progress(table[-1])
                            continue
                        speedup = None  # FP32 median / this median: compare_samples' B / A with A = this run
                        if precision == "fp32":
                            fp32_folder = folder
                        elif fp32_folder is not None:
                            speedup = compare_samples(kept_samples(folder), kept_samples(fp32_folder))
                        rows.append({**job, **metrics})
                        table.append(precision_row(job, metrics, speedup))
                        show_progress(table[-1])
    print(markdown(table))
    if args.csv:
        write_rows(args.csv, rows, ("block", "norm"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
