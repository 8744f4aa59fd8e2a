"""Device resolution, numeric-mode switches and memory probes."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import psutil
import torch

from blockbench.axes.precisions import PRECISIONS
from blockbench.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` -> a device that exists here, else a :class:`ConfigError`."""
    match = _DEVICE.match(str(name))
    if not match or (match.group(1) == "cpu" and match.group(2)):
        raise ConfigError(f"hardware.device={name!r} is not allowed; choose one of: cpu, cuda, cuda:N")
    if match.group(1) == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"hardware.device={name!r} but no CUDA device is usable here (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda}); run on a machine with a CUDA GPU and a CUDA build of torch, or "
            "use hardware.device=cpu with a CPU backend (onnxruntime, torch)"
        )
    index = int(match.group(2) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"hardware.device={name!r} does not exist; this machine has cuda:0..cuda:{count - 1}")
    return torch.device("cuda", index)


def set_numeric_mode(precision: str, cpu_threads: int) -> None:
    """TF32 on only for ``tf32``; strict IEEE FP32 everywhere else. Also pins torch's CPU thread count."""
    allow_tf32 = PRECISIONS[precision].tf32
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.set_float32_matmul_precision("high" if allow_tf32 else "highest")
    if cpu_threads > 0:
        torch.set_num_threads(cpu_threads)


def nvml_index(device: torch.device) -> int:
    """NVML's index of a torch CUDA device (NVML ignores CUDA_VISIBLE_DEVICES; torch's indices follow it)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible and visible.split(",")[index].strip().isdigit():
        index = int(visible.split(",")[index])
    return index


def gpu_state(device: torch.device) -> dict[str, float]:
    """SM/memory clocks (MHz), temperature (C) and power (W) of a CUDA device now; empty if NVML is missing.

    Recorded at the start and end of measurement: a clock that dropped (thermal or power capping) or never
    ramped up explains a surprising latency.
    """
    if device.type != "cuda":
        return {}
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(device))
        state = {
            "sm_clock_mhz": float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "mem_clock_mhz": float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)),
            "temperature_c": float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
            "power_w": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        }
    except pynvml.NVMLError:
        return {}
    # Why the clocks are below their maximum now (NVML's bitmask, decoded by clock_event_names); older bindings
    # name the call "throttle reasons".
    reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    if reasons is not None:
        with contextlib.suppress(pynvml.NVMLError):
            state["clock_event_reasons"] = float(reasons(handle))
    return state


# NVML's clock-event reasons (nvmlClocksEventReason*), the bits an unstable run's tag spells out.
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def clock_event_names(mask: float) -> str:
    """``sw_power_cap+hw_slowdown`` for an NVML clock-event bitmask; ``none`` for 0."""
    bits = int(mask)
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if bits & bit]
    return "+".join(names) or "none"


def peak_memory_meaning(device_type: str) -> str:
    """What ``peak_memory_mb`` (MiB) is on a device type: said next to the number, in the summary and the docs."""
    if device_type == "cuda":
        return "device: torch allocator's peak + memory held outside it (sampled)"
    return "process high-water RSS"


def _process_peak_rss_bytes() -> int:
    """The OS's high-water mark of this process's resident memory, since the process started.

    ``ru_maxrss`` is kept by the kernel, so no allocation between two samples is missed (the export, the build).
    Linux reports KiB, macOS bytes; without ``resource`` (Windows) the current RSS is the best available.
    """
    try:
        import resource
    except ImportError:
        return int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class MemoryProbe:
    """Peak memory of a job (:func:`peak_memory_meaning`).

    CPU: the process's high-water RSS (the OS's, so it covers everything the process did: export, build and
    measurement; a job in a fresh worker process gets its own peak). GPU: torch's allocator peak since the probe
    was made (exact) plus the device memory held outside torch's allocator (TensorRT, ONNX Runtime, cuDNN
    workspaces), which only a sample can see.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            free, total = torch.cuda.mem_get_info(device)
            self.baseline_used = total - free - torch.cuda.memory_reserved(device)

    def sample(self) -> None:
        if self.device.type == "cuda":
            free, total = torch.cuda.mem_get_info(self.device)
            # Memory held outside torch's allocator (TensorRT, ONNX Runtime, cuDNN workspaces) since job start.
            foreign = max(0, total - free - torch.cuda.memory_reserved(self.device) - self.baseline_used)
            used = torch.cuda.max_memory_allocated(self.device) + foreign
        else:
            used = _process_peak_rss_bytes()
        self.peak_bytes = max(self.peak_bytes, used)

    @property
    def peak_mb(self) -> float:
        """The peak in MiB (2**20 bytes), the unit of the ``peak_memory_mb`` metric."""
        return self.peak_bytes / 2**20


def last_level_cache_bytes(device: torch.device) -> int:
    """The device's last-level cache: a GPU's L2 (torch's device properties), a CPU's L3 (sysfs); 0 if unknown."""
    if device.type == "cuda":
        return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
            level = int((index / "level").read_text())
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append((level, int(text.rstrip("KMG")) * scale))
    return max(sizes)[1] if sizes else 0
