"""A single run's printed summary says what decided each verdict, and names derived figures and units truly."""

from __future__ import annotations

import resource
from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig

from blockbench.axes import precisions
from blockbench.measure import hardware
from blockbench.measure import metric_names as names
from blockbench.sweep import summary as sweep


def _timed_result(parity: str, rel_l2: float, cov: float) -> sweep.JobResult:
    metrics = {
        names.PARAMS: 1e6,
        names.MACS: 1e9,
        names.LATENCY_MEDIAN: 2.0,
        names.LATENCY_MEDIAN_CI_LOW: 1.9,
        names.LATENCY_MEDIAN_CI_HIGH: 2.1,
        names.LATENCY_P99: 2.5,
        names.LATENCY_COV: cov,
        "throughput_qps": 500.0,
        names.PARITY_MAX_ABS: 3e-6,
        names.PARITY_REL_L2: rel_l2,
        names.BUILD_S: 0.5,
        names.EXPORT_S: 1.0,
        "peak_memory_mb": 321.0,
    }
    return sweep.JobResult(run_id=None, metrics=metrics, tags={"parity": parity, "timer": "perf_counter"})


def test_summary_prints_the_parity_verdict_with_the_number_and_tolerance_that_decide_it(
    compose_cfg: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(precisions.TOLERANCE, "fp32", 0.0)  # as a run with the FP32 tolerance forced to 0
    sweep.print_run_summary(compose_cfg("precision=fp32"), _timed_result("fail", 2.5e-7, 0.004))
    out = capsys.readouterr().out
    assert "parity FAIL (relative L2 2.5e-07, tolerance 0;" in out
    assert "UNSTABLE" not in out


def test_summary_marks_an_unstable_cov_and_names_derived_figures_and_units(
    compose_cfg: Callable[..., DictConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    sweep.print_run_summary(compose_cfg(), _timed_result("pass", 1e-7, 0.05))
    out = capsys.readouterr().out
    assert "parity pass (relative L2 1e-07, tolerance 0.001;" in out
    assert "CoV 5.0 % UNSTABLE (> 1 %)" in out
    assert "batch/median = 500.0 images/s" in out and "img/s" not in out
    assert "peak memory 321 MiB (process high-water RSS)" in out


@pytest.mark.parametrize(("cov", "unstable"), [(0.009, False), (0.015, True)])
def test_summary_marks_a_cov_between_trtexecs_two_thresholds_unstable(
    compose_cfg: Callable[..., DictConfig], capsys: pytest.CaptureFixture[str], cov: float, unstable: bool
) -> None:
    """1.5 % is stable by trtexec's 2.5 % (TensorRT >= 10.13.2) but not by its 1 % (8.4-10.13.0, the paper's 8.5)."""
    sweep.print_run_summary(compose_cfg(), _timed_result("pass", 1e-7, cov))
    out = capsys.readouterr().out
    assert ("UNSTABLE (> 1 %)" in out) is unstable


def test_cpu_memory_probe_reports_the_process_high_water_mark_in_mib() -> None:
    """A peak reached between the probe's samples (an export, a build) is still the peak: the OS keeps it."""
    process = hardware.psutil.Process()
    probe = hardware.MemoryProbe(torch.device("cpu"))
    probe.sample()
    # Beyond every earlier peak of this process, then freed before the next sample.
    extra = max(0, probe.peak_bytes - process.memory_info().rss) + 128 * 2**20
    buffer = torch.ones(extra // 4, dtype=torch.float32)
    at_peak = process.memory_info().rss
    del buffer
    probe.sample()
    assert probe.peak_bytes >= 0.98 * at_peak > process.memory_info().rss
    assert probe.peak_mb == pytest.approx(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
