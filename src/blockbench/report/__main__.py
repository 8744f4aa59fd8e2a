"""``python -m blockbench.report``: the report of a sweep (default: the newest) from an MLflow store.

Examples::

    python -m blockbench.report                                   # newest sweep in ./mlflow.db
    python -m blockbench.report --compare-paper --out docs/report
    python -m blockbench.report --parent-run <id> --parent-run <id2>   # several sweeps in one report
    python -m blockbench.report --all-runs --no-log               # every run of the experiment, nothing logged
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from blockbench.config import default_tracking_uri, project_root
from blockbench.report import build_report
from blockbench.report.data import ReportDataError, load_runs
from blockbench.report.peaks import DevicePeaks

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
    return parser.parse_args(argv)


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
    from blockbench.tracking import Tracker

    tracker = Tracker(uri, experiment)
    for run_id in parents:
        tracker.log_artifact(run_id, out_dir, "report")
        log.info("report: logged as artifact 'report/' of run %s", run_id)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        runs = load_runs(args.tracking_uri, args.experiment, None if args.all_runs else (args.parent_run or ["latest"]))
    except ReportDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
