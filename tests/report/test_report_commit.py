"""The report's header names the commit of its code as it was before the report rewrote its own outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

import blockbench.report as report_module
from blockbench.report.store import load_runs
from tests.report.test_report import SyntheticStore


def test_the_commit_is_read_before_any_output_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SyntheticStore(tmp_path)
    store.child(store.parent("sweep"), "vgg", "bn", "relu", 64, "fp16", 2.0)
    out = tmp_path / "out"
    # As git would say of a checkout whose committed report is being regenerated: dirty once an output is written.
    monkeypatch.setattr(report_module, "_report_commit", lambda: "abc-dirty" if any(out.rglob("*.*")) else "abc")
    report_module.build_report(load_runs(store.uri, "blockbench"), out, roofline=False)
    assert "at blockbench commit abc\n" in (out / "report.md").read_text()
