"""How often NVML's total-energy counter advances, under load and at idle: the shortest window worth reading.

Polls ``nvmlDeviceGetTotalEnergyConsumption`` as fast as the host can while the GPU runs back-to-back matrix
products (and then while it idles), and prints a table: polls, distinct values, median and p90 time between
changes, mean power from the counter and from ``nvmlDeviceGetPowerUsage``. Needs a CUDA GPU and nvidia-ml-py.

    python benchmarks/energy_counter.py --seconds 3
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import pynvml
import torch
from job_rows import markdown, show_progress

from blockbench.measure.hardware import nvml_index


def poll(handle: object, seconds: float) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(times of each change, counter values at the changes in mJ, power readings in W)."""
    times, values, power = [], [], []
    end = time.monotonic() + seconds
    last = None
    while (now := time.monotonic()) < end:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        if value != last:
            times.append(now)
            values.append(value)
            last = value
        if len(power) < 1000:
            power.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
    return np.asarray(times), np.asarray(values, dtype=float), power


def busy(stop: threading.Event, device: torch.device) -> None:
    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    while not stop.is_set():
        for _ in range(20):
            a @ a
        torch.cuda.synchronize(device)


def counter_row(name: str, times: np.ndarray, values: np.ndarray, power: list[float]) -> dict[str, str]:
    """One table row: how often the counter changed, and the mean power it implies beside the power readings'."""
    gaps = np.diff(times) * 1000
    watts = (values[-1] - values[0]) / 1000 / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {
        "load": name,
        "counter changes": str(len(values)),
        "median ms between changes": f"{np.median(gaps):.1f}",
        "p90 ms": f"{np.percentile(gaps, 90):.1f}",
        "W from counter": f"{watts:.0f}",
        "W from power reading": f"{np.mean(power):.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    device = torch.device("cuda")
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(device))
    print(f"{pynvml.nvmlDeviceGetName(handle)}, driver {pynvml.nvmlSystemGetDriverVersion()}")
    stop = threading.Event()
    worker = threading.Thread(target=busy, args=(stop, device))
    worker.start()
    time.sleep(0.5)  # clocks ramp up
    rows = [counter_row("fp16 matmul loop", *poll(handle, args.seconds))]
    show_progress(rows[-1])
    stop.set()
    worker.join()
    time.sleep(0.5)
    rows.append(counter_row("idle", *poll(handle, args.seconds)))
    print(markdown(rows))


if __name__ == "__main__":
    main()
