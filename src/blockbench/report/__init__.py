"""The report: a sweep's MLflow runs turned into the paper's tables, figures, re-tested findings and a roofline.

``python -m blockbench.report`` (see :mod:`blockbench.report.__main__`) reads the runs through a
:class:`~blockbench.tracking.reader.StoreReader` (never MLflow's global tracking URI), writes everything into one
folder and logs that folder as the ``report/`` artifact of the sweep's parent run. :func:`build_report` is the
same thing as a function (tests, notebooks).
"""

from __future__ import annotations

import logging
import shlex
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from blockbench.config.paths import project_root, source_root
from blockbench.measure.environment import git_commit
from blockbench.report.breakdown_report import Breakdown, breakdown_markdown, build_breakdown
from blockbench.report.data import RunSet
from blockbench.report.evaluation import compute_findings
from blockbench.report.figures import INTERVAL_REPEATS, INTERVAL_WHAT, latency_figures
from blockbench.report.findings import Finding, findings_markdown, write_findings
from blockbench.report.peaks import DevicePeaks
from blockbench.report.provenance import source_check
from blockbench.report.roofline import (
    Roofline,
    compute_roofline,
    display_table,
    peaks_markdown,
    summary_table,
    write_roofline,
)
from blockbench.report.store import environment, load_runs
from blockbench.report.tables import Table, build_tables, markdown_section, to_markdown, write_tables

__all__ = ["Report", "build_report", "load_runs"]

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`build_report` wrote and computed."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    roofline: Roofline | None = None
    breakdown: Breakdown | None = None  # where the time goes, energy
    commit: str = ""  # the report code's commit, read before any output is written (a rewritten output is no change)

    @property
    def index(self) -> Path:
        return self.out_dir / "report.md"


def build_report(
    runs: RunSet,
    out_dir: Path,
    metric: str = "latency_ms_median",
    compare_paper: bool = False,
    cache_dir: Path | None = None,
    roofline: bool = True,
    measure_peaks: bool = True,
    extra_peaks: list[DevicePeaks] | None = None,
) -> Report:
    """Write tables, figures, findings and roofline for ``runs`` into ``out_dir``, indexed by ``report.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir, commit=_report_commit())
    report.tables = build_tables(runs, metric, compare_paper)
    report.files += write_tables(report.tables, out_dir, metric, compare_paper)
    figures = latency_figures(runs, out_dir, metric, compare_paper)
    report.files += figures
    report.breakdown = build_breakdown(runs, out_dir)
    report.files += report.breakdown.files
    report.findings = compute_findings(runs, metric)
    report.files += write_findings(report.findings, out_dir, metric)
    if roofline:
        cache = cache_dir or project_root() / ".cache" / "blockbench"
        report.roofline = compute_roofline(runs, metric, cache, measure_peaks, extra_peaks or [])
        report.files += write_roofline(report.roofline, out_dir)
    runs_csv = out_dir / "runs.csv"
    keep = [c for c in runs.frame.columns if not c.startswith("params.")] + ["params.backend.mode"]
    runs.frame[[c for c in keep if c in runs.frame]].to_csv(runs_csv, index=False)
    report.files.append(runs_csv)
    report.index.write_text(index_markdown(runs, report, metric, compare_paper))
    report.files.append(report.index)
    return report


def _parity_failures(frame: Any) -> str:
    """Runs whose output missed their precision's tolerance: listed on their own, never silently averaged in."""
    if "parity" not in frame:
        return "none"
    bad = frame[frame["parity"] == "fail"]
    if bad.empty:
        return "none"
    names = ", ".join(sorted(str(n) for n in bad["run_name"].dropna()))
    return f"{len(bad)} run{'s' if len(bad) != 1 else ''}: {names}"


def _versions(env: dict[str, Any]) -> str:
    packages = env.get("packages", {})
    parts = [f"Python {env['python']}"] if env.get("python") else []
    for name in ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "onnx", "mlflow"):
        if packages.get(name):
            parts.append(f"{name} {packages[name]}")
    if env.get("torch_cuda"):
        parts.append(f"CUDA {env['torch_cuda']}")
    if env.get("cudnn"):
        parts.append(f"cuDNN {env['cudnn']}")
    if env.get("gpu_driver"):
        parts.append(f"driver {env['gpu_driver']}")
    return ", ".join(parts) or "unknown (no environment.json artifact readable)"


