"""Where the time goes, energy and the LN/GELU penalty finding, on SYNTHETIC runs (no benchmark ran).

The runs are rows shaped like ``mlflow.search_runs`` output, turned into a RunSet by the report's own ``tidy``;
their ``attr_*`` metrics come from :meth:`blockbench.measure.attribution.Attribution.metrics` over hand-picked kernel
rows, so every share, coverage and kernel count below can be checked against arithmetic done by hand.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from blockbench.measure.attribution import Attribution, OpTime
from blockbench.report import build_report
from blockbench.report.breakdown import configs, penalty_finding, share_table
from blockbench.report.data import RunSet, tidy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BLOCKS = 4  # blocks_per_stage = 1: 4 blocks, plus the stem's BN and ReLU in every configuration


def run(
    block: str,
    norm: str,
    act: str,
    mode: str,
    latency: float,
    rows: list[tuple[str, float, float]] | None,
    watts: float | None = None,
    resolution: int = 64,
    precision: str = "fp16",
) -> dict[str, object]:
    """One search_runs row; ``rows`` = (op class, ms, kernels) per inference, None = not profiled; energy =
    ``watts`` × latency (mJ = W × ms), None = no counter."""
    name = f"{block}-{norm}-{act}-{resolution}-{precision}-{mode}"
    record: dict[str, object] = {
        "run_id": name,
        "status": "FINISHED",
        "start_time": pd.Timestamp("2025-01-01"),
        "artifact_uri": "file:///nonexistent/synthetic",
        "tags.mlflow.runName": name,
        "tags.backend": "torch",
        "tags.device_name": "Synthetic Device (test data)",
        **{
            f"tags.{k}": v
            for k, v in dict(block=block, norm=norm, act=act, resolution=str(resolution), precision=precision).items()
        },
        "params.backend.mode": mode,
        "params.model.blocks_per_stage": "1",
        "metrics.latency_ms_median": latency,
    }
    if rows is not None:
        attribution = Attribution([OpTime(c, "", c, ms, n) for c, ms, n in rows], "synthetic", latency * 1.1)
        record.update({f"metrics.{k}": v for k, v in attribution.metrics(latency).items()})
    if watts is not None:
        record.update({"metrics.energy_mj_per_inference": watts * latency, "metrics.energy_mean_w": watts})
    return record


def runset(records: list[dict[str, object]]) -> RunSet:
    frame, keys = tidy(pd.DataFrame(records))
    return RunSet(frame, "sqlite:///synthetic.db", "blockbench", "0", [], keys)


CNA = "fused: conv+norm+act"
REST = [("conv", 0.4, 9), ("other", 0.2, 3)]  # (op class, ms, kernels per inference) of every eager MobileNet
PROFILED = [
    # eager, MobileNet: BN = 5 norm kernels (stem + 4 blocks), LN = 25 (stem BN + 6 per block)
    run("mobilenet", "bn", "relu", "eager", 1.0, [*REST, ("norm", 0.1, 5), ("act", 0.1, 5)], 100),
    run("mobilenet", "ln", "relu", "eager", 1.6, [*REST, ("norm", 0.7, 25), ("act", 0.1, 5)], 100),
    run("mobilenet", "bn", "gelu", "eager", 1.2, [*REST, ("norm", 0.1, 5), ("act", 0.3, 9)], 100),
    # compile: BN's norm all fused with conv and act; LN's 0.6 ms of norm, 0.4 of it fused (2/3)
    run("mobilenet", "bn", "relu", "compile", 0.5, [(CNA, 0.3, 9), ("other", 0.1, 2)], 150),
    run("mobilenet", "ln", "relu", "compile", 0.8, [(CNA, 0.4, 9), ("norm", 0.2, 5), ("other", 0.1, 2)], 150),
    run("vgg", "bn", "relu", "eager", 2.0, [("conv", 1.5, 9), ("norm", 0.2, 5), ("act", 0.1, 5)]),  # no energy
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("breakdown") / "report"
    report = build_report(runset(PROFILED), out, roofline=False)
    assert set(report.breakdown.files if report.breakdown else []) <= set(report.files)
    return out


def test_table_shares_coverage_and_kernels_per_block() -> None:
    display, raw = share_table(configs(runset(PROFILED)))
    key = ["Architecture", "Norm", "Act", "Engine"]
    raw, display = raw.set_index(key), display.set_index(key)
    ln = raw.loc[("MobileNet", "LN", "ReLU", "torch eager")]
    assert ln["Attributed (ms)"] == pytest.approx(1.4) and ln["Coverage"] == pytest.approx(1.4 / 1.6)
    assert ln["Norm share (%)"] == pytest.approx(50.0) and ln["Norm fused (%)"] == pytest.approx(0.0)
    assert ln["Norm kernels/inference"] == 25 and ln["Norm kernels/block"] == pytest.approx(25 / BLOCKS)
    assert ln["Energy (mJ/inference)"] == pytest.approx(160.0) and ln["Mean power (W)"] == 100
    compiled = raw.loc[("MobileNet", "LN", "ReLU", "torch compile")]
    assert compiled["Norm share (%)"] == pytest.approx(100 * 0.6 / 0.7)  # 0.4 fused + 0.2 alone of 0.7 ms
    assert compiled["Norm fused (%)"] == pytest.approx(100 * 0.4 / 0.7)
    assert compiled["Act share (%)"] == compiled["Act fused (%)"] == pytest.approx(100 * 0.4 / 0.7)
    shown = display.loc[("MobileNet", "LN", "ReLU", "torch eager")]
    assert (shown["Coverage"], shown["Norm share (%)"], shown["Norm kernels/block"]) == ("0.88", "50.0", "6.25")
    vgg = display.loc[("VGG", "BN", "ReLU", "torch eager")]
    assert vgg["Energy (mJ/inference)"] == vgg["Mean power (W)"] == "—"  # no counter: a dash, never 0
    assert display.index.get_level_values("Engine")[:3].tolist() == ["torch eager"] * 3  # eager before compile


def test_report_writes_figures_table_and_sections(report_dir: Path) -> None:
    for name in ("where_time_goes_64", "latency_vs_energy"):
        png = report_dir / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000, name
    svg = (report_dir / "figures" / "where_time_goes_64.svg").read_text()
    assert "normalization" in svg and "fused (several classes)" in svg and "measured latency (median)" in svg
    csv = pd.read_csv(report_dir / "attribution.csv")
    assert len(csv) == 6 and csv["Energy (mJ/inference)"].isna().sum() == 1  # the VGG run: empty, not 0
    index = (report_dir / "report.md").read_text()
    assert "## Where the time goes" in index and "## Energy" in index
    assert "figures/where_time_goes_64.png" in index and "figures/latency_vs_energy.png" in index
    assert "| MobileNet | LN | ReLU | 64×64 | FP16 | torch eager | 1.600 | 1.400 | 0.88 | 50.0 |" in index
    assert "What the LN and GELU penalties consist of" in (report_dir / "findings.md").read_text()


def test_finding_states_kernels_shares_and_fusion_per_engine() -> None:
    finding = penalty_finding(runset(PROFILED))
    assert finding.verdict == "measured (2 LN/BN and 1 GELU/ReLU pairs)"
    eager, compiled = finding.ours.split(". torch compile: ")
    assert eager.startswith(
        "torch eager: LN launches 6.25 unfused norm kernels per block (1.25 for BN); norm is 50 % of "
    )
    assert "attributed time with LN vs 12 % with BN" in eager  # 0.7 / 1.4 vs 0.1 / 0.8
    assert "LN − BN: +0.600 ms latency, +0.600 ms norm time (1 pair)" in eager
    assert "GELU launches 2.25 unfused activation kernels per block (1.25 for ReLU)" in eager
    assert "LN's norm is fused into neighbouring kernels in 67 % of its time" in compiled  # 0.4 of 0.6 ms
    assert "fused into" not in eager  # eager fuses nothing: no fused clause
    rows = finding.details.set_index(["pair", "Engine"])
    assert rows.loc[("LN vs BN", "torch compile"), "op time LN/GELU (ms)"] == "0.600"
    assert rows.loc[("GELU vs ReLU", "torch eager"), "with"] == "BN"


def test_without_attribution_or_energy_no_sections_and_the_finding_says_not_profiled(tmp_path: Path) -> None:
    plain = [{k: v for k, v in r.items() if not k.startswith(("metrics.attr_", "metrics.energy_"))} for r in PROFILED]
    report = build_report(runset(plain), tmp_path, roofline=False)
    assert not list((tmp_path / "figures").glob("where_time_goes_*")) and not (tmp_path / "attribution.csv").exists()
    assert not (tmp_path / "figures" / "latency_vs_energy.png").exists()
    index = (tmp_path / "report.md").read_text()
    assert "## Where the time goes" not in index and "## Energy" not in index
    assert "Energy: no run logged energy" in index
    finding = next(f for f in report.findings if f.id == "penalty_breakdown")
    assert "not profiled" in finding.verdict and "benchmark.attribution=true" in finding.ours


def test_energy_without_attribution_gets_its_section_and_table(tmp_path: Path) -> None:
    only_energy = [{k: v for k, v in r.items() if not k.startswith("metrics.attr_")} for r in PROFILED]
    build_report(runset(only_energy), tmp_path, roofline=False)
    index = (tmp_path / "report.md").read_text()
    assert "## Where the time goes" not in index and "## Energy" in index
    assert "5 configurations: 75–160 mJ per inference; mean power 100.0–150.0 W." in index
    assert "| MobileNet | LN | ReLU | 64×64 | FP16 | torch eager | 1.600 | 160 | 100.0 |" in index
