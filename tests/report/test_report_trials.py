"""Runs with trials (fresh processes and builds) in the report: the covering interval judges their cells, each
verdict says which interval it used, the figures draw it, and every bootstrap seed comes from content."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from blockbench.measure import latencies
from blockbench.measure import metric_names as names
from blockbench.measure.statistics import median_over_trials, seed_for, trials_interval
from blockbench.report.data import OK, cells
from blockbench.report.evaluation import compute_findings
from blockbench.report.figures import INTERVAL_GID, TRIALS_INTERVAL_GID, cell_intervals, latency_figures
from blockbench.report.findings import (
    KEYS,
    TRIALS_COLUMN,
    cell_seed,
    findings_markdown,
    interval_used,
    with_bootstrap,
)
from blockbench.report.store import load_runs, load_trials
from tests.report.test_report import SyntheticStore

SPREAD = 0.002  # within each trial: tightly measured; the builds are what differ


def builds(medians: list[float], seed: int, n: int = 60) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [m + SPREAD * rng.standard_normal(n) for m in medians]


def trials_run(store: SyntheticStore, parent: str, block: str, norm: str, trials: list[np.ndarray]) -> str:
    """A FINISHED run whose latencies.csv holds ``trials``, with the metrics a job with trials logs."""
    median = median_over_trials(trials) if len(trials) > 1 else float(np.median(trials[0]))
    run = store.child(parent, block, norm, "relu", 64, "fp16", median)
    text = latencies.HEADER + "\n"
    text += "".join(f"{t},per_request,{i},{v:.6f}\n" for t, s in enumerate(trials) for i, v in enumerate(s))
    store.client.log_text(run, text, latencies.FILE)
    store.client.log_metric(run, names.TRIALS, float(len(trials)))
    low, high = (float(np.percentile(trials[0], p)) for p in (40, 60))  # a within-trial interval, narrow
    store.client.log_metric(run, names.LATENCY_MEDIAN_CI_LOW, low)
    store.client.log_metric(run, names.LATENCY_MEDIAN_CI_HIGH, high)
    if len(trials) > 1:
        low, high = trials_interval(trials, seed_for(f"{block}-{norm}"), 500)
        store.client.log_metric(run, names.LATENCY_MEDIAN_TRIALS_CI_LOW, low)
        store.client.log_metric(run, names.LATENCY_MEDIAN_TRIALS_CI_HIGH, high)
    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStore:
    store = SyntheticStore(tmp_path_factory.mktemp("trials"))
    parent = store.parent("sweep with trials")
    # VGG: LN 1.5x BN in every build: holds, whatever the builds' spread
    trials_run(store, parent, "vgg", "bn", builds([1.0, 1.06, 0.94], 1))
    trials_run(store, parent, "vgg", "ln", builds([1.5, 1.59, 1.41], 2))
    # MobileNet: 6 % apart, but builds differ by ±8 %: one process each would say "holds"; the trials cannot tell
    trials_run(store, parent, "mobilenet", "bn", builds([1.0, 1.08, 0.92], 3))
    trials_run(store, parent, "mobilenet", "ln", builds([1.06, 1.145, 0.975], 4))
    # ConvNeXt: one trial each, 50 % apart: within one process
    trials_run(store, parent, "convnext", "bn", builds([2.0], 5))
    trials_run(store, parent, "convnext", "ln", builds([3.0], 6))
    return store


def test_cells_with_trials_are_judged_by_the_interval_covering_them_and_say_so(store: SyntheticStore) -> None:
    finding = next(f for f in compute_findings(load_runs(store.uri, "blockbench")) if f.id == "bn_faster_than_ln")
    rows = finding.details.set_index("Architecture")
    assert rows.loc["VGG", "verdict"] == "holds" and rows.loc["VGG", "interval"] == "covering 3 trials"
    assert rows.loc["MobileNet", "verdict"] == "cannot tell"
    assert rows.loc["MobileNet", "interval"] == "covering 3 trials"
    low, high = (float(v) for v in rows.loc["MobileNet", "LN/BN: 95 % interval"].rstrip("×").split("–"))
    assert low < 1.0 and high > 1.1  # the builds' spread, not one process's noise
    assert rows.loc["ConvNeXt", "verdict"] == "holds" and rows.loc["ConvNeXt", "interval"] == "within one process"
    text = findings_markdown([finding], names.LATENCY_MEDIAN)
    assert "- intervals: covering 3 trials in 2 rows; within one process in 1 rows" in text
    assert "each row's *interval* column says which" in text


def test_the_same_cells_pooled_into_one_process_would_have_called_the_mobilenet_pair(store: SyntheticStore) -> None:
    """The control: the trials' samples pooled (what the report did before trials) give a narrow interval."""
    runs = load_runs(store.uri, "blockbench")
    pooled = {run: np.concatenate(trials) for run, trials in load_trials(runs).items()}
    grid = cells(runs.frame, names.LATENCY_MEDIAN)
    grid = with_bootstrap(grid[grid["state"] == OK].reset_index(drop=True), pooled).set_index(["block", "norm"])
    assert grid.loc[("mobilenet", "bn"), TRIALS_COLUMN] == (1,)
    ratio = grid.loc[("mobilenet", "ln"), "boot"] / grid.loc[("mobilenet", "bn"), "boot"]
    low, high = np.percentile(ratio, [2.5, 97.5])
    assert high - low < 0.03  # one process's noise only: a verdict the builds do not support


