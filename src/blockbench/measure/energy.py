"""Energy per inference from the device's cumulative energy counter, read around a measurement window.

NVIDIA GPUs: NVML's total energy since the driver loaded (millijoules; ``nvmlDeviceGetTotalEnergyConsumption``,
Volta and later). CPUs: RAPL's package counter (microjoules) under ``/sys/class/powercap``, where the kernel
exposes it and it is readable. Both counters advance in steps (NVML's on the H200 every 100 ms: median 99.9 ms
between changes under load and at idle, ``benchmarks/energy_counter.py``), so a reading is up to one step old. The
meter therefore starts on a step (it waits for the counter to change before the window opens) and ends on one (it
waits for the next change after the window closes): the window's energy is exact, and it includes at most one step
of the device idling after the last inference (on the H200 at most 100 ms at ~130 W against a window of
``MIN_WINDOW_S`` or more). Energy is the whole device's, idle time within the window included: per request, the energy a
service pays while it waits for each answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from blockbench.measure.hardware import nvml_index

MIN_WINDOW_S = 1.0
STEP_WAIT_S = {"nvml": 0.25, "rapl": 0.01}  # longest wait for the counter's next step (then read it as it is)
RAPL = Path("/sys/class/powercap/intel-rapl:0")


@dataclass(frozen=True)
class EnergyReading:
    """What one window cost: joules over seconds, from ``source`` (``nvml`` or ``rapl``)."""

    joules: float
    seconds: float
    source: str

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")


class EnergyMeter:
    """Reads a device's energy counter at :meth:`start` and :meth:`stop`; ``unavailable`` says why it cannot."""

    def __init__(self, device: torch.device, reader: Callable[[], float] | None = None, source: str = "") -> None:
        self.unavailable = ""
        if reader is not None:
            self.read, self.source = reader, source or "given"
        else:
            found = nvml_reader(device) if device.type == "cuda" else rapl_reader()
            if isinstance(found, str):
                self.read, self.source, self.unavailable = _none, "", found
            else:
                self.read, self.source = found
        self._joules = 0.0
        self._start = 0.0

    def start(self) -> None:
        self._joules = self._next_step()
        self._start = time.monotonic()

    def stop(self) -> EnergyReading:
        joules = self._next_step()
        return EnergyReading(joules - self._joules, time.monotonic() - self._start, self.source)

    def _next_step(self) -> float:
        """The counter's value as soon as it changes (or after STEP_WAIT_S): a reading that is not stale."""
        first = self.read()
        deadline = time.perf_counter() + STEP_WAIT_S.get(self.source, 0.0)
        while time.perf_counter() < deadline:
            value = self.read()
            if value != first:
                return value
        return first


def _none() -> float:
    return 0.0


def nvml_reader(device: torch.device) -> tuple[Callable[[], float], str] | str:
    """NVML's total-energy counter of ``device`` in joules, or why it cannot be read."""
    try:
        import pynvml
    except ImportError:
        return "not available (no NVML bindings: pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(device))
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        return f"not available (NVML: {exc})"
    return (lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0), "nvml"


def rapl_reader(root: Path = RAPL) -> tuple[Callable[[], float], str] | str:
    """The CPU package's RAPL counter in joules (wrap-around handled), or why it cannot be read."""
    counter, limit = root / "energy_uj", root / "max_energy_range_uj"
    try:
        int(counter.read_text())
        wrap = int(limit.read_text()) if limit.exists() else 0
    except (OSError, ValueError) as exc:
        return f"not available (RAPL {counter}: {type(exc).__name__})"
    state = {"last": int(counter.read_text()), "total": 0}

    def read() -> float:
        now = int(counter.read_text())
        step = now - state["last"]
        state["total"] += step if step >= 0 or not wrap else step + wrap
        state["last"] = now
        return state["total"] / 1e6

    return read, "rapl"


def energy_tag(meter: EnergyMeter, reading: EnergyReading | None, cache: str) -> str:
    """The run's ``energy`` tag: the counter read, or why there is no energy figure, and any caveat."""
    if meter.unavailable:
        return meter.unavailable
    if reading is None:
        return "not measured (no measurement window)"
    notes = []
    if reading.seconds < MIN_WINDOW_S:
        notes.append(f"window {reading.seconds:.2f} s < {MIN_WINDOW_S:.0f} s: coarse, the counter steps")
    if cache == "flushed":
        notes.append("includes the cache-flush writes before each inference")
    return "; ".join([meter.source, *notes])
