"""The latency figures draw each bar's 95 % interval of the median, and say what it covers and which bars lack one."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from blockbench.measure import metric_names as names
from blockbench.report.data import OK
from blockbench.report.figures import INTERVAL_GID, _panel, cell_intervals, latency_figures
from blockbench.report.store import load_runs
from tests.report.test_report import SyntheticStore

# (block, latency median, (ci low, ci high) or None) at 64x64 FP16 BN ReLU; VGG measured twice.
RUNS = [
    ("vgg", 2.0, (1.9, 2.1)),
    ("vgg", 2.2, (2.0, 2.3)),
    ("mobilenet", 1.0, (0.95, 1.05)),
    ("convnext", 5.0, None),  # a run that logged no interval
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStore:
    store = SyntheticStore(tmp_path_factory.mktemp("figures"))
    parent = store.parent("sweep figures")
    for block, median, interval in RUNS:
        run = store.child(parent, block, "bn", "relu", 64, "fp16", median)
        if interval is not None:
            store.client.log_metric(run, names.LATENCY_MEDIAN_CI_LOW, interval[0])
            store.client.log_metric(run, names.LATENCY_MEDIAN_CI_HIGH, interval[1])
    return store


def test_a_cells_interval_is_its_runs_interval_or_for_repeats_their_union(store: SyntheticStore) -> None:
    found = cell_intervals(load_runs(store.uri, "blockbench").frame, names.LATENCY_MEDIAN).set_index("block")
    assert (found.loc["vgg", "ci_low"], found.loc["vgg", "ci_high"], found.loc["vgg", "n_runs"]) == (1.9, 2.3, 2)
    assert (found.loc["mobilenet", "ci_low"], found.loc["mobilenet", "ci_high"]) == (0.95, 1.05)
    assert found["ci_low"].isna().tolist() == [b == "convnext" for b in found.index]


def test_each_bar_with_an_interval_draws_it_as_an_error_bar_from_low_to_high() -> None:
    grid = pd.DataFrame(
        {
            "block": ["vgg", "mobilenet", "convnext"],
            "norm": "bn",
            "act": "relu",
            "value": [2.1, 1.0, 5.0],
            "state": OK,
            "ci_low": [1.9, 0.95, float("nan")],
            "ci_high": [2.3, 1.05, float("nan")],
        }
    )
    fig, ax = plt.subplots()
    _panel(ax, grid, ["vgg", "mobilenet", "convnext"], [("bn", "relu")], "test")
    spans = sorted(
        (round(float(seg[:, 1].min()), 6), round(float(seg[:, 1].max()), 6))
        for container in ax.containers
        if container.__class__.__name__ == "ErrorbarContainer"
        for seg in container.lines[2][0].get_segments()
    )
    plt.close(fig)
    assert spans == [(0.95, 1.05), (1.9, 2.3)]  # none for the bar without an interval


def test_the_svg_has_one_error_bar_per_bar_with_an_interval_and_a_caption_saying_what_it_covers(
    store: SyntheticStore, tmp_path: Path
) -> None:
    latency_figures(load_runs(store.uri, "blockbench"), tmp_path, compare_paper=True)
    svg = (tmp_path / "figures" / "latency_64.svg").read_text()
    assert sorted(re.findall(rf'id="{INTERVAL_GID}-(\w+)-bn-relu"', svg)) == ["mobilenet", "vgg"]
    text = " ".join(re.sub(r"<[^>]+>", " ", svg).split())
    assert "within one process's samples; does not cover rebuild-to-rebuild variation" in text
    assert "several runs (1 here): bar = median of their medians, error bar = lowest to highest of their" in text
    assert "No error bar on 1 of 3 measured bars: their runs logged no interval." in text
    assert "paper (TensorRT 8.5, RTX 3090 Ti) · FP32 (TF32 allowed)" in text and "· strict FP32" not in text
