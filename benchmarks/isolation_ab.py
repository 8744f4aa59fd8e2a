"""The same sweeps at two commits, side by side: per-config medians and each sweep's cold wall time.

Reads sweep folders made with ``tracking.enabled=false`` (each job's ``run.json``) and a ``walls.tsv`` of
``label<TAB>seconds`` lines; labels are ``<commit>-<mode>`` (e.g. ``old-cuda_graph``, ``new-compile``).

    python benchmarks/isolation_ab.py /tmp/ab --walls /tmp/ab/walls.tsv --out docs/gpu/isolation_ab.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from job_rows import markdown, write_rows


def sweep_medians(folder: Path) -> dict[str, float]:
    """run name -> per-request median (ms) of every FINISHED job in a sweep folder."""
    found = {}
    for path in sorted(folder.glob("*/run.json")):
        run = json.loads(path.read_text())
        if run["status"] == "FINISHED" and "latency_ms_median" in run["metrics"]:
            found[run["run_name"]] = run["metrics"]["latency_ms_median"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding one sweep folder per label")
    parser.add_argument("--walls", type=Path, help="label<TAB>seconds per sweep")
    parser.add_argument("--out", type=Path, help="CSV of the per-config rows")
    parser.add_argument("--before", default="old", help="label prefix of the earlier commit")
    parser.add_argument("--after", default="new", help="label prefix of the later commit")
    args = parser.parse_args()
    labels = sorted(p.name for p in args.root.iterdir() if p.is_dir())
    modes = sorted({label.split("-", 1)[1] for label in labels if "-" in label})
    rows = []
    for mode in modes:
        before = sweep_medians(args.root / f"{args.before}-{mode}")
        after = sweep_medians(args.root / f"{args.after}-{mode}")
        for name in sorted(before.keys() | after.keys()):
            old, new = before.get(name), after.get(name)
            rows.append(
                {
                    "mode": mode,
                    "config": name,
                    f"{args.before}_ms": f"{old:.4f}" if old else "",
                    f"{args.after}_ms": f"{new:.4f}" if new else "",
                    "after/before": f"{new / old:.4f}" if old and new else "",
                }
            )
    if args.out:
        write_rows(args.out, rows, ["mode", "config"])
    print(markdown(rows))
    if args.walls and args.walls.exists():
        walls = [line.split("\t") for line in args.walls.read_text().splitlines() if line.strip()]
        print()
        print(markdown([{"sweep": label, "cold wall s": f"{float(seconds):.1f}"} for label, seconds in walls]))


if __name__ == "__main__":
    main()
