"""The report's table commands (``runs-table``, ``best-mode``) on hand-made stores, and the pure parts of the
measuring scripts in ``benchmarks/`` (their rows and tables), which need a GPU or minutes to run whole."""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from blockbench.compare import compare_samples
from blockbench.measure import metric_names as names
from blockbench.report.__main__ import COMMANDS, main, parse_args, report_command
from blockbench.report.best_mode import best_per_config, torch_variant, torch_variants
from blockbench.report.runs_table import latency_by_param, metrics_by_config
from blockbench.report.store import load_runs
from blockbench.report.tables import displayed, fmt_value, to_markdown
from tests.helpers import ROOT
from tests.report.test_report import SYNTHETIC_DEVICE, SyntheticStore

COMMIT = "0123456789abcdef"


def finished_run(store: SyntheticStore, parent: str, config: tuple, latency_ms: float, mode: str, **extra: str) -> str:
    """A FINISHED torch run of ``config`` (block, norm, act, resolution, precision) at a commit, with extra params."""
    time.sleep(0.01)  # a distinct start time: the newest run of a configuration is the one that counts
    run_id = store.child(parent, *config, latency_ms, mode=mode)
    store.client.set_tag(run_id, "git_commit", COMMIT)
    for key, value in extra.items():
        store.client.log_param(run_id, f"backend.{key}", value)
    return run_id


VGG_64 = ("vgg", "bn", "relu", 64, "fp16")
MOBILENET_64 = ("mobilenet", "bn", "relu", 64, "fp16")


