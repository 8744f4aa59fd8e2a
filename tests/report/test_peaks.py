"""The roofline's INT8 peak is an integer matrix product, or there is no INT8 floor and the report says why."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from blockbench.report import peaks as peaks_module
from blockbench.report.peaks import INT_GEMM_OP, DevicePeaks, measure, measure_matmul
from blockbench.report.roofline import compute_roofline, peaks_markdown
from blockbench.report.store import load_runs
from tests.report.test_report import SYNTHETIC_DEVICE, SyntheticStore


def test_the_int8_peak_is_timed_with_an_integer_product_on_the_cpu() -> None:
    rate, info = measure_matmul(torch.device("cpu"), "int8")
    assert info["op"] == INT_GEMM_OP and info["b"] == "column-major" and rate > 0


def test_an_int8_peak_not_measured_as_an_integer_product_is_not_used() -> None:
    """A cache written when INT8 was timed with the FP32 product (its dtype record is float32)."""
    legacy = DevicePeaks("CPU", "cpu", {"fp32": 0.1, "int8": 0.1}, measured={"matmul_int8": {"n": 1024}})
    assert legacy.matmul_for("fp32") == 0.1
    assert legacy.matmul_for("int8") is None
    assert "not measured with an integer matrix product" in legacy.missing_reason("int8")


def test_without_an_integer_product_int8_runs_get_no_floor_and_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(torch, "_int_mm")
    found = measure(torch.device("cpu"), ["int8"], DevicePeaks(SYNTHETIC_DEVICE, "cpu", copy_gbps=1.0))
    assert "int8" not in found.matmul_tflops
    assert "has no integer matrix product" in found.measured["matmul_int8"]["unavailable"]
    found.matmul_tflops["fp32"] = 0.001
    found.measured["matmul_fp32"] = {"n": 256}

    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep int8 roofline")
    store.child(parent, "vgg", "bn", "relu", 64, "fp32", 2.0)
    store.child(parent, "vgg", "bn", "relu", 64, "int8", 1.0)
    roof = compute_roofline(load_runs(store.uri, "blockbench"), "latency_ms_median", tmp_path / "cache", False, [found])
    rows = roof.table.set_index("precision")
    assert rows.loc["fp32", "floor_ms"] > 0
    assert math.isnan(rows.loc["int8", "floor_ms"])  # not an FP32 rate standing in for an integer one
    assert any(note.startswith(f"{SYNTHETIC_DEVICE}: no INT8 floor: torch ") for note in roof.notes)
    assert "INT8" not in peaks_markdown(roof).splitlines()[0]


def test_an_unavailable_int8_peak_is_remembered_not_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    known = DevicePeaks("CPU", "cpu", copy_gbps=1.0, cache_bytes=1, measured={"matmul_int8": {"unavailable": "none"}})

    def must_not_measure(*args: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(peaks_module, "measure_matmul", must_not_measure)
    assert measure(torch.device("cpu"), ["int8"], known).matmul_for("int8") is None
