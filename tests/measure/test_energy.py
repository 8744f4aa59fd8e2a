"""Energy per inference on a fake counter: the harness's window, the arithmetic, the tags, RAPL's wrap-around."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from blockbench.measure import energy
from blockbench.measure.energy import MIN_WINDOW_S, EnergyMeter, energy_tag, rapl_reader
from blockbench.measure.harness import PIPELINE_DEPTH, measure
from blockbench.measure.metric_names import ENERGY_MEAN_W, ENERGY_PER_INFERENCE, ENERGY_WINDOW_S
from tests.measure.test_benchmark import FakeClock, FakeStep, settings


def constant_power(fake: FakeClock, watts: float, step_s: float = 0.0):
    """A counter in joules that a device at ``watts`` would show; ``step_s`` > 0 makes it advance in steps."""

    def read() -> float:
        seconds = fake.ns / 1e9
        if step_s:
            seconds = (seconds // step_s) * step_s
        return watts * seconds

    return read


@pytest.fixture
def meter_clock(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    monkeypatch.setattr(energy.time, "monotonic", clock.monotonic)
    return clock


def test_energy_per_inference_is_the_window_energy_over_its_inferences(meter_clock: FakeClock) -> None:
    meter = EnergyMeter(torch.device("cpu"), reader=constant_power(meter_clock, 250.0), source="fake")
    result = measure(FakeStep(meter_clock, [2.0]), settings(min_iters=600), meter=meter)
    stats = result.summary()
    assert result.energy_inferences == result.samples_ms.size == 600
    assert stats[ENERGY_PER_INFERENCE] == pytest.approx(250.0 * 2.0)  # W x ms = mJ
    assert stats[ENERGY_MEAN_W] == pytest.approx(250.0)
    assert stats[ENERGY_WINDOW_S] == pytest.approx(1.2)
    assert energy_tag(meter, result.energy, "warm") == "fake"


def test_the_window_excludes_the_cold_call_and_the_warm_up(meter_clock: FakeClock) -> None:
    meter = EnergyMeter(torch.device("cpu"), reader=constant_power(meter_clock, 100.0), source="fake")
    result = measure(FakeStep(meter_clock, [1.0], cold_ms=5000.0), settings(warmup_iters=500), meter=meter)
    assert result.energy is not None
    assert result.energy.seconds == pytest.approx(result.samples_ms.sum() / 1000.0)


def test_pipelined_only_meters_the_pipelined_inferences(meter_clock: FakeClock) -> None:
    meter = EnergyMeter(torch.device("cpu"), reader=constant_power(meter_clock, 300.0), source="fake")
    result = measure(FakeStep(meter_clock, [1.0]), settings(timing="pipelined", min_iters=400), meter=meter)
    assert result.energy_inferences == result.pipelined_ms.size * PIPELINE_DEPTH
    assert result.summary()[ENERGY_PER_INFERENCE] == pytest.approx(300.0)


def test_a_window_shorter_than_the_counter_allows_is_logged_and_flagged(meter_clock: FakeClock) -> None:
    """A 0.2 s window on a counter that steps every 100 ms: the figure stays, the tag says it is coarse."""
    meter = EnergyMeter(torch.device("cpu"), reader=constant_power(meter_clock, 200.0, step_s=0.1), source="fake")
    result = measure(FakeStep(meter_clock, [2.0]), settings(min_iters=100), meter=meter)
    assert result.energy is not None and result.energy.seconds < MIN_WINDOW_S
    assert ENERGY_PER_INFERENCE in result.summary()
    tag = energy_tag(meter, result.energy, "flushed")
    assert tag.startswith("fake; window 0.20 s < 1 s") and "cache-flush" in tag


def test_a_stepped_counter_is_accurate_over_a_long_window(meter_clock: FakeClock) -> None:
    meter = EnergyMeter(torch.device("cpu"), reader=constant_power(meter_clock, 200.0, step_s=0.1), source="fake")
    result = measure(FakeStep(meter_clock, [2.0]), settings(min_iters=2000), meter=meter)
    assert result.summary()[ENERGY_PER_INFERENCE] == pytest.approx(400.0, rel=0.05)


def test_no_counter_means_no_energy_metrics_and_a_reason(meter_clock: FakeClock, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(energy, "RAPL", tmp_path / "missing")
    meter = EnergyMeter(torch.device("cpu"))
    assert meter.unavailable.startswith("not available (RAPL")
    result = measure(FakeStep(meter_clock, [1.0]), settings(), meter=meter)
    assert result.energy is None and ENERGY_PER_INFERENCE not in result.summary()
    assert energy_tag(meter, result.energy, "warm") == meter.unavailable


def test_rapl_counter_in_microjoules_with_wrap_around(tmp_path: Path) -> None:
    (tmp_path / "energy_uj").write_text("999000000\n")
    (tmp_path / "max_energy_range_uj").write_text("1000000000\n")
    read = rapl_reader(tmp_path)
    assert not isinstance(read, str)
    reader, source = read
    assert source == "rapl" and reader() == 0.0
    (tmp_path / "energy_uj").write_text("999500000\n")
    assert reader() == pytest.approx(0.5)
    (tmp_path / "energy_uj").write_text("1000000\n")  # wrapped past its range
    assert reader() == pytest.approx(0.5 + 0.5 + 1.0)


def test_an_unreadable_rapl_counter_says_why(tmp_path: Path) -> None:
    (tmp_path / "energy_uj").write_text("not a number")
    reason = rapl_reader(tmp_path)
    assert isinstance(reason, str) and "ValueError" in reason


def test_the_meter_opens_and_closes_the_window_on_a_counter_step(monkeypatch) -> None:
    """A counter that advances every 5th read: start and stop each wait for a change, so neither reading is stale."""
    reads = {"n": 0}

    def stepped() -> float:
        reads["n"] += 1
        return float(reads["n"] // 5)

    monkeypatch.setitem(energy.STEP_WAIT_S, "stepped", 1.0)
    meter = EnergyMeter(torch.device("cpu"), reader=stepped, source="stepped")
    meter.start()
    assert reads["n"] == 5  # read 1 gives 0; reads 2-4 unchanged; read 5 is the step
    reads["n"] = 22  # the window: the counter moved on by 17 reads, to value 4 (22 // 5), not yet a step
    reading = meter.stop()
    assert reads["n"] == 25 and reading.joules == 5.0 - 1.0  # stop waited for the step to 5