@pytest.fixture(scope="module")
def modes_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Torch modes over two sessions: VGG eager measured twice (the re-run supersedes), CUDA graph once."""
    store = SyntheticStore(tmp_path_factory.mktemp("modes"))
    parent = store.parent("sweep modes")
    first = finished_run(store, parent, VGG_64, 2.0, "eager")
    store.client.log_metric(first, names.LATENCY_COV, 0.03)
    rerun = finished_run(store, parent, VGG_64, 1.8, "eager")
    store.client.log_metric(rerun, names.LATENCY_COV, 0.0125)
    store.client.log_metric(rerun, "engine_size_mb", 20.5)
    graph = finished_run(store, parent, VGG_64, 1.1, "cuda_graph")
    store.client.log_metric(graph, names.LATENCY_COV, 0.004)
    mobilenet = finished_run(store, parent, MOBILENET_64, 0.5, "eager")
    store.client.log_metric(mobilenet, names.LATENCY_COV, 0.01)
    store.child(parent, "resnet", "bn", "relu", 64, "fp16", None)  # FAILED: in no table
    return store.uri


def test_the_report_stays_the_default_command() -> None:
    args = parse_args(["--all-runs", "--no-log", "--out", "somewhere"])
    assert args.command is None and args.all_runs and args.no_log and args.out == Path("somewhere")
    assert COMMANDS[args.command] is report_command
    assert parse_args(["runs-table", "--tracking-uri", "sqlite:///x.db"]).command == "runs-table"


def test_raw_values_display_as_the_committed_tables_show_them() -> None:
    assert [fmt_value(v) for v in (math.nan, None, 304.0, 0.43312, "compile", 64)] == [
        "—",
        "—",
        "304",
        "0.433",
        "compile",
        "64",
    ]
    frame = pd.DataFrame({"block": ["vgg"], "ms": [1.25]})
    assert to_markdown(displayed(frame)) == "| block | ms |\n|---|---:|\n| vgg | 1.250 |"


def test_latency_by_mode_takes_the_newest_run_of_each_config(modes_store: str) -> None:
    frame = load_runs(modes_store, "blockbench", None).frame
    assert to_markdown(displayed(latency_by_param(frame, "backend.mode"))).splitlines() == [
        "| block | norm | act | resolution | precision | cuda_graph | eager | max CoV % |",
        "|---|---|---|---:|---|---:|---:|---:|",
        "| vgg | bn | relu | 64 | fp16 | 1.100 | 1.800 | 1.250 |",  # 1.8: the re-run, not the median 1.9
        "| mobilenet | bn | relu | 64 | fp16 | — | 0.500 | 1 |",
    ]


def test_metrics_table_shows_a_metric_no_run_logged_as_missing(modes_store: str) -> None:
    frame = load_runs(modes_store, "blockbench", None).frame
    table = metrics_by_config(frame, ["engine_size_mb", "params_count", "never_logged"])
    assert to_markdown(displayed(table)).splitlines()[2:] == [
        "| vgg | bn | relu | 64 | fp16 | 20.500 | 1000 | — |",
        "| mobilenet | bn | relu | 64 | fp16 | — | 1000 | — |",
    ]


def test_runs_table_command_writes_markdown_under_its_provenance_and_json(
    modes_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tables" / "modes.md"
    assert main(["runs-table", "--tracking-uri", modes_store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(f"Device: {SYNTHETIC_DEVICE}; commit {COMMIT}.\n\n| block |")
    assert printed.strip() in text
    records = json.loads(out.with_suffix(".json").read_text())
    assert records[0]["eager"] == 1.8 and records[1]["cuda_graph"] is None


def test_runs_table_of_a_missing_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs-table", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no MLflow store" in capsys.readouterr().err


def test_torch_variant_names_how_a_run_was_compiled() -> None:
    compiled = {
        "params.backend.mode": "compile",
        "params.backend.compile_mode": "max-autotune",
        "params.backend.channels_last": "True",
        "params.backend.freezing": "True",
    }
    assert torch_variant(pd.Series(compiled)) == "compile+max-autotune+channels-last+freezing"
    default = {"params.backend.mode": "compile", "params.backend.compile_mode": "default"}
    assert torch_variant(pd.Series(default)) == "compile"
    assert torch_variant(pd.Series({"params.backend.mode": "cuda_graph", "params.backend.freezing": "True"})) == (
        "cuda_graph"
    )


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """An older store and a newer one; the newer re-measures VGG compiled with channels-last."""
    older = SyntheticStore(tmp_path_factory.mktemp("older"))
    parent = older.parent("sweep older")
    finished_run(older, parent, VGG_64, 0.5, "compile", channels_last="True")
    finished_run(older, parent, VGG_64, 1.0, "cuda_graph")
    finished_run(older, parent, ("vgg", "bn", "relu", 64, "fp32"), 4.0, "cuda_graph")
    newer = SyntheticStore(tmp_path_factory.mktemp("newer"))
    parent = newer.parent("sweep newer")
    finished_run(newer, parent, VGG_64, 0.6, "compile", channels_last="True", compile_mode="default")
    finished_run(newer, parent, VGG_64, 3.0, "eager")
    onnx = finished_run(newer, parent, VGG_64, 0.1, "eager")
    newer.client.set_tag(onnx, "backend", "onnxruntime")  # not a torch mode: never the best one
    finished_run(newer, parent, ("mobilenet", "bn", "relu", 1024, "fp16"), 0.95, "compile", compile_mode="max-autotune")
    return [(older.uri, "blockbench"), (newer.uri, "blockbench")]


def test_best_mode_across_stores_counts_the_newest_run_of_each_variant(two_stores: list[tuple[str, str]]) -> None:
    best = best_per_config(torch_variants(two_stores))
    columns = ["block", "resolution", "precision", "best_mode", "best_ms", "runner_up", "variants"]
    assert best[columns].fillna({"runner_up": "—"}).to_dict("records") == [
        dict(block="vgg", resolution=64, precision="fp32", best_mode="cuda_graph", best_ms=4.0, runner_up="—",
             variants=1),
        dict(block="vgg", resolution=64, precision="fp16", best_mode="compile+channels-last", best_ms=0.6,
             runner_up="cuda_graph", variants=3),
        dict(block="mobilenet", resolution=1024, precision="fp16", best_mode="compile+max-autotune", best_ms=0.95,
             runner_up="—", variants=1),
    ]  # fmt: skip


def test_best_mode_command_writes_the_per_config_table_and_the_long_csv(
    two_stores: list[tuple[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "best_mode.md"
    stores = [arg for uri, experiment in two_stores for arg in ("--tracking-uri", uri, "--experiment", experiment)]
    assert main(["best-mode", *stores, "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert not any("reference" in line for line in lines)  # no latency of unknown provenance beside ours
    assert "### Per-config best (3 configs; mode (number of variants measured))" in lines
    wide = "| vgg | bn | relu | 64 | 4 | cuda_graph (1) | — | — | 0.600 | compile+channels-last (3) |"
    assert wide in lines
    with out.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["best_ms"] == "0.6000" and rows[1]["commit"] == COMMIT[:8] and rows[1]["runner_up_ms"] == "1.0000"


def test_best_mode_needs_one_experiment_per_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["best-mode", "--tracking-uri", "a", "--tracking-uri", "b", "--experiment", "x"])
    assert "one --experiment per --tracking-uri" in capsys.readouterr().err


# --- benchmarks/: the measuring scripts' rows and tables ----------------------------------------------------------


def script(name: str) -> ModuleType:
    """A script of ``benchmarks/`` as a module (they import their sibling ``job_rows``, so the folder goes first)."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def test_job_rows_write_every_key_and_show_missing_columns_blank(tmp_path: Path) -> None:
    job_rows = script("job_rows")
    rows = [{"block": "vgg", "norm": "bn", "ms": 1.5}, {"block": "vgg", "norm": "ln", "error": "refused"}]
    job_rows.write_rows(tmp_path / "out" / "rows.csv", rows, ("block", "norm"))
    assert (tmp_path / "out" / "rows.csv").read_text().splitlines() == [
        "block,norm,error,ms",
        "vgg,bn,,1.5",
        "vgg,ln,refused,",
    ]
    assert job_rows.markdown(rows).splitlines()[-1] == "| vgg | ln |  | refused |"
    metrics = {"m": 1.0, "lo": 0.99, "hi": 1.0123}
    assert job_rows.with_interval(metrics, "m", "lo", "hi") == "1.000 [0.990, 1.012]"


