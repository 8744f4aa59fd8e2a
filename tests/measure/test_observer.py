"""The parent's GPU observer on a fake NVML: the throttle rule, the padded spans, the summary, the tag, the seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blockbench.measure import observer
from blockbench.measure.metric_names import THROTTLED_S, WINDOW_POWER_MAX_W, WINDOW_SM_CLOCK_MIN, WINDOW_TEMPERATURE_MAX
from blockbench.measure.observer import RECOVERY_S, WINDOW_GPU_READINGS, GpuObserver

CUDA = torch.device("cuda", 0)
MAX_MHZ = 1980.0
HW_THERMAL, SW_POWER_CAP, GPU_IDLE = 0x40, 0x4, 0x1


class FakeNvml:
    """The slice of pynvml the observer calls; the test sets what the device shows now."""

    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, fail_init: bool = False, old_bindings: bool = False) -> None:
        self.fail_init = fail_init
        self.clock, self.power_mw, self.temperature, self.reasons = MAX_MHZ, 300_000, 60, 0
        self.inits = self.shutdowns = 0
        if old_bindings:
            self.nvmlDeviceGetCurrentClocksThrottleReasons = self._reasons
        else:
            self.nvmlDeviceGetCurrentClocksEventReasons = self._reasons

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetMaxClockInfo(self, handle: str, kind: int) -> float:
        return MAX_MHZ

    def nvmlDeviceGetClockInfo(self, handle: str, kind: int) -> float:
        return self.clock

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return self.power_mw

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        return self.temperature

    def _reasons(self, handle: str) -> int:
        return self.reasons


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    monkeypatch.setattr(observer, "_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def run(gpu: GpuObserver, fake: FakeNvml, hot: tuple[float, float], **during: int) -> None:
    """Three seconds of readings every 20 ms; within ``hot`` (start, end) the device shows ``during``."""
    normal = {name: getattr(fake, name) for name in during}
    for index in range(150):
        now = index * 0.02
        for name, value in during.items():
            setattr(fake, name, value if hot[0] <= now < hot[1] else normal[name])
        gpu.sample(now=now)


def test_a_clock_below_threshold_is_a_padded_throttled_span(nvml: FakeNvml) -> None:
    gpu = GpuObserver(CUDA)
    run(gpu, nvml, (0.999, 1.499), clock=1000)  # readings 1.00 .. 1.48 below 75 % of 1980 MHz
    ((start, end),) = gpu.spans()
    assert start == pytest.approx(1.0 - 0.01)
    assert end == pytest.approx(1.48 + 0.01 + RECOVERY_S)
    stats = gpu.summary()
    assert stats[THROTTLED_S] == pytest.approx(0.55)
    assert stats[WINDOW_SM_CLOCK_MIN] == 1000.0
    assert stats[WINDOW_GPU_READINGS] == 150
    clocks = "SM clock min 1000 MHz of max 1980"
    assert gpu.tag() == f"true: 0.6 s of 3.0 s ({clocks}, reasons: none, clock below 75% of max)"


def test_the_recovery_padding_is_clipped_to_the_observed_window(nvml: FakeNvml) -> None:
    gpu = GpuObserver(CUDA)
    run(gpu, nvml, (2.959, 9.0), clock=900)  # the last two readings: 2.96, 2.98
    assert gpu.summary()[THROTTLED_S] == pytest.approx(2.99 - 2.95)


def test_a_thermal_slowdown_bit_throttles_at_full_clock(nvml: FakeNvml) -> None:
    gpu = GpuObserver(CUDA)
    run(gpu, nvml, (0.499, 0.501), reasons=HW_THERMAL | SW_POWER_CAP)
    ((start, end),) = gpu.spans()
    assert end - start == pytest.approx(0.02 + RECOVERY_S)
    assert gpu.tag().startswith("true: 0.1 s of 3.0 s (SM clock min 1980 MHz of max 1980, reasons: sw_power_cap+hw_")


@pytest.mark.parametrize(
    ("reasons", "clock"),
    [(GPU_IDLE, MAX_MHZ), (GPU_IDLE, 300), (SW_POWER_CAP, 1600), (0x2 | 0x10, MAX_MHZ), (0x2, 1400)],  # 0x2: set clocks
)
def test_benign_reasons_do_not_throttle(nvml: FakeNvml, reasons: int, clock: float) -> None:
    gpu = GpuObserver(CUDA)
    run(gpu, nvml, (1.0, 2.0), reasons=reasons, clock=int(clock))
    assert gpu.spans() == []
    assert gpu.summary()[THROTTLED_S] == 0.0
    assert gpu.tag() == f"false (150 readings, SM clock min {min(clock, MAX_MHZ):.0f} MHz of max 1980)"


def test_inside_selects_exactly_the_samples_in_the_spans(nvml: FakeNvml) -> None:
    gpu = GpuObserver(CUDA)
    for index in range(150):  # two throttled stretches: readings 0.40 .. 0.60 and 1.00 .. 1.48
        now = index * 0.02
        nvml.clock = 1000 if 0.399 < now < 0.601 or 0.999 < now < 1.499 else int(MAX_MHZ)
        gpu.sample(now=now)
    spans = gpu.spans()
    assert len(spans) == 2
    stamps = np.arange(0.0, 3.0, 0.007) + 0.0005
    expected = np.zeros(stamps.shape, dtype=bool)
    for low, high in spans:
        assert np.abs(stamps - low).min() > 1e-6 and np.abs(stamps - high).min() > 1e-6
        expected |= (stamps > low) & (stamps < high)
    np.testing.assert_array_equal(gpu.inside(stamps), expected)
    assert gpu.inside(stamps[(stamps > 0.99) & (stamps < 1.54)]).all()  # 0.99 .. 1.54: the second, padded
    assert expected.sum() == 39 + 78  # (0.39, 0.66) and (0.99, 1.54) at 7 ms


def test_summary_takes_the_window_peaks(nvml: FakeNvml) -> None:
    gpu = GpuObserver(CUDA)
    run(gpu, nvml, (1.0, 1.1), power_mw=412_500, temperature=83)
    stats = gpu.summary()
    assert stats[WINDOW_POWER_MAX_W] == pytest.approx(412.5)
    assert stats[WINDOW_TEMPERATURE_MAX] == 83.0


def test_a_cpu_device_is_not_observed_and_says_why(nvml: FakeNvml) -> None:
    gpu = GpuObserver(torch.device("cpu"))
    gpu.sample()
    assert gpu.unavailable and gpu.tag().startswith("not observed: cpu device")
    assert gpu.summary() == {}
    assert not gpu.inside(np.array([0.0, 1.0])).any()
    assert nvml.inits == 0


def test_an_nvml_error_at_open_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observer, "_nvml", lambda: FakeNvml(fail_init=True))
    gpu = GpuObserver(CUDA)
    gpu.sample()
    assert gpu.tag() == "not observed: NVML: Driver Not Loaded"
    gpu.close()


def test_missing_bindings_are_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("pynvml")

    monkeypatch.setattr(observer, "_nvml", missing)
    assert GpuObserver(CUDA).tag() == "not observed: no NVML bindings (pip install nvidia-ml-py)"


def test_older_bindings_read_the_throttle_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml(old_bindings=True)
    monkeypatch.setattr(observer, "_nvml", lambda: fake)
    gpu = GpuObserver(CUDA)
    run(gpu, fake, (1.0, 1.01), reasons=HW_THERMAL)
    assert len(gpu.spans()) == 1


def test_close_shuts_down_only_what_it_opened(nvml: FakeNvml) -> None:
    with GpuObserver(CUDA) as gpu:
        gpu.sample(now=0.0)
    gpu.close()
    assert (nvml.inits, nvml.shutdowns) == (1, 1)
    assert gpu.tag().startswith("false (1 readings")
