"""Measured device peaks for the roofline: the best matrix-product rate per precision and the memory bandwidth.

Datasheet numbers overstate what a framework can reach (clocks, power limits, library kernels), so the floor
uses what this machine actually does: a large matrix product (GEMM on the CPU) and a large device copy (a
memory copy on the CPU), timed with CUDA events on GPUs and the monotonic clock on CPUs. Each device is
measured once and cached as JSON under ``<cache_dir>/peaks/``; a report on another machine can reuse the file.

``python -m blockbench.report.peaks --device cuda:0`` measures (or shows the cached) peaks of one device.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from blockbench.config import project_root
from blockbench.environment import cpu_model
from blockbench.hardware import last_level_cache_bytes
from blockbench.precisions import PRECISIONS

log = logging.getLogger(__name__)

# A quantized precision's peak must come from an integer matrix product: its dtype record is float32 (the engine's
# inputs and outputs), and an FP32 GEMM rate would put its floor above what the integer kernels reach.
INT_GEMM_OP = "torch._int_mm int8 x int8 -> int32"


class PeakUnavailable(Exception):
    """This machine's torch cannot measure a precision's peak; the message says why (the roofline shows it)."""


@dataclass
class DevicePeaks:
    """What one device sustains: dense matrix product per precision (TFLOP/s) and copy bandwidth (GB/s)."""

    device_name: str
    kind: str  # "cpu" or "cuda"
    matmul_tflops: dict[str, float] = field(default_factory=dict)
    copy_gbps: float = 0.0
    # Last-level cache (a GPU's L2, a CPU's L3) in bytes, 0 if unknown: with warm caches a working set that fits
    # is not re-read from DRAM, so only the bytes beyond it are bound by copy_gbps.
    cache_bytes: int = 0
    measured: dict[str, Any] = field(default_factory=dict)  # sizes, threads, torch version, when

    def matmul_for(self, precision: str) -> float | None:
        """TFLOP/s for a run's precision; a CPU has no TF32, so tf32 runs there use the FP32 rate. A quantized
        precision's rate counts only if it was measured with an integer product (older caches timed an FP32 one)."""
        if PRECISIONS.get(precision) is not None and PRECISIONS[precision].quantized:
            measured = self.measured.get(f"matmul_{precision}", {})
            return self.matmul_tflops.get(precision) if measured.get("op") == INT_GEMM_OP else None
        if precision in self.matmul_tflops:
            return self.matmul_tflops[precision]
        if self.kind == "cpu" and precision == "tf32":
            return self.matmul_tflops.get("fp32")
        return None

    def missing_reason(self, precision: str) -> str:
        """Why :meth:`matmul_for` has no rate for ``precision``."""
        measured = self.measured.get(f"matmul_{precision}", {})
        if measured.get("unavailable"):
            return str(measured["unavailable"])
        if precision in self.matmul_tflops and PRECISIONS[precision].quantized:
            return f"the cached {precision} peak was not measured with an integer matrix product ({INT_GEMM_OP})"
        return f"no {precision} peak measured"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DevicePeaks:
        return cls(
            device_name=str(data["device_name"]),
            kind=str(data["kind"]),
            matmul_tflops={k: float(v) for k, v in data.get("matmul_tflops", {}).items()},
            copy_gbps=float(data.get("copy_gbps", 0.0)),
            cache_bytes=int(data.get("cache_bytes", 0)),
            measured=dict(data.get("measured", {})),
        )


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "device"


def cache_file(cache_dir: Path, device_name: str) -> Path:
    return cache_dir / "peaks" / f"{slug(device_name)}.json"


def local_device(device_name: str) -> torch.device | None:
    """The device of this machine a run's ``device_name`` tag names, or None (the run came from elsewhere)."""
    if device_name == cpu_model():
        return torch.device("cpu")
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            if torch.cuda.get_device_name(index) == device_name:
                return torch.device("cuda", index)
    return None


