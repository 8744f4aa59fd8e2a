"""The measuring GPU watched from the parent process while the timed window runs: clocks, power, heat, throttling.

Sampling happens in the parent (the job's watcher), never in the measuring worker: the measuring process runs no
thread and makes no NVML call for it. Whether 50 reads a second from another process disturb the GPU itself has
not been compared against sampling off. Readings are stamped with ``time.monotonic()`` (on Linux
the system-wide CLOCK_MONOTONIC), the clock the worker stamps its samples with, so a throttled span found here can
be matched to the worker's samples (:meth:`GpuObserver.inside`, for ``benchmark.throttle=discard``).

A reading is throttled when either holds (nvbench's rule, github.com/NVIDIA/nvbench/blob/main/docs/cli_help.md,
plus NVML's reasons):

* the SM clock is below ``clock_fraction`` (nvbench's ``--throttle-threshold``: 0.75) of the SM clock's maximum
  (``nvmlDeviceGetMaxClockInfo``), unless ``nvmlClocksEventReasonGpuIdle`` is set: an idle device at the sampling
  instant says nothing about the clock its kernels ran at;
* a clock-event reason in :data:`THROTTLE_REASONS` is set: the thermal and hardware slowdowns, which are
  disturbances (a hot card, an external power brake), not the device's normal behaviour under this load.

Benign bits: ``GpuIdle``; ``ApplicationsClocksSetting`` (= ``UserDefinedClocks``: clocks someone chose);
``SyncBoost`` (clocks matched across a sync-boost group, a setting); ``DisplayClockSetting``; and ``SwPowerCap``,
the driver holding a power-bound kernel at the board's power limit -- the steady state of heavy work on most data
centre GPUs, i.e. the performance the benchmark should report, not discard. When the power cap pulls the clock
below the threshold, the clock rule marks it anyway.
"""

from __future__ import annotations

import contextlib
import time
from types import ModuleType
from typing import Any

import numpy as np
import torch

from blockbench.measure.hardware import clock_event_names, nvml_index
from blockbench.measure.metric_names import (
    THROTTLED_S,
    WINDOW_POWER_MAX_W,
    WINDOW_SM_CLOCK_MIN,
    WINDOW_TEMPERATURE_MAX,
)

SAMPLE_PERIOD_S = 0.02  # the parent's intended cadence: one sample() every 20-50 ms of the benchmark stage
RECOVERY_S = 0.05  # nvbench's --throttle-recovery-delay: after a throttled reading, the clock is still recovering
CLOCK_FRACTION = 0.75  # nvbench's --throttle-threshold
WINDOW_GPU_READINGS = "window_gpu_readings"  # how many readings the summary rests on
GPU_IDLE = 0x1  # nvmlClocksEventReasonGpuIdle
CLOCKS_SET = 0x2  # nvmlClocksEventReasonApplicationsClocksSetting: application or locked clocks
# Reason bits that mark a reading throttled (pynvml's names; the same values under nvmlClocksThrottleReason*).
THROTTLE_REASONS = {
    "nvmlClocksEventReasonHwSlowdown": 0x8,  # HW slowdown: thermal or power brake, clocks cut by half or more
    "nvmlClocksEventReasonSwThermalSlowdown": 0x20,  # driver lowering clocks: GPU or memory too hot
    "nvmlClocksEventReasonHwThermalSlowdown": 0x40,  # hardware slowdown for temperature
    "nvmlClocksEventReasonHwPowerBrakeSlowdown": 0x80,  # external power brake (the system's power supply)
    "nvmlClocksThrottleReasonBoardLimit": 0x200,  # older bindings only
    "nvmlClocksThrottleReasonReliability": 0x400,  # older bindings only
}
THROTTLE_MASK = sum(THROTTLE_REASONS.values())


def _finite_max(values: np.ndarray) -> float:
    """The largest reading that NVML gave (NaN marks one it refused); NaN when it gave none."""
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else float("nan")


def _nvml() -> ModuleType:
    """The NVML bindings (raises ImportError without them); the one seam tests replace with a fake."""
    import pynvml

    return pynvml


