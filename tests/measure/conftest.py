"""The fake host clock the harness tests share: it moves only when a fake step runs."""

from __future__ import annotations

import pytest

from blockbench.measure import harness
from tests.measure.test_benchmark import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(harness.time, "perf_counter_ns", fake.perf_counter_ns)
    monkeypatch.setattr(harness.time, "monotonic", fake.monotonic)
    return fake