def index_markdown(runs: RunSet, report: Report, metric: str, compare_paper: bool) -> str:
    """``report.md``: where the numbers come from (store, sweep, device, versions), then every section."""
    frame = runs.frame
    env = environment(runs)
    status = frame["status"].value_counts()
    sweeps = (
        "; ".join(
            f"`{p['run_id']}` ({p['run_name']}, {p['status']}"
            + (
                f", plus {p['skipped_runs']} runs it skipped as already done"
                if p.get("skipped_runs", "0") != "0"
                else ""
            )
            + ")"
            for p in runs.parents
        )
        or "all runs of the experiment"
    )
    devices = ", ".join(sorted(frame["device_name"].dropna().unique())) or "unknown"
    gpu = f" ({env['gpu_name']}, {env.get('gpu_memory_gb', '?')} GB)" if env.get("gpu_name") else ""
    commits = ", ".join(sorted(frame["git_commit"].dropna().unique())) or "unknown"
    lines = [
        "# blockbench report",
        "",
        f"- Store: `{runs.tracking_uri}`, experiment `{runs.experiment}` (id {runs.experiment_id})",
        f"- Sweep: {sweeps}",
        f"- Runs: {len(frame)} ("
        + ", ".join(f"{n} {s.lower()}" for s, n in status.items())
        + f"); engines: {', '.join(runs.labels)}",
        f"- Device: {devices}{gpu}; CPU: {env.get('cpu_model', 'unknown')}",
        f"- Versions: {_versions(env)}",
        f"- Git commit(s) of the runs: {commits}",
        f"- The runs' code against their commit: {source_check(frame)}",
        f"- Latency: `{metric}` of each run (ms, batch {_batch(frame)}); repeats of a configuration: their median",
        f"- Parity beyond tolerance (latency kept): {_parity_failures(frame)}",
        f"- Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} by "
        f"`{' '.join(shlex.quote(a) for a in ['python', '-m', 'blockbench.report', *sys.argv[1:]])}` "
        f"at blockbench commit {report.commit or _report_commit()}",
        "",
        "Missing cells: `—` = configuration not run, `FAILED` = every run of it failed, `built, not timed` = an "
        "engine was built (e.g. TensorRT-RTX on a machine without a GPU it runs on) but never run; never shown as 0.",
        "",
        "## Tables (paper layout)",
        "",
    ]
    for i, table in enumerate(report.tables, 1):
        lines += [markdown_section(table, i, metric, compare_paper), ""]
    lines += ["## Figures", ""]
    for table in report.tables:
        r = table.resolution
        lines += [f"![Latency at {r}×{r}](figures/latency_{r}.png)", ""]
    if report.tables:
        lines += [
            f"{INTERVAL_WHAT} {INTERVAL_REPEATS} Each figure's caption counts the bars without one (runs that "
            "logged no interval, and the paper's values).",
            "",
        ]
    if report.breakdown is not None:
        lines += breakdown_markdown(report.breakdown)
    lines += ["## Findings", "", "Details per cell: [findings.md](findings.md), [findings.csv](findings.csv).", ""]
    summary = findings_markdown(report.findings, metric).split("\n## ", 1)[0]
    lines += [line for line in summary.splitlines() if not line.startswith("# ")]
    if report.roofline is not None:
        lines += ["", "## Roofline", "", ROOFLINE_TEXT, "", peaks_markdown(report.roofline), ""]
        summary_rows = summary_table(report.roofline)
        if not summary_rows.empty:
            lines += [to_markdown(summary_rows), ""]
        if not report.roofline.table.empty:
            lines += [
                "Per configuration (raw numbers in roofline.csv):",
                "",
                to_markdown(display_table(report.roofline)),
                "",
            ]
        for path in sorted(report.out_dir.glob("figures/roofline_*.png")):
            lines += [f"![Roofline]({path.relative_to(report.out_dir)})", ""]
    failed = frame[frame["status"] != "FINISHED"]
    if len(failed):
        lines += ["## Runs that did not finish", "", "| run | status | stage | error |", "|---|---|---|---|"]
        for _, row in failed.iterrows():
            error = str(row.get("error") or "").replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(
                f"| `{row['run_name']}` ({row['run_id']}) | {row['status']} | {row.get('error_stage')} | {error} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def _report_commit() -> str:
    """The commit of the code that judged the runs (verdict rules change; the runs' own commits are listed apart)."""
    return git_commit(source_root())


ROOFLINE_TEXT = (
    "Floor = max(FLOPs / measured peak matrix rate, bytes / measured copy bandwidth). FLOPs: 2 × each run's "
    "logged MACs (its complexity counter, per image) × batch. Bytes: weights once (the logged parameter count), "
    "plus each convolution's, linear layer's and pool's input and output once (norms, activations and residual "
    "adds assumed fused), counted with forward hooks on the model built from each run's params. `× floor` = "
    "measured latency / floor: how far the engine is from what the device could do."
)


def _batch(frame: Any) -> str:
    column = "params.benchmark.batch_size"
    values = sorted(frame[column].dropna().unique()) if column in frame else []
    return ", ".join(str(v) for v in values) or "1"