class GpuObserver:
    """Samples one CUDA device through NVML; ``unavailable`` says why it cannot (CPU device, no NVML, NVML error)."""

    def __init__(self, device: torch.device, clock_fraction: float = CLOCK_FRACTION) -> None:
        self.unavailable = ""
        self.clock_fraction = clock_fraction
        self.max_clock = 0.0
        self.times: list[float] = []
        self.rows: list[tuple[float, float, float, int]] = []  # SM clock MHz, power W, temperature C, reasons
        self.failed = 0  # samples NVML refused (the device lost, a driver hiccup): skipped, not raised
        self._nv: Any = None
        if device.type != "cuda":
            self.unavailable = f"not observed: {device.type} device (NVML watches CUDA GPUs only)"
            return
        try:
            nv = _nvml()
        except ImportError:
            self.unavailable = "not observed: no NVML bindings (pip install nvidia-ml-py)"
            return
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            self.unavailable = f"not observed: NVML: {exc}"
            return
        self._nv = nv
        try:
            # An explicit index: torch.cuda.current_device() would create a CUDA context in the parent.
            self._handle = nv.nvmlDeviceGetHandleByIndex(nvml_index(torch.device("cuda", device.index or 0)))
            self.max_clock = float(nv.nvmlDeviceGetMaxClockInfo(self._handle, nv.NVML_CLOCK_SM))
            nv.nvmlDeviceGetClockInfo(self._handle, nv.NVML_CLOCK_SM)
        except (nv.NVMLError, IndexError) as exc:  # IndexError: CUDA_VISIBLE_DEVICES lists fewer devices
            self.unavailable = f"not observed: NVML: {exc}"
            self.close()
            return
        # Older bindings call the bitmask "throttle reasons"; without either only the clock rule applies.
        self._reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )

    def sample(self, now: float | None = None) -> None:
        """One reading (four NVML queries, well under a millisecond), stamped ``now`` or ``time.monotonic()``."""
        if self._nv is None:
            return
        nv, handle = self._nv, self._handle
        stamp = time.monotonic() if now is None else now
        try:
            clock = float(nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM))
        except nv.NVMLError:
            self.failed += 1
            return
        power = temperature = float("nan")
        reasons = 0
        with contextlib.suppress(nv.NVMLError):  # some boards report no power: the clock still counts
            power = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0
        with contextlib.suppress(nv.NVMLError):
            temperature = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        if self._reasons is not None:
            with contextlib.suppress(nv.NVMLError):
                reasons = int(self._reasons(handle))
        self.times.append(stamp)
        self.rows.append((clock, power, temperature, reasons))

    def restrict(self, start: float, end: float) -> None:
        """Keep only the readings within [start, end] widened by one period (the worker's first and last timed
        sample): the cold call and the warm-up ran in the same stage but are not what was measured."""
        pad = 2 * self._half_period()
        kept = [i for i, stamp in enumerate(self.times) if start - pad <= stamp <= end + pad]
        self.times = [self.times[i] for i in kept]
        self.rows = [self.rows[i] for i in kept]

    def throttled(self) -> np.ndarray:
        """Per reading: whether it is throttled (the module's rule)."""
        clock = np.array([row[0] for row in self.rows], dtype=float)
        reasons = np.array([row[3] for row in self.rows], dtype=np.int64)
        # idle: says nothing of the clock kernels ran at; clocks set by someone (locked or application clocks):
        # below the maximum by choice, not throttled (the reason bits still catch a slowdown)
        slow = (clock < self.clock_fraction * self.max_clock) & ((reasons & (GPU_IDLE | CLOCKS_SET)) == 0)
        return slow | ((reasons & THROTTLE_MASK) != 0)

    def _half_period(self) -> float:
        """Half the parent's actual cadence (the median gap between readings): the time one reading stands for."""
        gaps = np.diff(self.times)
        return float(np.median(gaps)) / 2 if gaps.size else SAMPLE_PERIOD_S / 2

    def window(self) -> tuple[float, float]:
        """The observed stretch: first to last reading, widened by half a period each side."""
        half = self._half_period()
        return (self.times[0] - half, self.times[-1] + half) if self.times else (0.0, 0.0)

    def spans(self) -> list[tuple[float, float]]:
        """Throttled (start, end) spans in monotonic seconds: each throttled reading covers half a period either
        side, plus RECOVERY_S after it (the clock climbs back); overlapping or touching spans are merged."""
        half = self._half_period()
        merged: list[list[float]] = []
        for stamp, hot in zip(self.times, self.throttled(), strict=True):
            if not hot:
                continue
            start, end = stamp - half, stamp + half + RECOVERY_S
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(start, end) for start, end in merged]

    def inside(self, times: np.ndarray) -> np.ndarray:
        """Which of the worker's sample timestamps (monotonic seconds) fall inside a throttled span."""
        stamps = np.asarray(times, dtype=float)
        spans = self.spans()
        if not spans:
            return np.zeros(stamps.shape, dtype=bool)
        starts, ends = np.array(spans).T
        slot = np.searchsorted(starts, stamps, side="right") - 1  # the last span starting at or before each stamp
        return (slot >= 0) & (stamps <= ends[np.clip(slot, 0, None)])

    def throttled_s(self) -> float:
        """Seconds of throttled spans within the observed window (the recovery padding does not reach past it)."""
        low, high = self.window()
        return sum(max(0.0, min(end, high) - max(start, low)) for start, end in self.spans())

    def summary(self) -> dict[str, float]:
        """The run's window metrics; empty when nothing was observed (the tag says why)."""
        if not self.rows:
            return {}
        data = np.array(self.rows, dtype=float)
        return {
            THROTTLED_S: self.throttled_s(),
            WINDOW_SM_CLOCK_MIN: float(data[:, 0].min()),
            WINDOW_POWER_MAX_W: _finite_max(data[:, 1]),
            WINDOW_TEMPERATURE_MAX: _finite_max(data[:, 2]),
            WINDOW_GPU_READINGS: float(len(self.rows)),
        }

    def tag(self) -> str:
        """One line for the run's ``throttled`` tag: false, true with how long and why, or not observed and why."""
        if self.unavailable:
            return self.unavailable
        if not self.rows:
            return "not observed: no readings in the window" + (f" ({self.failed} NVML errors)" if self.failed else "")
        clocks = f"SM clock min {min(row[0] for row in self.rows):.0f} MHz of max {self.max_clock:.0f}"
        hot = self.throttled()
        if not hot.any():
            return f"false ({len(self.rows)} readings, {clocks})"
        bits = 0
        for row, flag in zip(self.rows, hot, strict=True):
            bits |= row[3] if flag else 0
        reasons = clock_event_names(bits & ~GPU_IDLE)
        if reasons == "none":
            reasons = f"none, clock below {self.clock_fraction:.0%} of max"
        low, high = self.window()
        return f"true: {self.throttled_s():.1f} s of {high - low:.1f} s ({clocks}, reasons: {reasons})"

    def close(self) -> None:
        """Shut NVML down if this observer initialised it (nvmlShutdown is reference-counted: others keep theirs)."""
        if self._nv is not None:
            with contextlib.suppress(self._nv.NVMLError):
                self._nv.nvmlShutdown()
            self._nv = None

    def __enter__(self) -> GpuObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
