"""How the GPU timing method changes median and spread (why the harness times the way it does).

For a few networks, in CUDA-graph replay and eager mode, three ways of timing each iteration with CUDA events:
``sync``      events around the work, wait for the end event each iteration (the harness's default);
``prefill``   as ``sync``, but a ~20 us device spin is queued first so the start event never waits for the host;
``queued``    events around each iteration, no wait between iterations (device never idles; throughput view).

    python benchmarks/timing_variants.py --device cuda
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from job_rows import markdown, show_progress

from blockbench.models.network import BlockNet, initialise

NETS = [("vgg", "bn", "relu", 256, 4), ("mobilenet", "ln", "gelu", 256, 8), ("vgg", "bn", "relu", 1024, 4)]
SPIN_CYCLES = 40_000  # ~20 us at H100 clocks: longer than one graph launch on the host


def time_variant(run: Callable[[], None], stream: torch.cuda.Stream, variant: str, iters: int) -> np.ndarray:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    with torch.cuda.stream(stream):
        for i in range(iters):
            if variant == "prefill":
                torch.cuda._sleep(SPIN_CYCLES)
            starts[i].record(stream)
            run()
            ends[i].record(stream)
            if variant != "queued":
                ends[i].synchronize()
    stream.synchronize()
    return np.asarray([s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)])


def spread_row(net: str, mode: str, variant: str, samples: np.ndarray) -> dict[str, str]:
    """One table row: the median of one timing method, its CoV and how far the tail (p99) sits above the median."""
    median = float(np.median(samples))
    return {
        "net": net,
        "mode": mode,
        "variant": variant,
        "median ms": f"{median:.4f}",
        "CoV %": f"{100 * samples.std() / samples.mean():.2f}",
        "p99/median": f"{np.percentile(samples, 99) / median:.3f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iters", type=int, default=2000)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for block, norm, act, size, bps in NETS:
        model = initialise(BlockNet(block, norm, act, [64, 128, 256, 512, 1024], bps, 10), 0, size, device).half()
        x = torch.randn(1, 3, size, size, device=device, dtype=torch.float16)
        stream = torch.cuda.Stream(device)
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):
                model(x)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                model(x)
        for mode, run in (("graph", graph.replay), ("eager", partial(model, x))):
            with torch.no_grad():
                time_variant(run, stream, "sync", args.iters // 4)  # warm-up: clocks up, caches warm
                for variant in ("sync", "prefill", "queued"):
                    samples = time_variant(run, stream, variant, args.iters)
                    rows.append(spread_row(f"{block}-{norm}-{act}-{size}", mode, variant, samples))
                    show_progress(rows[-1])
        torch.cuda.empty_cache()
    print(markdown(rows))


if __name__ == "__main__":
    main()
