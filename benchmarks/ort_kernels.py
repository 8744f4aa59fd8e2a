"""Where an ONNX Runtime CUDA engine's GPU time goes, beside the torch engine of the same config: kernel time per
inference by kernel class, both sides classed by the same rules on the kernels' names.

ONNX Runtime side: the job folder's exported graph (``model.onnx``) in a new session with the run's provider
settings (its CUDA graph off, so every kernel is launched and seen), ``ITERATIONS`` warm runs under
``torch.profiler``, whose CUPTI trace records every kernel of the process, ONNX Runtime's too. Torch side: the
``attribution.csv`` of a job run with ``benchmark.attribution=true`` (the eager kernels, which a CUDA graph
replays). Needs the GPU build of onnxruntime and a GPU.

    python benchmarks/ort_kernels.py /tmp/ort/ort /tmp/ort/cuda_graph --out docs/gpu/ort_cuda/kernel_classes.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from job_rows import markdown, write_rows
from torch.profiler import ProfilerActivity, profile

ITERATIONS = 20
CONFIG = ("block", "norm", "act", "resolution", "precision")
# First match wins: a format conversion before the convolution it serves, a reduction before the element-wise
# names its template arguments carry.
KERNEL_CLASSES = (
    ("layout", r"transpose|nchwtonhwc|nhwctonchw|nchw2nhwc|nhwc2nchw|memcpy|memset|copy|cast"),
    ("norm", r"layernorm|layer_norm|batchnorm|batch_norm|bn_fw|instancenorm"),
    ("reduce", r"reduce|reduction|welford|mean|var"),
    ("pool", r"pool"),
    ("conv", r"conv|fprop|implicit|dgrad|wgrad|xmma|sm\d+_.*(?:f16|h16|hmma|tensor)|cudnn|cutlass"),
    ("gemm", r"gemm|gemv|matmul"),
    ("act", r"relu|gelu|erf|tanh|sigmoid|clip"),
    ("elementwise", r"elementwise|binary|unary|add|mul|sub|div|pow|sqrt|vectorized"),
)


def kernel_class(name: str) -> str:
    lowered = name.lower()
    return next((label for label, pattern in KERNEL_CLASSES if re.search(pattern, lowered)), "other")


def _config(folder: Path) -> tuple[str, dict]:
    run = json.loads((folder / "run.json").read_text())
    return "-".join(run["tags"][key] for key in CONFIG), run


def ort_kernels(folder: Path, run: dict) -> dict[str, float]:
    """Kernel ms per inference by class for the ONNX Runtime job in ``folder``."""
    import onnxruntime as ort

    params = run["params"]
    stream = torch.cuda.Stream()
    options = {
        "device_id": "0",
        "cudnn_conv_algo_search": params["backend.cudnn_conv_algo_search"].upper(),
        "prefer_nhwc": "1" if params["backend.prefer_nhwc"] == "True" else "0",
        "cudnn_conv_use_max_workspace": "1" if params["backend.cudnn_conv_use_max_workspace"] == "True" else "0",
        "user_compute_stream": str(stream.cuda_stream),
    }
    session = ort.InferenceSession(
        str(folder / "model.onnx"), providers=[("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    )
    meta = session.get_inputs()[0]
    dtype = torch.float16 if "float16" in meta.type else torch.float32
    data = torch.randn([d if isinstance(d, int) else 1 for d in meta.shape], dtype=dtype, device="cuda")
    binding = session.io_binding()
    binding.bind_input(meta.name, "cuda", 0, data.cpu().numpy().dtype.type, list(data.shape), data.data_ptr())
    binding.bind_output(session.get_outputs()[0].name, "cuda", 0)
    for _ in range(5):
        session.run_with_iobinding(binding)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(ITERATIONS):
            session.run_with_iobinding(binding)
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as scratch:
        trace = Path(scratch) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            totals[kernel_class(event["name"])] += event["dur"] / 1000.0 / ITERATIONS
    return dict(totals)


def torch_kernels(folder: Path) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    with (folder / "attribution.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            totals[kernel_class(row["name"])] += float(row["ms_per_inference"])
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ort_sweep", type=Path, help="sweep folder of ONNX Runtime CUDA jobs")
    parser.add_argument("torch_sweep", type=Path, help="sweep folder of torch jobs run with benchmark.attribution=true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch_jobs = {}
    for folder in sorted(p for p in args.torch_sweep.iterdir() if (p / "attribution.csv").exists()):
        config, _ = _config(folder)
        torch_jobs[config] = folder
    rows = []
    for folder in sorted(p for p in args.ort_sweep.iterdir() if (p / "model.onnx").exists()):
        config, run = _config(folder)
        if config not in torch_jobs:
            continue
        sides = {"ort": ort_kernels(folder, run), "torch": torch_kernels(torch_jobs[config])}
        for label in sorted({c for side in sides.values() for c in side}):
            ort_ms, torch_ms = sides["ort"].get(label, 0.0), sides["torch"].get(label, 0.0)
            rows.append(
                {
                    "config": config,
                    "kernel_class": label,
                    "ort_ms": round(ort_ms, 4),
                    "torch_ms": round(torch_ms, 4),
                    "ort_minus_torch_ms": round(ort_ms - torch_ms, 4),
                }
            )
        rows.append(
            {
                "config": config,
                "kernel_class": "total",
                "ort_ms": round(sum(sides["ort"].values()), 4),
                "torch_ms": round(sum(sides["torch"].values()), 4),
                "ort_minus_torch_ms": round(sum(sides["ort"].values()) - sum(sides["torch"].values()), 4),
            }
        )
    if args.out:
        write_rows(args.out, rows, ["config", "kernel_class"])
    print(markdown(rows))


if __name__ == "__main__":
    main()
