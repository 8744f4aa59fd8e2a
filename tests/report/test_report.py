"""The report (``python -m blockbench.report``): on a store a real tiny sweep filled, and on synthetic stores.

Two kinds of store:

* **real**: ``main.py -m`` with tiny widths (8 torch-eager jobs) — the report must read what the pipeline
  actually logs, write every output and log it to the sweep's parent run.
* **synthetic** (clearly labelled): runs created directly with ``MlflowClient`` and hand-picked latencies, so
  every ratio, verdict and missing cell can be checked against arithmetic done by hand.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from blockbench.report import build_report
from blockbench.report.evaluation import compute_findings
from blockbench.report.footprint import (
    activation_elements,
    blocknet_activation_elements,
    footprint,
    roofline_floor,
    run_footprint,
)
from blockbench.report.paper import PAPER_ROWS
from blockbench.report.peaks import DevicePeaks, get_peaks, measure
from blockbench.report.roofline import compute_roofline
from blockbench.report.store import load_runs
from blockbench.report.tables import ID_COLUMNS, PAPER_COLUMNS, build_tables
from blockbench.report.verdict import REPRODUCED
from tests.helpers import ROOT, TINY, run_main, store_runs

SWEEP_ARGS = ("block=vgg,mobilenet", "norm=bn,ln", "precision=fp32,bf16", "backend=torch")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_sweep_store(factory: pytest.TempPathFactory) -> Path:
    """A store filled by one real tiny sweep, made once per test session (shared with test_mlflow_ui.py)."""
    folder = factory.getbasetemp() / "tiny_sweep"
    db = folder / "mlflow.db"
    if (folder / "done").exists():
        return db
    folder.mkdir(exist_ok=True)
    proc = run_main("-m", *TINY, *SWEEP_ARGS, f"hydra.sweep.dir={folder / 'sweep'}", tmp_path=folder)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (folder / "done").write_text("ok")
    return db


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sweep_store(tmp_path_factory)


# --- on a real sweep ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_every_output_and_logs_it_to_the_sweep(real_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "blockbench.report",
            f"--tracking-uri=sqlite:///{real_store}",
            f"--out={out}",
            f"--cache-dir={tmp_path / 'cache'}",
            "--compare-paper",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: 8 runs (8 finished) -> {out / 'report.md'}" in proc.stdout

    # Table 1 in the paper's layout: the paper's 16 rows (4 blocks x 2 norms x 2 acts), ours where we ran.
    table = pd.read_csv(out / "tables" / "table_64.csv")
    ours = ["strict FP32 torch (ms)", "BF16 torch (ms)"]
    assert list(table.columns) == ID_COLUMNS + ours + PAPER_COLUMNS
    assert len(table) == 16
    ran = table[table["Architecture"].isin(["VGG", "MobileNet"]) & (table["Act"] == "ReLU")]
    assert len(ran) == 4 and ran[ours].notna().all().all() and (ran[ours].astype(float) > 0).all().all()
    not_run = table[~table.index.isin(ran.index)]
    assert not_run[ours].isna().all().all()  # never run: empty, not 0
    assert table["Paper FP32 (ms)"].notna().all()
    markdown = (out / "tables" / "table_64.md").read_text()
    assert "| ResNet | 64×64 | BN | ReLU | — | — | — | — | 94.75 M | 1.15 G | 2.547 | 0.904 |" in markdown

    # Our cells are exactly the medians logged by the runs.
    runs = store_runs(real_store)
    vgg_bn = next(
        r
        for r in runs
        if r["tags"].get("block") == "vgg" and r["tags"].get("norm") == "bn" and r["tags"].get("precision") == "fp32"
    )
    cell = table[(table["Architecture"] == "VGG") & (table["Norm"] == "BN") & (table["Act"] == "ReLU")][
        "strict FP32 torch (ms)"
    ]
    assert float(cell.iloc[0]) == pytest.approx(vgg_bn["metrics"]["latency_ms_median"], abs=1e-6)

    for name in ("latency_64", "roofline_" + re.sub(r"[^A-Za-z0-9]+", "_", vgg_bn["tags"]["device_name"]).strip("_")):
        png, svg = out / "figures" / f"{name}.png", out / "figures" / f"{name}.svg"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000, name
        assert svg.read_text().lstrip().startswith("<?xml") and svg.stat().st_size > 20_000, name

    summary = json.loads((out / "findings.json").read_text())
    assert {f["id"] for f in summary} >= {"bn_faster_than_ln", "mobilenet_fastest", "ln_fp16_slower_at_64"}
    assert all(f["verdict"] for f in summary)
    roofline = pd.read_csv(out / "roofline.csv")
    assert len(roofline) == 8 and (roofline["floor_ms"] > 0).all() and (roofline["x_floor"] > 0).all()
    index = (out / "report.md").read_text()
    for section in ("## Tables", "## Figures", "## Findings", "## Roofline", "Versions: Python"):
        assert section in index

    parent = next(r for r in runs if r["tags"].get("blockbench.sweep") == "parent")
    logged = list((real_store.parent / "mlartifacts").glob(f"*/{parent['run_id']}/artifacts/report/report.md"))
    assert logged, "report not logged as an artifact of the sweep's parent run"


@pytest.mark.slow
def test_tables_without_the_paper_have_only_the_rows_we_ran(real_store: Path) -> None:
    runs = load_runs(f"sqlite:///{real_store}", "blockbench")
    (table,) = build_tables(runs)
    assert table.resolution == 64
    assert list(table.display.columns) == [*ID_COLUMNS, "strict FP32 torch (ms)", "BF16 torch (ms)"]
    assert [(r["Architecture"], r["Norm"]) for _, r in table.display.iterrows()] == [
        ("VGG", "BN"),
        ("MobileNet", "BN"),
        ("VGG", "LN"),
        ("MobileNet", "LN"),
    ]
    assert set(table.display["Act"]) == {"ReLU"}


def test_cli_without_a_sweep_says_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "blockbench.report", f"--tracking-uri=sqlite:///{tmp_path / 'empty.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert f"no MLflow store at sqlite:///{tmp_path / 'empty.db'}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "empty.db").exists()  # reading never creates a store


# --- SYNTHETIC stores: hand-picked numbers, created with MlflowClient (no benchmark ran) ------------------

SYNTHETIC_DEVICE = "Synthetic Device (test data)"
TINY_CHANNELS = "[8, 8, 16, 16, 32]"


class SyntheticStore:
    """Builds an MLflow store by hand: a sweep parent and children with the tags/params/metrics the pipeline logs."""

    def __init__(self, root: Path) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = f"sqlite:///{root / 'synthetic.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self.client.create_experiment("blockbench", artifact_location=(root / "art").as_uri())

    def parent(self, name: str) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={"blockbench.sweep": "parent"})
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def child(
        self,
        parent: str,
        block: str,
        norm: str,
        act: str,
        resolution: int,
        precision: str,
        latency_ms: float | None,
        mode: str = "eager",
        device: str = SYNTHETIC_DEVICE,
        build_only: bool = False,
        samples: Sequence[float] | None = None,
        log_macs: bool = True,
    ) -> str:
        tags = {
            "mlflow.parentRunId": parent,
            "backend": "torch",
            "device_name": device,
            "block": block,
            "norm": norm,
            "act": act,
            "precision": precision,
            "resolution": str(resolution),
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"{block}-{norm}-{act}-{resolution}-{precision}", tags=tags
        )
        run_id = run.info.run_id
        params = {
            "block.name": block,
            "norm.name": norm,
            "act.name": act,
            "resolution.size": str(resolution),
            "precision.name": precision,
            "backend.name": "torch",
            "backend.mode": mode,
            "model.channels": TINY_CHANNELS,
            "model.blocks_per_stage": "1",
            "model.num_classes": "10",
            "benchmark.batch_size": "1",
        }
        for key, value in params.items():
            self.client.log_param(run_id, key, value)
        if build_only:  # an engine built for GPUs the machine did not have: FINISHED, no latency
            self.client.set_tag(run_id, "build_only", "true")
            self.client.log_metric(run_id, "engine_size_mb", 20.8)
            self.client.log_metric(run_id, "params_count", 1000.0)
            self.client.set_terminated(run_id, "FINISHED")
            return run_id
        if latency_ms is None:  # a job that failed after its run existed
            self.client.set_tag(run_id, "error", "RuntimeError: synthetic failure")
            self.client.set_terminated(run_id, "FAILED")
            return run_id
        self.client.log_metric(run_id, "latency_ms_median", latency_ms)
        if samples is not None:  # the kept samples, as the pipeline writes them
            rows = "".join(f"per_request,{i},{v:.6f}\n" for i, v in enumerate(samples))
            self.client.log_text(run_id, "timing,sample,latency_ms\n" + rows, "latencies.csv")
        self.client.log_metric(run_id, "params_count", 1000.0)
        if log_macs:
            self.client.log_metric(run_id, "macs", 2e6)
        self.client.set_terminated(run_id, "FINISHED")
        return run_id


# Hand-picked latencies (ms) of a synthetic sweep at 64x64 and 256x256, FP16, eager unless said otherwise.
SYNTHETIC = {
    # (block, norm, act, res, precision): latency
    ("mobilenet", "bn", "relu", 64, "fp16"): 1.0,
    ("mobilenet", "ln", "relu", 64, "fp16"): 3.0,  # LN/BN = 3.00 (paper tables 3.17: reproduced)
    ("mobilenet", "ln_native", "relu", 64, "fp16"): 1.5,  # ln/ln_native = 2.00
    ("mobilenet", "bn", "gelu", 64, "fp16"): 1.1,  # GELU/ReLU = 1.10
    ("vgg", "bn", "relu", 64, "fp16"): 2.0,  # MobileNet fastest, 2.00x margin
    ("vgg", "ln", "relu", 64, "fp16"): 1.0,  # LN/BN = 0.50: reversed
    ("convnext", "bn", "relu", 64, "fp16"): 5.0,  # ConvNeXt slowest; ConvNeXt/MobileNet = 5.00
    ("convnext", "bn", "relu", 256, "fp16"): 6.0,
    ("vgg", "bn", "relu", 256, "fp16"): 2.5,  # ConvNeXt/VGG = 2.40 (paper 2.39: reproduced)
    ("resnet", "bn", "relu", 256, "fp16"): 1.0,  # ConvNeXt/ResNet = 6.00 (paper 2.43: magnitude differs)
    ("mobilenet", "ln", "relu", 64, "tf32"): 2.4,  # FP16/TF32 (the paper's FP32) for LN MobileNet = 3.0/2.4 = 1.25
}


@pytest.fixture
def synthetic(tmp_path: Path) -> Iterator[tuple[SyntheticStore, str]]:
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep synthetic")
    for (block, norm, act, res, precision), latency in SYNTHETIC.items():
        store.child(parent, block, norm, act, res, precision, latency)
    store.child(parent, "resnet", "bn", "relu", 64, "fp16", None)  # FAILED cell
    store.child(parent, "mobilenet", "bn", "relu", 64, "fp16", 0.5, mode="cuda_graph")  # eager/cuda_graph = 2.00
    store.child(parent, "vgg", "bn", "relu", 64, "fp16", 1.0, mode="cuda_graph")  # eager/cuda_graph = 2.00
    yield store, parent


def _finding(found: list, claim_id: str):  # type: ignore[no-untyped-def]
    return next(f for f in found if f.id == claim_id)


def test_synthetic_cells_failed_and_missing_are_never_zero(
    synthetic: tuple[SyntheticStore, str], tmp_path: Path
) -> None:
    store, _ = synthetic
    runs = load_runs(store.uri, "blockbench")
    assert runs.labels == ["torch eager", "torch cuda_graph"]  # backend.mode differs within a cell
    tables = {t.resolution: t for t in build_tables(runs)}
    t64 = tables[64].display.set_index(["Architecture", "Norm", "Act"])
    assert t64.loc[("ResNet", "BN", "ReLU"), "FP16 torch eager (ms)"] == "FAILED"
    assert t64.loc[("ResNet", "LN", "ReLU"), "FP16 torch eager (ms)"] == "—"
    assert t64.loc[("MobileNet", "LN", "ReLU"), "FP16 torch eager (ms)"] == "3.000"
    assert t64.loc[("MobileNet", "BN", "ReLU"), "FP16 torch cuda_graph (ms)"] == "0.500"
    assert t64.loc[("MobileNet", "LN", "ReLU"), "TF32 torch eager (ms)"] == "2.400"
    raw = tables[64].raw.set_index(["Architecture", "Norm", "Act"])
    assert raw.loc[("ResNet", "BN", "ReLU"), "FP16 torch eager (ms)"] == "FAILED"
    assert raw.loc[("ResNet", "LN", "ReLU"), "FP16 torch eager (ms)"] is None
    values = pd.concat([t.display.iloc[:, 6:] for t in tables.values()]).to_numpy().ravel()
    assert not any(v in ("0", "0.000", 0) for v in values)


def test_build_only_cells_say_built_not_timed_never_failed_or_zero(tmp_path: Path) -> None:
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep with build-only runs")
    store.child(parent, "mobilenet", "bn", "relu", 64, "fp16", 1.0)
    store.child(parent, "mobilenet", "ln", "relu", 64, "fp16", None, build_only=True)
    store.child(parent, "vgg", "bn", "relu", 64, "fp16", None)  # a real failure stays FAILED
    runs = load_runs(store.uri, "blockbench")
    (table,) = build_tables(runs)
    shown = table.display.set_index(["Architecture", "Norm", "Act"])["FP16 torch (ms)"]
    assert shown[("MobileNet", "LN", "ReLU")] == "built, not timed"
    assert shown[("VGG", "BN", "ReLU")] == "FAILED" and shown[("MobileNet", "BN", "ReLU")] == "1.000"
    raw = table.raw.set_index(["Architecture", "Norm", "Act"])["FP16 torch (ms)"]
    assert raw[("MobileNet", "LN", "ReLU")] == "built, not timed"


def test_a_claim_without_its_blocks_says_which_are_missing(tmp_path: Path) -> None:
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep without ConvNeXt")
    store.child(parent, "mobilenet", "bn", "relu", 64, "fp16", 1.0)
    store.child(parent, "vgg", "bn", "relu", 64, "fp16", 2.0)
    found = compute_findings(load_runs(store.uri, "blockbench"))
    verdict = _finding(found, "mobilenet_vs_convnext_64").verdict
    assert verdict == "not tested (64×64 was run, but without ConvNeXt to compare)"
    assert _finding(found, "convnext_vs_vgg_resnet_256_fp16").verdict == "not tested (no runs in scope: 256×256 FP16)"


def test_synthetic_findings_match_hand_arithmetic(synthetic: tuple[SyntheticStore, str]) -> None:
    store, _ = synthetic
    found = compute_findings(load_runs(store.uri, "blockbench"))

    bn_ln = _finding(found, "bn_faster_than_ln").details.set_index(["Architecture", "Engine"])
    assert bn_ln.loc[("MobileNet", "torch eager"), "LN/BN"] == "3.00×"
    assert bn_ln.loc[("MobileNet", "torch eager"), "paper LN/BN"] == "3.17×"  # 2.290 / 0.723
    assert bn_ln.loc[("VGG", "torch eager"), "verdict"] == "reversed"
    assert _finding(found, "bn_faster_than_ln").verdict == "mixed: holds in 1, reversed in 1 (of 2 cells)"

    mobilenet = _finding(found, "mobilenet_fp16_bn_vs_ln")
    assert mobilenet.details["LN/BN"].tolist() == ["3.00×"] and mobilenet.details["verdict"].tolist() == [REPRODUCED]
    assert mobilenet.verdict == "reproduced (1 reproduced; of 1 cells)"

    relu = _finding(found, "relu_faster_than_gelu").details
    assert relu["GELU/ReLU"].tolist() == ["1.10×"] and relu["paper GELU/ReLU"].tolist() == ["1.05×"]  # 0.756/0.723

    fastest = _finding(found, "mobilenet_fastest").details.set_index(["Resolution", "Norm", "Engine"])
    assert fastest.loc[("64×64", "BN", "torch eager"), "fastest"] == "MobileNet"
    rival = "MobileNet vs its closest rival"
    assert fastest.loc[("64×64", "BN", "torch eager"), rival] == "2.00×"  # VGG 2.0 / MobileNet 1.0
    assert fastest.loc[("64×64", "LN", "torch eager"), "fastest"] == "VGG"  # 1.0 vs MobileNet 3.0
    assert fastest.loc[("64×64", "LN", "torch eager"), rival] == "0.33×"
    assert fastest.loc[("64×64", "LN", "torch eager"), f"{rival}: 95 % interval"] == "—"  # no samples kept
    assert _finding(found, "mobilenet_fastest").verdict == "mixed: holds in 2, reversed in 1 (of 3 configurations)"
    slowest = _finding(found, "convnext_slowest")
    assert slowest.verdict == "holds (2 of 2 configurations)"  # 64 (3 blocks) and 256 (3 blocks)

    cnx = _finding(found, "convnext_vs_vgg_resnet_256_fp16").details
    scoped = cnx[cnx["claim's scope"] == "yes"].set_index("ratio of")
    assert scoped.loc["ConvNeXt/VGG", "ratio"] == "2.40×" and scoped.loc["ConvNeXt/VGG", "verdict"] == REPRODUCED
    assert scoped.loc["ConvNeXt/ResNet", "ratio"] == "6.00×"
    assert scoped.loc["ConvNeXt/ResNet", "paper ratio"] == "2.43×"  # 2.613 / 1.076

    ln_fp16 = _finding(found, "ln_fp16_slower_at_64")
    assert ln_fp16.details["FP16/FP32"].tolist() == ["1.25×"]
    assert ln_fp16.details["paper FP16/FP32"].tolist() == ["1.05×"]  # 2.290 / 2.178
    assert ln_fp16.verdict == "holds (1 of 1 cells)"

    native = _finding(found, "ln_vs_ln_native")
    assert native.details["ln/ln_native"].tolist() == ["2.00×"]
    assert native.verdict == "ln_native faster in 1 of 1 cells"

    eager = _finding(found, "eager_vs_compiled")
    assert sorted(eager.details["eager/other"]) == ["2.00×", "2.00×"]
    assert eager.verdict == "cuda_graph: cuda_graph faster in 2 of 2 cells"


def test_findings_judge_each_cell_by_its_interval(tmp_path: Path) -> None:
    """Kept samples give each ratio a bootstrap interval; the verdict follows where it lies against 1 ± 5 %."""
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep with samples")
    rng = np.random.default_rng(7)
    cases = {  # block: (BN centre, LN centre, spread, samples) -> expected verdict of "BN faster than LN"
        "vgg": (1.0, 1.5, 0.01, 300),  # clearly slower with LN: holds
        "mobilenet": (1.0, 1.01, 0.01, 300),  # 1 % apart, tightly measured: equivalent within ±5 %
        "convnext": (1.0, 1.08, 0.3, 8),  # 8 % apart, but 8 noisy samples: cannot tell
    }
    for block, (bn, ln, spread, n) in cases.items():
        for norm, centre in (("bn", bn), ("ln", ln)):
            values = centre + spread * rng.standard_normal(n)
            store.child(parent, block, norm, "relu", 64, "fp16", float(np.median(values)), samples=values)
    finding = _finding(compute_findings(load_runs(store.uri, "blockbench")), "bn_faster_than_ln")
    rows = finding.details.set_index("Architecture")
    assert rows.loc["VGG", "verdict"] == "holds" and rows.loc["MobileNet", "verdict"] == "equivalent"
    assert rows.loc["ConvNeXt", "verdict"] == "cannot tell"
    low, high = (float(v) for v in rows.loc["VGG", "LN/BN: 95 % interval"].rstrip("×").split("–"))
    assert 1.05 < low < 1.5 < high < 1.55
    assert finding.verdict == "mixed: holds in 1, equivalent in 1, cannot tell in 1 (of 3 cells)"


def test_latest_sweep_is_the_default_and_parent_runs_can_be_chosen(synthetic: tuple[SyntheticStore, str]) -> None:
    store, first = synthetic
    second = store.parent("sweep later")
    store.child(second, "vgg", "bn", "gelu", 1024, "fp32", 9.0)
    latest = load_runs(store.uri, "blockbench")
    assert [p["run_id"] for p in latest.parents] == [second] and len(latest.frame) == 1
    chosen = load_runs(store.uri, "blockbench", [first])
    assert len(chosen.frame) == len(SYNTHETIC) + 3
    both = load_runs(store.uri, "blockbench", None)
    assert len(both.frame) == len(SYNTHETIC) + 4 and not both.parents


def test_synthetic_report_figures_show_gaps_and_paper_panels(
    synthetic: tuple[SyntheticStore, str], tmp_path: Path
) -> None:
    store, _ = synthetic
    report = build_report(load_runs(store.uri, "blockbench"), tmp_path / "out", compare_paper=True, roofline=False)
    for res in (64, 256):
        png = tmp_path / "out" / "figures" / f"latency_{res}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000
        svg = (tmp_path / "out" / "figures" / f"latency_{res}.svg").read_text()
        assert "FAILED" in svg or res == 256  # the failed ResNet cell is labelled, not drawn as a zero bar
        assert "not run" in svg and "paper (TensorRT 8.5, RTX 3090 Ti)" in svg
    assert (tmp_path / "out" / "report.md").read_text().count("## Runs that did not finish") == 1
    assert report.roofline is None


# --- roofline arithmetic ---------------------------------------------------------------------------------


def test_footprint_hooks_match_a_hand_count() -> None:
    # conv 3->4 3x3 on 8x8: 256 outputs x 27 MACs; pool 2x2; global pool; linear 4->2.
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    # (in + out) elements: conv 192+256, maxpool 256+64, avgpool 64+4, linear 4+2 = 842
    assert activation_elements(model, torch.zeros(1, 3, 8, 8)) == 842
    assert sum(p.numel() for p in model.parameters()) == 4 * 3 * 3 * 3 + 4 * 2 + 2 == 118
    # The FLOPs are the logged MACs (here the hand count: 256 x 27 + 2 x 4 = 6920), twice.
    fp = footprint(macs_per_image=6920, params=118, batch_size=1, activation_elements=842, bytes_per_element=4)
    assert fp.flops == 2 * 256 * 27 + 2 * 2 * 4 == 13840
    assert fp.weight_bytes == 118 * 4
    assert fp.activation_bytes == 842 * 4
    floor = roofline_floor(fp.flops, fp.total_bytes, peak_tflops=1e-3, bandwidth_gbps=1.0)
    assert floor.compute_s == pytest.approx(13840 / 1e9)  # 1e-3 TFLOP/s = 1e9 FLOP/s
    assert floor.memory_s == pytest.approx((472 + 3368) / 1e9)
    assert floor.floor_s == floor.compute_s and floor.bound == "compute"


def _run_row(macs: float, params: float, batch_size: int = 1) -> pd.Series:
    """A tidy run row as the report reads it: the tiny ConvNeXt at 32x32 in FP16 with the given logged counts."""
    return pd.Series(
        {
            "block": "convnext",
            "norm": "ln",
            "act": "gelu",
            "resolution": 32,
            "precision": "fp16",
            "macs": macs,
            "params_count": params,
            "params.model.channels": "[8, 8, 16, 16, 32]",
            "params.model.blocks_per_stage": "1",
            "params.model.num_classes": "10",
            "params.benchmark.batch_size": str(batch_size),
        }
    )


def test_meta_footprint_of_the_network_matches_the_real_model() -> None:
    from blockbench.build.complexity import count_macs, count_params
    from blockbench.models.network import BlockNet

    real = BlockNet("convnext", "ln", "gelu", [8, 8, 16, 16, 32], 1, 10)
    elements = blocknet_activation_elements("convnext", "ln", "gelu", (8, 8, 16, 16, 32), 1, 10, 32, 1)
    assert elements == activation_elements(real.eval(), torch.zeros(1, 3, 32, 32))
    macs, params = count_macs(real, 32, "thop"), count_params(real)  # what the pipeline logs for this run
    fp = run_footprint(_run_row(macs, params))
    assert (fp.flops, fp.weight_bytes, fp.activation_bytes) == (2 * macs, 2 * params, 2 * elements)


def test_roofline_flops_are_twice_the_logged_macs_times_the_batch() -> None:
    """The logged MACs count one image (complexity.count_macs); a timed inference is a whole batch."""
    one = run_footprint(_run_row(macs=3e6, params=1000, batch_size=1))
    four = run_footprint(_run_row(macs=3e6, params=1000, batch_size=4))
    assert one.flops == 2 * 3e6 and four.flops == 2 * 3e6 * 4
    assert four.weight_bytes == one.weight_bytes == 2 * 1000  # FP16 weights, read once per batch
    assert four.activation_bytes == 4 * one.activation_bytes


def test_roofline_of_synthetic_runs_uses_given_peaks_and_marks_unknown_devices(tmp_path: Path) -> None:
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep synthetic roofline")
    store.child(parent, "vgg", "bn", "relu", 64, "fp32", 2.0)
    store.child(parent, "vgg", "bn", "relu", 64, "fp16", 1.0, device="Unknown Device (test data)")
    peaks = DevicePeaks(SYNTHETIC_DEVICE, "cuda", {"fp32": 0.001}, copy_gbps=1.0)
    roof = compute_roofline(load_runs(store.uri, "blockbench"), "latency_ms_median", tmp_path / "cache", False, [peaks])
    known = roof.table[roof.table["device_name"] == SYNTHETIC_DEVICE].iloc[0]
    assert known["gflop"] == pytest.approx(2 * 2e6 / 1e9)  # 2 x the run's logged macs (2e6), batch 1
    elements = blocknet_activation_elements("vgg", "bn", "relu", (8, 8, 16, 16, 32), 1, 10, 64, 1)
    total_bytes = 4 * (1000 + elements)  # the logged params_count (1000) and the activations, FP32
    floor_ms = max(2 * 2e6 / 1e9, total_bytes / 1e9) * 1e3
    assert known["floor_ms"] == pytest.approx(floor_ms)
    assert known["x_floor"] == pytest.approx(2.0 / floor_ms)
    unknown = roof.table[roof.table["device_name"] != SYNTHETIC_DEVICE].iloc[0]
    assert math.isnan(unknown["floor_ms"]) and math.isnan(unknown["x_floor"])  # missing, not zero
    assert any("no measured peaks for 'Unknown Device (test data)'" in note for note in roof.notes)


def test_a_run_without_logged_macs_gets_no_floor_and_the_roofline_says_why(tmp_path: Path) -> None:
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep without macs")
    store.child(parent, "vgg", "bn", "relu", 64, "fp32", 2.0)
    store.child(parent, "mobilenet", "bn", "relu", 64, "fp32", 1.0, log_macs=False)  # as before MACs were logged
    runs = load_runs(store.uri, "blockbench")
    peaks = DevicePeaks(SYNTHETIC_DEVICE, "cuda", {"fp32": 0.001}, copy_gbps=1.0)
    roof = compute_roofline(runs, "latency_ms_median", tmp_path / "cache", False, [peaks])
    rows = roof.table.set_index("block")
    assert rows.loc["vgg", "floor_ms"] > 0
    for column in ("gflop", "floor_ms", "x_floor", "achieved_tflops"):
        assert math.isnan(rows.loc["mobilenet", column]), column  # not guessed from another counter
    assert rows.loc["mobilenet", "measured_ms"] == 1.0
    (note,) = [n for n in roof.notes if n.startswith("no FLOPs")]
    assert note == "no FLOPs and no floor for 1 configuration(s), no logged `macs`: mobilenet-bn-relu-64-fp32 (torch)"


@pytest.mark.parametrize(
    ("cache", "level"),
    [(0, "DRAM (cache size unknown"), (2**17, "DRAM beyond the 0.125 MiB"), (2**20, "cache (1 MiB)")],
)
def test_the_memory_floor_counts_only_bytes_beyond_the_cache(tmp_path: Path, cache: int, level: str) -> None:
    """With warm caches a working set that fits in the last-level cache is not read from DRAM: no DRAM bound."""
    store = SyntheticStore(tmp_path)
    parent = store.parent("sweep roofline cache")
    store.child(parent, "vgg", "bn", "relu", 64, "fp32", 2.0)
    peaks = DevicePeaks(SYNTHETIC_DEVICE, "cuda", {"fp32": 1e6}, copy_gbps=1.0, cache_bytes=cache)
    roof = compute_roofline(load_runs(store.uri, "blockbench"), "latency_ms_median", tmp_path / "cache", False, [peaks])
    row = roof.table.iloc[0]
    elements = blocknet_activation_elements("vgg", "bn", "relu", (8, 8, 16, 16, 32), 1, 10, 64, 1)
    total_bytes = 4 * (1000 + elements)  # the logged params_count (1000) and the activations, FP32
    assert 2**17 < total_bytes < 2**20  # the tiny network fits in 1 MiB, not in 128 KiB
    dram = total_bytes if cache == 0 else max(0, total_bytes - cache)
    assert row["memory_floor_ms"] == pytest.approx(dram / 1e9 * 1e3)
    assert row["memory_level"].startswith(level), row["memory_level"]


def test_cpu_peaks_are_measured_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blockbench.measure.environment import cpu_model
    from blockbench.report import peaks as peaks_module

    found, why = get_peaks(cpu_model(), ["fp32", "tf32"], tmp_path)
    assert found is not None and "measured on this machine" in why
    assert found.matmul_tflops["fp32"] > 0 and found.copy_gbps > 0
    assert found.matmul_for("tf32") == found.matmul_tflops["fp32"]  # a CPU has no TF32

    def must_not_measure(*args: object) -> tuple[float, dict[str, object]]:
        raise AssertionError("peaks were measured again instead of read from the cache")

    monkeypatch.setattr(peaks_module, "measure_matmul", must_not_measure)
    monkeypatch.setattr(peaks_module, "measure_copy", must_not_measure)
    again, why = get_peaks(cpu_model(), ["fp32"], tmp_path)
    assert again == found and why.startswith("cached")
    assert measure(torch.device("cpu"), ["fp32"], again) is again  # nothing missing: nothing measured


# --- the reference data ----------------------------------------------------------------------------------


def test_paper_reference_data_matches_the_paper() -> None:
    """The hand-transcribed tables against the paper's own table rows (tests/data/paper_tables.tsv: the tab-separated
    lines of its Tables 1-3, copied verbatim from the paper's text)."""
    paper = Path(__file__).parents[1] / "data" / "paper_tables.tsv"
    rows = []
    for line in paper.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 8 and parts[0] != "Architecture":
            block, res, norm, act, params, macs, fp32, fp16 = parts
            size = int(re.search(r"(\d+) \\times", res).group(1))  # type: ignore[union-attr]
            numbers = [float(v.split()[0]) for v in (params, macs, fp32, fp16)]
            rows.append((block.lower(), size, norm.lower(), act.lower(), *numbers))
    assert [tuple(r) for r in PAPER_ROWS] == rows
