"""The parent's observation of the GPU added to a worker's result: tagged, and with throttle=discard the samples
inside throttled spans dropped, counted and the statistics recomputed — never silently, never down to nothing."""

from __future__ import annotations

import numpy as np
import torch

from blockbench.config.schema import BenchmarkConfig
from blockbench.job.execute import ExecutionResult
from blockbench.job.observation import THROTTLED_TAG, add_observation
from blockbench.measure import metric_names as names
from blockbench.measure import observer as observer_module
from blockbench.measure.harness import LatencyResult
from blockbench.measure.observer import GpuObserver


class _FakeNvml:
    """One GPU whose SM clock drops to half between 1.0 s and 1.5 s."""

    NVML_CLOCK_SM = 0
    NVML_TEMPERATURE_GPU = 0
    NVMLError = RuntimeError
    now = 0.0

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetMaxClockInfo(self, handle: int, kind: int) -> int:
        return 2000

    def nvmlDeviceGetClockInfo(self, handle: int, kind: int) -> int:
        return 1000 if 1.0 <= self.now < 1.5 else 2000

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 300_000

    def nvmlDeviceGetTemperature(self, handle: int, kind: int) -> int:
        return 60

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return 0


def _observed(monkeypatch) -> GpuObserver:
    fake = _FakeNvml()
    monkeypatch.setattr(observer_module, "_nvml", lambda: fake)
    monkeypatch.setattr(observer_module, "nvml_index", lambda device: 0)
    observer = GpuObserver(torch.device("cuda", 0), 0.75)
    for stamp in np.arange(0.0, 3.0, 0.02):
        fake.now = float(stamp)
        observer.sample(float(stamp))
    return observer


def _result() -> ExecutionResult:
    times = np.linspace(0.1, 2.9, 200)
    samples = np.where((times > 1.0) & (times < 1.5), 2.0, 1.0)  # twice as slow while the clock was halved
    latency = LatencyResult(samples, 1.0, 1, "cuda_event", sample_times_s=times)
    return ExecutionResult(metrics=latency.summary(), latency=latency)


def test_discard_drops_the_samples_inside_the_throttled_span_and_says_so(monkeypatch) -> None:
    result = _result()
    add_observation(result, _observed(monkeypatch), BenchmarkConfig(throttle="discard"), "")
    dropped = int(result.metrics[names.THROTTLE_DISCARDED])
    assert 30 <= dropped <= 45  # the 0.5 s span of 200 samples over 2.8 s, padded by recovery and half a period
    assert result.metrics["iterations"] == 200 - dropped and result.metrics["latency_ms_max"] == 1.0
    assert result.tags[THROTTLED_TAG].startswith("true: 0.") and "discarded" in result.tags[THROTTLED_TAG]
    assert result.metrics[names.WINDOW_SM_CLOCK_MIN] == 1000 and result.metrics[names.THROTTLED_S] > 0.5
    assert len(result.series[0][1]) == 200 - dropped


def test_tag_keeps_every_sample_and_tags_the_window(monkeypatch) -> None:
    result = _result()
    add_observation(result, _observed(monkeypatch), BenchmarkConfig(throttle="tag"), "")
    assert result.metrics["iterations"] == 200 and names.THROTTLE_DISCARDED not in result.metrics
    assert result.tags[THROTTLED_TAG].startswith("true:")


def test_discard_keeps_everything_when_too_few_samples_would_remain(monkeypatch) -> None:
    times = np.linspace(1.1, 1.4, 10)  # every sample inside the span
    latency = LatencyResult(np.ones(10), 1.0, 1, "cuda_event", sample_times_s=times)
    result = ExecutionResult(metrics=latency.summary(), latency=latency)
    add_observation(result, _observed(monkeypatch), BenchmarkConfig(throttle="discard"), "")
    assert result.metrics[names.THROTTLE_DISCARDED] == 0 and result.metrics["iterations"] == 10
    assert "kept: too few would remain" in result.tags[THROTTLED_TAG]


def test_nothing_observed_says_why() -> None:
    result = _result()
    add_observation(result, None, BenchmarkConfig(), "run.isolation=inline")
    assert result.tags[THROTTLED_TAG] == "not observed: run.isolation=inline"
    cpu = ExecutionResult(latency=result.latency)
    add_observation(cpu, GpuObserver(torch.device("cpu")), BenchmarkConfig(), "")
    assert cpu.tags[THROTTLED_TAG].startswith("not observed: cpu device")
