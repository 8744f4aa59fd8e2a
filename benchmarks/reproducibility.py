"""Does a config's second sweep land inside the first sweep's covering interval? Per config and mode: the first
sweep's median with its within-run interval (one trial: one process and build) and its covering interval (the
trials: Student's t over trial medians), the second sweep's median, and whether it lies inside each; then each
sweep's wall time (the precision stopping rule off, and on for sweeps labelled ``<mode>-p``).

Reads sweep folders ``<mode>-<sweep>`` made by benchmarks/reproducibility_gpu.sh (``tracking.enabled=false``: each
job's ``run.json``) and its ``walls.tsv``.

    python benchmarks/reproducibility.py /tmp/rep --first a --second b --out docs/gpu/reproducibility.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from job_rows import markdown, write_rows

from blockbench.measure import latencies
from blockbench.measure import metric_names as names
from blockbench.measure.statistics import median_over_trials, trials_interval


def sweep_runs(folder: Path) -> dict[str, dict]:
    """run name -> run.json of every FINISHED job in a sweep folder."""
    found = {}
    for path in sorted(folder.glob("*/run.json")):
        run = json.loads(path.read_text())
        if run["status"] == "FINISHED" and names.LATENCY_MEDIAN in run["metrics"]:
            found[run["run_name"]] = {**run, "folder": str(path.parent)}
    return found


def _percent(width: float, median: float) -> str:
    return f"±{50 * width / median:.2f} %"


def rows_for(mode: str, first: dict[str, dict], second: dict[str, dict], root: Path) -> list[dict[str, str]]:
    """One row per config both sweeps finished: the first's intervals (as logged, and recomputed from its samples by
    this commit's statistics) and the second's median against each."""
    rows = []
    for name in sorted(first.keys() & second.keys()):
        a, b = first[name]["metrics"], second[name]["metrics"]
        median, again = a[names.LATENCY_MEDIAN], b[names.LATENCY_MEDIAN]
        within = (a[names.LATENCY_MEDIAN_CI_LOW], a[names.LATENCY_MEDIAN_CI_HIGH])
        logged = (a[names.LATENCY_MEDIAN_TRIALS_CI_LOW], a[names.LATENCY_MEDIAN_TRIALS_CI_HIGH])
        trials = latencies.read_trials((Path(first[name]["folder"]) / latencies.FILE).read_text())
        covering = trials_interval(trials)
        rows.append(
            {
                "mode": mode,
                "config": name,
                "trials": f"{a[names.TRIALS]:.0f}",
                "first_ms": f"{median:.4f}",
                "trial_medians": " ".join(f"{float(np.median(t)):.4f}" for t in trials),
                "within_run": _percent(within[1] - within[0], median),
                "logged_covering": f"[{logged[0]:.4f}, {logged[1]:.4f}]",
                "covering": f"[{covering[0]:.4f}, {covering[1]:.4f}] ({_percent(covering[1] - covering[0], median)})",
                "second_ms": f"{again:.4f}",
                "second/first": f"{again / median:.4f}",
                "inside_within": "yes" if within[0] <= again <= within[1] else "no",
                "inside_logged": "yes" if logged[0] <= again <= logged[1] else "no",
                "inside_covering": "yes" if covering[0] <= again <= covering[1] else "no",
            }
        )
        assert abs(median_over_trials(trials) - median) <= 1e-4 * median, name  # the samples are the run's
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding one sweep folder per label")
    parser.add_argument("--first", default="a", help="sweep label of the intervals")
    parser.add_argument("--second", default="b", help="sweep label of the medians checked against them")
    parser.add_argument("--out", type=Path, help="CSV of the per-config rows")
    args = parser.parse_args()
    modes = sorted({p.name.rsplit("-", 1)[0] for p in args.root.iterdir() if p.is_dir() and "-" in p.name})
    rows = []
    for mode in modes:
        first, second = (sweep_runs(args.root / f"{mode}-{label}") for label in (args.first, args.second))
        rows += rows_for(mode, first, second, args.root)
    if args.out:
        write_rows(args.out, rows, ["mode", "config"])
    print(markdown(rows))
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        inside = {k: sum(r[f"inside_{k}"] == "yes" for r in mine) for k in ("covering", "logged", "within")}
        print(
            f"\n{mode}: second median inside the covering interval {inside['covering']}/{len(mine)} (as logged: "
            f"{inside['logged']}), inside the within-run interval {inside['within']}"
        )
    walls = args.root / "walls.tsv"
    if walls.exists():
        lines = [line.split("\t") for line in walls.read_text().splitlines() if line.strip()]
        print()
        print(markdown([{"sweep": label, "wall s": f"{float(seconds):.1f}"} for label, seconds in lines]))


if __name__ == "__main__":
    main()
