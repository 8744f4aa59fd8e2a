"""Chaos check: a 24-job tiny sweep with injected failures is killed with SIGKILL mid-sweep, then resumed.

Why: resume, stale-run detection and failure isolation only matter if, after the worst interruption, the store
holds every config exactly once FINISHED and nothing completed is lost. This drives the real ``main.py`` (CPU,
tiny widths) and checks the MLflow store directly::

    python scripts/chaos.py                 # prints jobs, finished, failed, duplicates (0), lost (0)
    python scripts/chaos.py --kill-after 6 --workdir /tmp/chaos --keep

Exit status 0 only when duplicates and lost are 0, exactly the injected configs failed and no run is left RUNNING.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS, NORMS, ACTS = ("vgg", "resnet", "mobilenet", "convnext"), ("bn", "ln", "ln_native"), ("relu", "gelu")
TINY = [
    "model.channels=[8,8,16,16,32]",
    "model.blocks_per_stage=1",
    "benchmark.warmup_iters=2",
    "benchmark.warmup_s=0",
    "benchmark.min_iters=5",
    "benchmark.min_s=0",
    "benchmark.progress=false",
]
# Deterministic failures at three different stages; they fail again on the resume (they are not flaky).
INJECTED = {
    ("resnet", "ln", "gelu"): "export",
    ("convnext", "bn", "relu"): "build",
    ("mobilenet", "ln_native", "relu"): "benchmark",
}


def fault_spec() -> str:
    return ";".join(
        f"{stage}@block.name={block},norm.name={norm},act.name={act}" for (block, norm, act), stage in INJECTED.items()
    )


def sweep_cmd(work: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "main.py"),
        "-m",
        *TINY,
        f"block={','.join(BLOCKS)}",
        f"norm={','.join(NORMS)}",
        f"act={','.join(ACTS)}",
        f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
        f"cache_dir={work / 'cache'}",
        f"hydra.sweep.dir={work / 'sweep'}",
    ]


def store(db: Path) -> list[dict]:
    """Every run with status and tags, read straight from sqlite (retrying while a writer holds it)."""
    if not db.exists():
        return []
    for _ in range(50):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                tags = defaultdict(dict)
                for run_id, key, value in con.execute("SELECT run_uuid, key, value FROM tags"):
                    tags[run_id][key] = value
                return [
                    {"run_id": run_id, "status": status, "tags": tags[run_id]}
                    for run_id, status in con.execute("SELECT run_uuid, status FROM runs")
                ]
        except sqlite3.OperationalError:
            time.sleep(0.2)
    raise RuntimeError(f"cannot read {db}")


def job_runs(runs: list[dict]) -> list[dict]:
    return [r for r in runs if "block" in r["tags"]]


def config_of(run: dict) -> tuple[str, str, str]:
    return run["tags"]["block"], run["tags"]["norm"], run["tags"]["act"]


def run_and_kill(work: Path, env: dict[str, str], kill_after: int) -> tuple[int, int, set[str]]:
    """Start the sweep; SIGKILL its process group once ``kill_after`` jobs are done and the next one is RUNNING.

    Returns the exit status, the number of jobs done at the kill and the ids of the runs FINISHED by then.
    """
    with (work / "first.log").open("w") as log:
        proc = subprocess.Popen(
            sweep_cmd(work), cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        done = 0
        while proc.poll() is None:
            done = len(list((work / "sweep").glob("*/result.json")))
            running = [r for r in job_runs(store(work / "mlflow.db")) if r["status"] == "RUNNING"]
            if done >= kill_after and running:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.1)
    finished = {r["run_id"] for r in job_runs(store(work / "mlflow.db")) if r["status"] == "FINISHED"}
    return proc.returncode, done, finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where the store, cache and sweep go (default: a temp dir)")
    parser.add_argument("--kill-after", type=int, default=10, help="SIGKILL once this many jobs are done")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="blockbench-chaos-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BLOCKBENCH_FAULT": fault_spec()}
    configs = list(itertools.product(BLOCKS, NORMS, ACTS))
    start = time.monotonic()

    rc1, done, finished_before = run_and_kill(work, env, args.kill_after)
    at_kill = store(work / "mlflow.db")
    print(
        f"first run: kill -9 (exit {rc1}) with {done} jobs done ({len(finished_before)} FINISHED), "
        f"{sum(r['status'] == 'RUNNING' for r in at_kill)} runs left RUNNING (the job in progress + the sweep parent)"
    )
    with (work / "resume.log").open("w") as log:
        rc2 = subprocess.run(sweep_cmd(work), cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    lines = (work / "resume.log").read_text().splitlines()
    summary = next((line for line in lines if line.startswith("sweep: ")), "?")
    print(f"resume: exit {rc2} (1: injected failures) — {summary}")

    runs = store(work / "mlflow.db")
    jobs = job_runs(runs)
    finished = Counter(config_of(r) for r in jobs if r["status"] == "FINISHED")
    failed = {config_of(r) for r in jobs if r["status"] == "FAILED"} - set(finished)
    still_finished = {r["run_id"] for r in jobs if r["status"] == "FINISHED"}
    lost = [c for c in configs if c not in finished and c not in INJECTED] + sorted(finished_before - still_finished)
    duplicates = sum(n - 1 for n in finished.values())
    running_left = [r for r in runs if r["status"] == "RUNNING"]
    stale = [r for r in runs if r["status"] == "KILLED" and r["tags"].get("error", "").startswith("stale:")]

    print(f"jobs: {len(configs)}")
    print(f"finished: {len(finished)}")
    print(f"failed: {len(failed)} (injected: {len(INJECTED)}, at stages {sorted(set(INJECTED.values()))})")
    print(f"duplicates: {duplicates}")
    print(f"lost: {len(lost)}")
    print(f"stale runs reaped: {len(stale)}, runs left RUNNING: {len(running_left)}")
    print(f"wall: {time.monotonic() - start:.0f} s")
    (work / "chaos.json").write_text(
        json.dumps(
            {"finished": len(finished), "failed": len(failed), "duplicates": duplicates, "lost": lost}, default=list
        )
    )
    ok = duplicates == 0 and not lost and failed == set(INJECTED) and not running_left and rc1 == -signal.SIGKILL
    if args.keep or not ok:
        print(f"work dir (store, logs, sweep): {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
