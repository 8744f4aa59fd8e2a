"""FP32 vs BF16 vs INT8 on this CPU: every block x BN/LN at 64x64, ONNX Runtime and torch.compile, with parity.

Runs the real pipeline (``blockbench.pipeline.run_job``, tracking off, ``benchmark=sweep``) for each configuration
and precision each engine has a real path for -- ONNX Runtime: FP32 and INT8 (its CPU provider has no BF16
convolution, so BF16 is refused); torch.compile with freezing: FP32, BF16 and INT8 (PT2E) -- and prints a Markdown
table: the median latency with its 95 % interval, the speed-up over FP32 with a 95 % bootstrap interval from the kept
samples, the parity error against PyTorch FP32 and the top-1 agreement of the 10-class head; ``--csv``: every metric.

    python benchmarks/precision_cpu.py --csv docs/cpu/precision_cpu.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from rows_csv import write_rows

from blockbench import latencies, statistics
from blockbench import metric_names as names
from blockbench.config import project_root
from blockbench.errors import BlockbenchError
from blockbench.pipeline import run_job

BLOCKS = ("vgg", "resnet", "mobilenet", "convnext")
NORMS = ("bn", "ln")
ENGINES = {
    "onnxruntime": (["backend=onnxruntime"], ("fp32", "int8")),
    # freezing for every precision: INT8 always freezes (it folds the quantize/dequantize pairs), and FP32/BF16
    # without it keep unpacked weights, which would credit INT8 with what freezing does
    "torch compile": (["backend=torch", "backend.mode=compile", "backend.freezing=true"], ("fp32", "bf16", "int8")),
}


def speedup(fp32: Path, other: Path, seed: int) -> tuple[float, float, float]:
    """FP32 median / other median and its bootstrap interval, from the two runs' kept per-request samples."""
    a, b = (latencies.read((folder / latencies.FILE).read_text()) for folder in (fp32, other))
    rng = np.random.default_rng(seed)
    boot = statistics.bootstrap_medians(a, rng) / statistics.bootstrap_medians(b, rng)
    low, high = statistics.interval(boot)
    return float(np.median(a) / np.median(b)), low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/blockbench-precision-cpu"))
    parser.add_argument("--csv", type=Path, help="write every job's metrics here")
    parser.add_argument("--overrides", nargs="*", default=[], help="applied to every job (e.g. model.channels=...)")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    print(
        "| block | norm | engine | precision | median ms [95 % CI] | speed-up vs FP32 [95 % CI] | parity rel. L2 | "
        "top-1 agreement |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with initialize_config_dir(str(project_root() / "conf"), version_base="1.3"):
        for block in BLOCKS:
            for norm in NORMS:
                for engine, (engine_overrides, precisions) in ENGINES.items():
                    folders: dict[str, Path] = {}
                    for precision in precisions:
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
                            m = run_job(compose("config", overrides=overrides)).metrics
                        except BlockbenchError as exc:
                            print(f"| {block} | {norm} | {engine} | {precision} | failed: {exc} | | | |", flush=True)
                            rows.append({"block": block, "norm": norm, "engine": engine, "precision": precision,
                                         "error": str(exc)})  # fmt: skip
                            continue
                        folders[precision] = folder
                        ratio = ""
                        if precision != "fp32" and "fp32" in folders:
                            r, low, high = speedup(folders["fp32"], folder, statistics.SEED)
                            ratio = f"{r:.2f}× [{low:.2f}, {high:.2f}]"
                        agreement = m.get(names.TOP1_AGREEMENT)
                        low, high = m[names.LATENCY_MEDIAN_CI_LOW], m[names.LATENCY_MEDIAN_CI_HIGH]
                        print(
                            f"| {block} | {norm} | {engine} | {precision} | {m[names.LATENCY_MEDIAN]:.3f} "
                            f"[{low:.3f}, {high:.3f}] | {ratio} | {m[names.PARITY_REL_L2]:.3g} | "
                            f"{'' if agreement is None else f'{agreement:.2f}'} |",
                            flush=True,
                        )
                        rows.append({"block": block, "norm": norm, "engine": engine, "precision": precision, **m})
    if args.csv:
        write_rows(args.csv, rows, ("block", "norm"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
