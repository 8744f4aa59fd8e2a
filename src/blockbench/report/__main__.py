"""``python -m blockbench.report``: the report of a sweep (default: the newest) from an MLflow store.

Examples::

    python -m blockbench.report                                   # newest sweep in ./mlflow.db
    python -m blockbench.report --compare-paper --out docs/report
    python -m blockbench.report --parent-run <id> --parent-run <id2>   # several sweeps in one report
    python -m blockbench.report --all-runs --no-log               # every run of the experiment, nothing logged

Commands for the tables committed under ``docs/`` (the newest run of each configuration, across sessions)::

    python -m blockbench.report runs-table --tracking-uri sqlite:///docs/gpu/h100_mlflow.db --column backend.mode
    python -m blockbench.report runs-table --tracking-uri sqlite:///mlflow.db --metrics engine_size_mb,build_s
    python -m blockbench.report best-mode --tracking-uri sqlite:///a.db --experiment paper \\
        --tracking-uri sqlite:///b.db --experiment blockbench --out docs/gpu/best_mode.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from blockbench.config.paths import default_tracking_uri, project_root
from blockbench.report import best_mode, build_report, runs_table
from blockbench.report.peaks import DevicePeaks
from blockbench.report.store import ReportDataError, load_runs
from blockbench.report.tables import displayed, to_markdown
from blockbench.tracking import Tracker

log = logging.getLogger("blockbench.report")

METRICS = (
    "latency_ms_median",
    "latency_ms_mean",
    "latency_ms_min",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m blockbench.report",
        description="Tables, figures, findings and roofline of a blockbench sweep, from its MLflow runs.",
    )
    parser.add_argument("--tracking-uri", default=default_tracking_uri(), help="MLflow store (default: %(default)s)")
    parser.add_argument("--experiment", default="blockbench", help="MLflow experiment (default: %(default)s)")
    parser.add_argument(
        "--parent-run",
        action="append",
        metavar="RUN_ID",
        help="sweep parent run id; repeat for several sweeps (default: the newest sweep)",
    )
    parser.add_argument("--all-runs", action="store_true", help="every run of the experiment instead of one sweep")
    parser.add_argument("--out", type=Path, help="output folder (default: reports/<sweep run id> in the project)")
    parser.add_argument("--compare-paper", action="store_true", help="put the paper's Tables 1–3 beside our numbers")
    parser.add_argument("--metric", default="latency_ms_median", choices=METRICS, help="latency (default: %(default)s)")
    parser.add_argument("--no-roofline", action="store_true", help="skip the roofline (and the peak measurement)")
    parser.add_argument("--no-measure", action="store_true", help="never measure device peaks; use cached ones only")
    parser.add_argument("--peaks", type=Path, action="append", default=[], help="peaks JSON from another machine")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=project_root() / ".cache" / "blockbench",
        help="where device peaks are cached (default: %(default)s)",
    )
    parser.add_argument("--no-log", action="store_true", help="do not log the report as artifacts of the sweep")
    commands = parser.add_subparsers(dest="command", title="commands (default: the report)", metavar="COMMAND")
    table = commands.add_parser(
        "runs-table",
        help="per configuration, the latency of each value of a param, or chosen metrics (newest run counts)",
        description=runs_table.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table.add_argument("--tracking-uri", required=True, help="MLflow store")
    table.add_argument("--experiment", default="blockbench", help="MLflow experiment (default: %(default)s)")
    table.add_argument(
        "--column", default="backend.mode", help="param whose values become columns (default: %(default)s)"
    )
    table.add_argument("--metrics", help="comma-separated metric names: tabulate these instead of latencies")
    table.add_argument("--out", type=Path, help="write the Markdown here (and the raw values as .json)")
    best = commands.add_parser(
        "best-mode",
        help="the fastest torch mode per configuration across stores",
        description=best_mode.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    best.add_argument("--tracking-uri", action="append", required=True, help="MLflow store; repeat for several")
    best.add_argument("--experiment", action="append", help="one per --tracking-uri (default: blockbench)")
    best.add_argument("--out", type=Path, help="write the Markdown tables here (and the long table as .csv)")
    args = parser.parse_args(argv)
    if args.command == "best-mode":
        args.experiment = args.experiment or ["blockbench"] * len(args.tracking_uri)
        if len(args.experiment) != len(args.tracking_uri):
            best.error("give one --experiment per --tracking-uri")
    return args


def _load_peaks(paths: Sequence[Path]) -> list[DevicePeaks]:
    """A peaks file is one device (the cache format) or ``peaks.json`` of an earlier report (device -> peaks)."""
    found = []
    for path in paths:
        data = json.loads(path.read_text())
        entries = [data] if "device_name" in data else list(data.values())
        found += [DevicePeaks.from_json(entry) for entry in entries]
    return found


def log_to_parents(uri: str, experiment: str, parents: Sequence[str], out_dir: Path) -> None:
    """The report folder as the ``report/`` artifact of each sweep parent run (through the pipeline's Tracker,
    which holds the store lock that concurrent sweeps use)."""
    tracker = Tracker(uri, experiment)
    for run_id in parents:
        tracker.log_artifact(run_id, out_dir, "report")
        log.info("report: logged as artifact 'report/' of run %s", run_id)


def report_command(args: argparse.Namespace) -> int:
    """The report of one or more sweeps (or every run): tables, figures, findings, roofline, logged to the sweeps."""
    runs = load_runs(args.tracking_uri, args.experiment, None if args.all_runs else (args.parent_run or ["latest"]))
    parent_ids = [p["run_id"] for p in runs.parents]
    out = args.out or project_root() / "reports" / (parent_ids[0] if parent_ids else "all-runs")
    report = build_report(
        runs,
        out,
        metric=args.metric,
        compare_paper=args.compare_paper,
        cache_dir=args.cache_dir,
        roofline=not args.no_roofline,
        measure_peaks=not args.no_measure,
        extra_peaks=_load_peaks(args.peaks),
    )
    finished = int((runs.frame["status"] == "FINISHED").sum())
    print(f"report: {len(runs.frame)} runs ({finished} finished) -> {report.index}")
    for finding in report.findings:
        print(f"  {finding.title}: {finding.verdict}")
    if parent_ids and not args.no_log:
        log_to_parents(args.tracking_uri, args.experiment, parent_ids, out)
        print(f"  logged as artifact 'report/' of sweep run(s) {', '.join(parent_ids)}")
    return 0


def runs_table_command(args: argparse.Namespace) -> int:
    """Print the runs table of one store; with ``--out`` also write it (Markdown and JSON)."""
    frame = load_runs(args.tracking_uri, args.experiment, None).frame
    if args.metrics:
        table = runs_table.metrics_by_config(frame, args.metrics.split(","))
    else:
        table = runs_table.latency_by_param(frame, args.column)
    print(to_markdown(displayed(table)))
    if args.out:
        runs_table.write_runs_table(table, frame, args.out)
    return 0


def best_mode_command(args: argparse.Namespace) -> int:
    """Print the best torch mode per configuration; with ``--out`` also write it (Markdown, long table as CSV)."""
    best = best_mode.best_per_config(
        best_mode.torch_variants(list(zip(args.tracking_uri, args.experiment, strict=True)))
    )
    text = best_mode.best_mode_markdown(best)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        best.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    return 0


COMMANDS = {None: report_command, "runs-table": runs_table_command, "best-mode": best_mode_command}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except ReportDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