def test_a_cells_bootstrap_seed_is_its_content_not_its_run_ids() -> None:
    cell = {"block": "vgg", "norm": "bn", "act": "relu", "resolution": 64, "precision": "fp16", "label": "torch"}
    trials = builds([1.0, 1.1, 0.9], 7, n=20)
    grids = [pd.DataFrame([{**cell, "run_ids": (run,)}]) for run in ("run-in-store-a", "run-in-store-b")]
    boots = [with_bootstrap(g, {g.loc[0, "run_ids"][0]: trials}).loc[0, "boot"] for g in grids]
    assert np.array_equal(boots[0], boots[1])
    assert cell_seed(pd.Series(cell)) == seed_for("|".join(f"{k}={cell[k]}" for k in KEYS))
    assert cell_seed(pd.Series(cell)) != cell_seed(pd.Series({**cell, "norm": "ln"}))


def test_a_ratios_interval_is_named_from_the_cells_behind_it() -> None:
    assert interval_used((3, 3)) == "covering 3 trials"
    assert interval_used((3, 5)) == "covering 3–5 trials"
    assert interval_used((1, 1)) == "within one process"
    assert interval_used((3, 1)) == "mixed: covering 3 trials for some cells, within one process for others"
    assert interval_used(None) == "—"


def test_figures_draw_the_covering_interval_thick_for_runs_with_trials(store: SyntheticStore, tmp_path: Path) -> None:
    runs = load_runs(store.uri, "blockbench")
    found = cell_intervals(runs.frame, names.LATENCY_MEDIAN).set_index(["block", "norm"])
    vgg = runs.frame.set_index(["block", "norm"]).loc[("vgg", "bn")]
    assert found.loc[("vgg", "bn"), "ci_low"] == vgg[names.LATENCY_MEDIAN_TRIALS_CI_LOW]
    assert found.loc[("vgg", "bn"), "covering"] and found.loc[("vgg", "bn"), "n_trials"] == 3
    convnext = runs.frame.set_index(["block", "norm"]).loc[("convnext", "bn")]
    assert found.loc[("convnext", "bn"), "ci_low"] == convnext[names.LATENCY_MEDIAN_CI_LOW]
    assert not found.loc[("convnext", "bn"), "covering"]
    latency_figures(runs, tmp_path)
    svg = (tmp_path / "figures" / "latency_64.svg").read_text()
    covering = sorted(re.findall(rf'id="{TRIALS_INTERVAL_GID}-(\w+)-(\w+)-relu"', svg))
    assert covering == [("mobilenet", "bn"), ("mobilenet", "ln"), ("vgg", "bn"), ("vgg", "ln")]
    assert sorted(re.findall(rf'id="{INTERVAL_GID}-(\w+)-(\w+)-relu"', svg)) == [("convnext", "bn"), ("convnext", "ln")]
    text = " ".join(re.sub(r"<[^>]+>", " ", svg).split())
    assert "Thick error bars (4 here): 95 % interval of the median of trial medians, covering each run's 3" in text
    assert "Thin error bars: 95 % interval of each run's median" in text
