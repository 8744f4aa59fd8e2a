"""Print (and optionally write) a Markdown table of median latencies, or of chosen metrics, from an MLflow store.

Rows are configs (block, norm, act, resolution, precision); columns are one per value of ``--column`` (a logged
param such as ``backend.mode``), or with ``--metrics`` one per metric (the newest run of each config). Used to turn
a sweep into the committed tables under ``docs/``.

    python benchmarks/runs_table.py --tracking-uri sqlite:///mlflow.db --column backend.mode --out docs/x.md
    python benchmarks/runs_table.py --tracking-uri sqlite:///mlflow.db --metrics engine_size_mb,trt_builder_s
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow
import pandas as pd

KEYS = ["block", "norm", "act", "resolution", "precision"]
BLOCK_ORDER = {"vgg": 0, "resnet": 1, "mobilenet": 2, "convnext": 3}


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="attributes.status = 'FINISHED'")
    runs = runs[runs["tags.blockbench.sweep"].isna()] if "tags.blockbench.sweep" in runs else runs
    return runs


def table(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = pd.DataFrame({key: runs[f"tags.{key}"] for key in KEYS})
    frame[column] = runs[f"params.{column}"]
    frame["median_ms"] = runs["metrics.latency_ms_median"]
    frame["cov"] = runs["metrics.latency_cov"]
    frame["start"] = runs["start_time"]
    # The newest run of each config and column value wins (a re-run supersedes an older one).
    frame = frame.sort_values("start").groupby([*KEYS, column], as_index=False).last()
    pivot = frame.pivot_table(index=KEYS, columns=column, values="median_ms", aggfunc="first")
    pivot["max CoV %"] = frame.groupby(KEYS)["cov"].max() * 100
    pivot = pivot.reset_index()
    pivot["_order"] = pivot["block"].map(BLOCK_ORDER)
    pivot["resolution"] = pivot["resolution"].astype(int)
    return pivot.sort_values(["resolution", "precision", "norm", "act", "_order"]).drop(columns="_order")


def metrics_table(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per config (its newest run), one column per metric; a metric a run lacks is NaN, shown as —."""
    frame = pd.DataFrame({key: runs[f"tags.{key}"] for key in KEYS})
    for metric in metrics:
        frame[metric] = runs.get(f"metrics.{metric}")
    frame["start"] = runs["start_time"]
    frame = frame.sort_values("start").groupby(KEYS, as_index=False).last().drop(columns="start")
    frame["_order"] = frame["block"].map(BLOCK_ORDER)
    frame["resolution"] = frame["resolution"].astype(int)
    return frame.sort_values(["resolution", "precision", "_order", "norm", "act"]).drop(columns="_order")


def to_markdown(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "—" if pd.isna(value) else (f"{value:.0f}" if value.is_integer() else f"{value:.3f}")
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="blockbench")
    parser.add_argument("--column", default="backend.mode")
    parser.add_argument("--metrics", help="comma-separated metric names: tabulate these instead of latencies")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = load_runs(args.tracking_uri, args.experiment)
    result = metrics_table(runs, args.metrics.split(",")) if args.metrics else table(runs, args.column)
    markdown = to_markdown(result)
    print(markdown)
    env = runs.iloc[0]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        header = f"Device: {env['tags.device_name']}; commit {env['tags.git_commit']}.\n\n"
        args.out.write_text(header + markdown + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(json.loads(result.to_json(orient="records")), indent=1))


if __name__ == "__main__":
    main()