def _cpu_seconds(fn: Callable[[], object], reps: int) -> float:
    """Best wall time of ``reps`` calls (the best is the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cuda_seconds(fn: Callable[[], object], device: torch.device, inner: int, reps: int = 3) -> float:
    """Best per-call time over ``reps`` batches of ``inner`` calls, timed with CUDA events on the stream."""
    best = float("inf")
    with torch.cuda.device(device):
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1000 / inner)
    return best


def measure_int_matmul(device: torch.device) -> tuple[float, dict[str, Any]]:
    """Tera-ops/s of a large square int8 x int8 -> int32 product (``torch._int_mm``: cuBLASLt's integer GEMM on CUDA,
    oneDNN's on CPUs, VNNI/AMX where the CPU has them); :class:`PeakUnavailable` where torch has none here."""
    int_mm = getattr(torch, "_int_mm", None)
    if int_mm is None:
        raise PeakUnavailable(f"torch {torch.__version__} has no integer matrix product (torch._int_mm)")

    def operands(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A row-major, B column-major: the layout integer GEMMs are built for (cuBLASLt's "TN"). On an H100 a
        row-major B ran 7.5x slower (133 against 998 TOP/s at n=8192, torch 2.11.0+cu130), which would put the floor
        far too high."""
        a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8, device=device) for _ in range(2))
        return a, b.t().contiguous().t()

    try:
        int_mm(*operands(64))
    except RuntimeError as exc:
        raise PeakUnavailable(f"torch._int_mm does not run on {device.type} here ({exc})") from exc
    if device.type == "cuda":
        n = 8192
        a, b = operands(n)
        for _ in range(3):  # warm-up: cuBLASLt heuristics, clocks
            int_mm(a, b)
        seconds = _cuda_seconds(lambda: int_mm(a, b), device, inner=10)
        del a, b
        torch.cuda.empty_cache()
        return 2 * n**3 / seconds / 1e12, {"n": n, "timer": "cuda_events", "op": INT_GEMM_OP, "b": "column-major"}
    n = 256
    while True:  # as for FP32: until one product takes >= 20 ms
        a, b = operands(n)
        int_mm(a, b)
        seconds = _cpu_seconds(lambda a=a, b=b: int_mm(a, b), reps=3)
        if seconds >= 0.02 or n >= 4096:
            break
        n *= 2
    info = {"n": n, "timer": "perf_counter", "threads": torch.get_num_threads(), "op": INT_GEMM_OP, "b": "column-major"}
    return 2 * n**3 / seconds / 1e12, info


def measure_matmul(device: torch.device, precision: str) -> tuple[float, dict[str, Any]]:
    """TFLOP/s of a large square matrix product in the precision's dtype (TF32 only for ``tf32``); for a quantized
    precision the integer product (:func:`measure_int_matmul`)."""
    if PRECISIONS[precision].quantized:
        return measure_int_matmul(device)
    dtype = PRECISIONS[precision].dtype
    if device.type == "cuda":
        n = 8192
        allow = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        try:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            out = torch.empty(n, n, device=device, dtype=dtype)
            for _ in range(3):  # warm-up: cuBLAS heuristics, clocks
                torch.mm(a, b, out=out)
            seconds = _cuda_seconds(lambda: torch.mm(a, b, out=out), device, inner=10)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = allow
            torch.cuda.empty_cache()
        return 2 * n**3 / seconds / 1e12, {"n": n, "timer": "cuda_events"}
    # CPU: grow the matrix until one product takes >= 20 ms, so call overhead is negligible.
    n, seconds = 256, 0.0
    while True:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.mm(a, b)
        seconds = _cpu_seconds(lambda a=a, b=b: torch.mm(a, b), reps=3)
        if seconds >= 0.02 or n >= 4096:
            break
        n *= 2
    seconds = min(seconds, _cpu_seconds(lambda: torch.mm(a, b), reps=3))
    return 2 * n**3 / seconds / 1e12, {"n": n, "timer": "perf_counter", "threads": torch.get_num_threads()}


def measure_copy(device: torch.device) -> tuple[float, dict[str, Any]]:
    """GB/s of a large device-to-device (or memory-to-memory) copy, counting the read and the write."""
    nbytes = 1 << 30 if device.type == "cuda" else 256 << 20
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    if device.type == "cuda":
        seconds = _cuda_seconds(lambda: dst.copy_(src), device, inner=10)
        timer = "cuda_events"
    else:
        seconds = _cpu_seconds(lambda: dst.copy_(src), reps=5)
        timer = "perf_counter"
    src = dst = torch.empty(0)  # free the buffers before the next measurement
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return 2 * nbytes / seconds / 1e9, {"bytes": nbytes, "timer": timer}


def measure(device: torch.device, precisions: Sequence[str], known: DevicePeaks | None = None) -> DevicePeaks:
    """Measure what ``known`` lacks: the copy once, the matrix product per precision (tf32 = fp32 on CPU)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    peaks = known or DevicePeaks(device_name=name, kind=device.type)
    wanted = {"fp32" if (device.type == "cpu" and p == "tf32") else p for p in precisions}
    for precision in sorted(p for p in wanted if _needs_measuring(peaks, p)):
        try:
            rate, info = measure_matmul(device, precision)
        except PeakUnavailable as why:
            peaks.matmul_tflops.pop(precision, None)
            peaks.measured[f"matmul_{precision}"] = {"unavailable": str(why)}
            log.info("peaks: %s %s: no peak, %s", name, precision, why)
            continue
        peaks.matmul_tflops[precision] = rate
        peaks.measured[f"matmul_{precision}"] = info
        log.info("peaks: %s %s matmul %.3f TFLOP/s", name, precision, rate)
    if not peaks.copy_gbps:
        peaks.copy_gbps, peaks.measured["copy"] = measure_copy(device)
        log.info("peaks: %s copy %.1f GB/s", name, peaks.copy_gbps)
    if not peaks.cache_bytes:
        peaks.cache_bytes = last_level_cache_bytes(device)
    peaks.measured.update(torch=torch.__version__, when=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return peaks


def _needs_measuring(peaks: DevicePeaks, precision: str) -> bool:
    """Neither a usable rate nor a recorded reason why this machine has none."""
    known = peaks.matmul_for(precision) is not None
    return not known and not peaks.measured.get(f"matmul_{precision}", {}).get("unavailable")


def load_cached(cache_dir: Path, device_name: str) -> DevicePeaks | None:
    path = cache_file(cache_dir, device_name)
    if not path.exists():
        return None
    try:
        return DevicePeaks.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError) as exc:
        log.warning("peaks: ignoring unreadable cache %s (%s)", path, exc)
        return None


def save(cache_dir: Path, peaks: DevicePeaks) -> Path:
    path = cache_file(cache_dir, peaks.device_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(peaks), indent=2) + "\n")
    return path


def get_peaks(
    device_name: str, precisions: Sequence[str], cache_dir: Path, allow_measure: bool = True
) -> tuple[DevicePeaks | None, str]:
    """Cached peaks of a device, measured here first if this machine has it; None and a reason otherwise."""
    cached = load_cached(cache_dir, device_name)
    needed = [p for p in precisions if cached is None or _needs_measuring(cached, p)]
    device = local_device(device_name)
    if cached is not None and not needed and cached.copy_gbps:
        if not cached.cache_bytes and device is not None:  # saved before the cache size was recorded
            cached.cache_bytes = last_level_cache_bytes(device)
            save(cache_dir, cached)
        return cached, f"cached in {cache_file(cache_dir, device_name)}"
    if device is None or not allow_measure:
        if cached is not None:
            return cached, f"cached (no peak for {', '.join(needed)}; measure on a machine with this device)"
        return None, (
            f"no measured peaks for {device_name!r}: not a device of this machine and not in "
            f"{cache_file(cache_dir, device_name)}; run `python -m blockbench.report.peaks` on that machine "
            "and copy the file, or pass --peaks FILE"
        )
    peaks = measure(device, precisions, cached)
    path = save(cache_dir, peaks)
    return peaks, f"measured on this machine, cached in {path}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: measure (or show cached) peaks of one local device and print them as JSON."""
    parser = argparse.ArgumentParser(prog="python -m blockbench.report.peaks", description=main.__doc__)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--precisions", nargs="+", default=None, help="default: fp32 int8 (CPU), fp32 tf32 fp16 bf16 int8 (GPU)"
    )
    parser.add_argument("--cache-dir", type=Path, default=project_root() / ".cache" / "blockbench")
    parser.add_argument("--force", action="store_true", help="measure again even if cached")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    gpu_precisions = ["fp32", "tf32", "fp16", "bf16", "int8"]
    precisions = args.precisions or (["fp32", "int8"] if device.type == "cpu" else gpu_precisions)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    known = None if args.force else load_cached(args.cache_dir, name)
    peaks = measure(device, precisions, known)
    path = save(args.cache_dir, peaks)
    print(json.dumps(asdict(peaks), indent=2))
    print(f"cached in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
