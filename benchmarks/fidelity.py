"""Measurement fidelity: the framework's median vs a bare CUDA-graph replay loop of the same module.

For each config, ``run_job`` measures the torch backend in ``cuda_graph`` mode exactly as ``main.py`` does
(tracking off); then, in the same process, the same network is captured in a CUDA graph by hand and replayed
``--iters`` times with a CUDA event pair around each replay. Target: medians within +-3 %, CoV < 1 %.

    python benchmarks/fidelity.py --device cuda --out docs/gpu/h200/fidelity.md
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from job_rows import markdown, show_progress

from blockbench.config.paths import conf_dir
from blockbench.job.run import run_job
from blockbench.measure import metric_names as names
from blockbench.measure.hardware import set_numeric_mode
from blockbench.models import build_model

CONFIGS = [
    ("vgg", "bn", "relu", 64),
    ("vgg", "ln", "gelu", 64),
    ("resnet", "bn", "relu", 256),
    ("mobilenet", "bn", "relu", 256),
    ("mobilenet", "ln", "gelu", 256),
    ("convnext", "bn", "relu", 256),
    ("vgg", "bn", "relu", 1024),
    ("mobilenet", "bn", "relu", 1024),
]
AGREEMENT_PCT = 3.0  # the framework's median may differ from the bare loop's by this much


def comparison_row(
    config: tuple[str, str, str, int], framework: Mapping[str, float], bare: np.ndarray
) -> dict[str, object]:
    """One table row: the framework's median and CoV beside the bare loop's, and whether the medians agree."""
    block, norm, act, size = config
    bare_median = float(np.median(bare))
    delta = 100 * (framework[names.LATENCY_MEDIAN] / bare_median - 1)
    return {
        "block": block,
        "norm": norm,
        "act": act,
        "res": size,
        "framework median ms": f"{framework[names.LATENCY_MEDIAN]:.4f}",
        "framework CoV %": f"{100 * framework[names.LATENCY_COV]:.2f}",
        "bare replay median ms": f"{bare_median:.4f}",
        "bare CoV %": f"{100 * bare.std() / bare.mean():.2f}",
        "delta %": f"{delta:+.2f}",
        f"within {AGREEMENT_PCT:.0f} %": "yes" if abs(delta) <= AGREEMENT_PCT else "NO",
    }


def bare_replay_ms(cfg: object, device: torch.device, iters: int) -> np.ndarray:
    """Hand-written baseline: capture once, replay with events around each replay, synchronise each time."""
    set_numeric_mode(cfg.precision.name, 0)  # type: ignore[attr-defined]
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        cfg.precision.name  # type: ignore[attr-defined]
    ]
    model = build_model(cfg, device).to(dtype)
    size = cfg.resolution.size  # type: ignore[attr-defined]
    x = torch.randn(1, 3, size, size, device=device, dtype=dtype)
    stream = torch.cuda.Stream(device)
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(3):
            model(x)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph, stream=stream):
        model(x)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    with torch.cuda.stream(stream):  # replay() launches on the current stream: it must be the events' stream
        for i in range(iters + iters // 5):
            start.record(stream)
            graph.replay()
            end.record(stream)
            end.synchronize()
            if i >= iters // 5:  # the first fifth is warm-up
                samples.append(start.elapsed_time(end))
    del graph, model
    torch.cuda.empty_cache()
    return np.asarray(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(str(conf_dir()), version_base="1.3"):
        for block, norm, act, size in CONFIGS:
            cfg = compose(
                "config",
                overrides=[
                    f"block={block}",
                    f"norm={norm}",
                    f"act={act}",
                    f"resolution.size={size}",
                    f"precision={args.precision}",
                    "backend=torch",
                    "backend.mode=cuda_graph",
                    f"hardware.device={args.device}",
                    "tracking.enabled=false",
                    "benchmark.progress=false",
                    f"benchmark.min_iters={args.iters}",
                    f"work_dir={tmp}",
                    f"cache_dir={tmp}/cache",
                ],
            )
            framework = run_job(cfg).metrics
            rows.append(comparison_row((block, norm, act, size), framework, bare_replay_ms(cfg, device, args.iters)))
            show_progress(rows[-1])
    header = (
        f"Device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; precision {args.precision}; "
        f"batch 1; {args.iters} timed iterations each."
    )
    table = f"{header}\n\n{markdown(rows)}"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
