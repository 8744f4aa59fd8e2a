"""ONNX Runtime's CUDA provider beside the torch modes: per config, each variant's per-request median with its 95 %
interval, and the fastest ONNX Runtime variant over the fastest torch mode.

Reads the sweep folders benchmarks/ort_gpu.sh wrote (``tracking.enabled=false``: each job's ``run.json``).

    python benchmarks/ort_gpu.py /tmp/ort --out docs/gpu/ort_cuda/ort_vs_torch.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from job_rows import markdown, with_interval, write_rows

ORT_VARIANTS = ("ort", "ort_nhwc", "ort_graph", "ort_graph_nhwc")
TORCH_MODES = ("eager", "cuda_graph", "compile")
CONFIG = ("block", "norm", "act", "resolution", "precision")
MEDIAN, LOW, HIGH = "latency_ms_median", "latency_ms_median_ci95_low", "latency_ms_median_ci95_high"


def sweep(folder: Path) -> dict[str, dict]:
    """config label -> run.json of every job in a sweep folder (FAILED ones too: the table says so)."""
    found = {}
    for path in sorted(folder.glob("*/run.json")):
        run = json.loads(path.read_text())
        found["-".join(run["tags"][key] for key in CONFIG)] = run
    return found


def cell(run: dict | None) -> str:
    if run is None:
        return "not run"
    if run["status"] != "FINISHED" or MEDIAN not in run["metrics"]:
        return f"{run['status']}: {run['tags'].get('error', '')[:80]}"
    return with_interval(run["metrics"], MEDIAN, LOW, HIGH)


def fastest(runs: dict[str, dict], labels: tuple[str, ...], config: str) -> tuple[str, float] | None:
    timed = [
        (label, runs[label][config]["metrics"][MEDIAN])
        for label in labels
        if config in runs.get(label, {}) and MEDIAN in runs[label][config]["metrics"]
    ]
    return min(timed, key=lambda item: item[1]) if timed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding one sweep folder per variant")
    parser.add_argument("--out", type=Path, help="CSV of the rows")
    args = parser.parse_args()
    runs = {label: sweep(args.root / label) for label in (*ORT_VARIANTS, *TORCH_MODES) if (args.root / label).is_dir()}
    configs = sorted({config for found in runs.values() for config in found})
    rows = []
    for config in configs:
        row: dict[str, object] = {"config": config}
        for label in runs:
            row[label] = cell(runs[label].get(config))
        ort, torch = fastest(runs, ORT_VARIANTS, config), fastest(runs, TORCH_MODES, config)
        if ort and torch:
            row["fastest_ort"], row["fastest_torch"] = ort[0], torch[0]
            row["ort_over_torch"] = round(ort[1] / torch[1], 3)
        rows.append(row)
    if args.out:
        write_rows(args.out, rows, ["config", *runs])
    print(markdown(rows))


if __name__ == "__main__":
    main()
