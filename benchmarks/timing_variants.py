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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iters", type=int, default=2000)
    args = parser.parse_args()
    device = torch.device(args.device)
    print("| net | mode | variant | median ms | CoV % | p99/median |")
    print("|---|---|---|---|---|---|")
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
                    s = time_variant(run, stream, variant, args.iters)
                    med = float(np.median(s))
                    print(
                        f"| {block}-{norm}-{act}-{size} | {mode} | {variant} | {med:.4f} | "
                        f"{100 * s.std() / s.mean():.2f} | {np.percentile(s, 99) / med:.3f} |",
                        flush=True,
                    )
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