def test_fidelity_row_says_whether_framework_and_bare_loop_agree() -> None:
    fidelity = script("fidelity")
    bare = np.array([0.99, 1.0, 1.01])
    close = fidelity.comparison_row(
        ("vgg", "bn", "relu", 64), {names.LATENCY_MEDIAN: 1.02, names.LATENCY_COV: 0.005}, bare
    )
    assert close == {
        "block": "vgg",
        "norm": "bn",
        "act": "relu",
        "res": 64,
        "framework median ms": "1.0200",
        "framework CoV %": "0.50",
        "bare replay median ms": "1.0000",
        "bare CoV %": "0.82",
        "delta %": "+2.00",
        "within 3 %": "yes",
    }
    far = fidelity.comparison_row(("vgg", "bn", "relu", 64), {names.LATENCY_MEDIAN: 0.95, names.LATENCY_COV: 0}, bare)
    assert (far["delta %"], far["within 3 %"]) == ("-5.00", "NO")


def test_timing_conditions_row_shows_both_timings_with_intervals() -> None:
    timing_conditions = script("timing_conditions")
    metrics = {
        names.LATENCY_MEDIAN: 0.54,
        names.LATENCY_MEDIAN_CI_LOW: 0.539,
        names.LATENCY_MEDIAN_CI_HIGH: 0.5412,
        names.PIPELINED_MEDIAN: 0.439,
        names.PIPELINED_MEDIAN_CI_LOW: 0.438,
        names.PIPELINED_MEDIAN_CI_HIGH: 0.44,
        names.LATENCY_COV: 0.0123,
    }
    row = timing_conditions.condition_row("block=mobilenet", "flushed", metrics)
    assert list(row.values()) == ["block=mobilenet", "flushed", "0.540 [0.539, 0.541]", "0.439 [0.438, 0.440]", "1.23"]


def test_timing_variants_row_summarises_median_spread_and_tail() -> None:
    timing_variants = script("timing_variants")
    samples = np.concatenate([np.full(98, 1.0), [2.0, 3.0]])
    row = timing_variants.spread_row("vgg-bn-relu-256", "graph", "sync", samples)
    cov = 100 * samples.std() / samples.mean()
    assert row == {
        "net": "vgg-bn-relu-256",
        "mode": "graph",
        "variant": "sync",
        "median ms": "1.0000",
        "CoV %": f"{cov:.2f}",
        "p99/median": f"{np.percentile(samples, 99):.3f}",
    }


def test_energy_counter_row_turns_counter_steps_into_intervals_and_watts() -> None:
    energy_counter = script("energy_counter")
    times = np.array([0.0, 0.1, 0.2, 0.3])
    millijoules = np.array([0.0, 10_000.0, 20_000.0, 30_000.0])  # 30 J in 0.3 s: 100 W
    row = energy_counter.counter_row("idle", times, millijoules, [90.0, 110.0])
    assert list(row.values()) == ["idle", "4", "100.0", "100.0", "100", "100"]


def test_precision_row_shows_speedup_over_fp32_parity_and_agreement() -> None:
    precision_cpu = script("precision_cpu")
    rng = np.random.default_rng(0)
    fp32, int8 = 2.0 + 0.01 * rng.standard_normal(200), 1.0 + 0.005 * rng.standard_normal(200)
    speedup = compare_samples(int8, fp32)  # B / A = FP32 / INT8
    metrics = {
        names.LATENCY_MEDIAN: 1.0,
        names.LATENCY_MEDIAN_CI_LOW: 0.999,
        names.LATENCY_MEDIAN_CI_HIGH: 1.001,
        names.PARITY_REL_L2: 0.01234,
        names.TOP1_AGREEMENT: 0.9375,
    }
    job = {"block": "vgg", "norm": "bn", "engine": "onnxruntime", "precision": "int8"}
    row = precision_cpu.precision_row(job, metrics, speedup)
    assert speedup.ratio == pytest.approx(2.0, rel=0.01)
    assert row["speed-up vs FP32 [95 % CI]"] == f"{speedup.ratio:.2f}× [{speedup.low:.2f}, {speedup.high:.2f}]"
    assert (row["median ms [95 % CI]"], row["parity rel. L2"], row["top-1 agreement"]) == (
        "1.000 [0.999, 1.001]",
        "0.0123",
        "0.94",
    )
    fp32_row = precision_cpu.precision_row({**job, "precision": "fp32"}, {**metrics, names.TOP1_AGREEMENT: None}, None)
    assert fp32_row["speed-up vs FP32 [95 % CI]"] == fp32_row["top-1 agreement"] == ""
