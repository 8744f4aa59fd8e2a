"""A/B comparison of two configurations: ratio of median latencies, its 95 % interval, and a verdict.

    python -m blockbench.compare RUN_ID_A RUN_ID_B                       # two logged runs
    python -m blockbench.compare --a block=mobilenet,norm=bn --b block=mobilenet,norm=ln   # selectors, newest run
    python -m blockbench.compare --interleave --a "block=mobilenet norm=bn" --b "block=mobilenet norm=ln" \\
        -- hardware.device=cuda precision=fp16 backend=torch backend.mode=cuda_graph

The interval of ``median(B) / median(A)`` is a percentile bootstrap (both sample sets resampled, a fixed seed, so
the same samples always give the same interval): the ratio of two medians has no exact distribution-free interval,
and the bootstrap needs no assumption about the latency distribution. Verdict, at a threshold ``t`` (default 1 %),
worded by :func:`blockbench.measure.statistics.describe`: "B is slower (faster) than A by x–y %" when the whole interval
lies above ``1 + t`` (below ``1 / (1 + t)``); "within ±t %" when it lies between the two; otherwise "cannot tell at
±t %", with the interval, which then crosses a bound (it may still exclude 1).

``--interleave`` measures the two configurations alternately in one process (A, B, A, B, ... in rounds of
``--round`` inferences), so a drift of clocks or temperature over the measurement falls on both alike instead of
masquerading as a difference between two runs made minutes apart.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass

import numpy as np

from blockbench.config.paths import conf_dir, default_tracking_uri
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.job.engine import open_step
from blockbench.job.plan import plan_job, run_name
from blockbench.measure import latencies
from blockbench.measure.statistics import RATIO_METHOD, SEED, bootstrap_medians, describe, interval
from blockbench.measure.timer import Timer


@dataclass(frozen=True)
class Comparison:
    """``median(B) / median(A)`` with its 95 % interval and the verdict at ``threshold``."""

    median_a: float
    median_b: float
    ratio: float
    low: float
    high: float
    threshold: float
    n_a: int
    n_b: int

    @property
    def verdict(self) -> str:
        return describe(
            self.ratio, self.low, self.high, self.threshold, above="B is slower than A", below="B is faster than A"
        )

    def report(self) -> str:
        return (
            f"A: median {self.median_a:.4f} ms ({self.n_a} samples); B: median {self.median_b:.4f} ms "
            f"({self.n_b} samples)\nB / A = {self.ratio:.4f}, 95 % interval [{self.low:.4f}, {self.high:.4f}] "
            f"({RATIO_METHOD})\nverdict: {self.verdict}"
        )


def compare_samples(a: np.ndarray, b: np.ndarray, threshold: float = 0.01) -> Comparison:
    """The ratio of medians of two sample sets, bootstrapped (seeded, so reproducible)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ConfigError(f"a comparison needs at least 2 samples on each side; got {a.size} and {b.size}")
    rng = np.random.default_rng(SEED)
    med_a, med_b = bootstrap_medians(a, rng), bootstrap_medians(b, rng)
    low, high = interval(med_b / med_a)
    median_a, median_b = float(np.median(a)), float(np.median(b))
    return Comparison(median_a, median_b, median_b / median_a, low, high, threshold, a.size, b.size)


# -- logged runs ---------------------------------------------------------------------------------------------------


def _samples_of_run(run_id: str, timing: str) -> np.ndarray:
    """The kept samples of one run (its ``latencies.csv`` artifact), per-request or pipelined."""
    import mlflow.artifacts

    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{latencies.FILE}")
    except Exception as exc:
        raise ConfigError(f"run {run_id}: cannot read its latencies.csv ({exc})") from exc
    values = latencies.read(text, timing)
    if not values.size:
        raise ConfigError(f"run {run_id} has no {timing} samples (benchmark.timing was not {timing} or both)")
    return values


def _run_by_selector(client: object, experiment_id: str | None, selector: str) -> str:
    """The newest FINISHED, timed run whose tags match ``key=value,key=value``."""
    pairs = [p.split("=", 1) for p in selector.replace(" ", ",").split(",") if p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ConfigError(f"selector {selector!r} must be key=value pairs, e.g. block=mobilenet,norm=bn")
    clauses = [f"tags.`{k}` = '{v}'" for k, v in pairs] + ["attributes.status = 'FINISHED'"]
    runs = client.search_runs(  # type: ignore[attr-defined]
        [experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"], max_results=50
    )
    timed = [r for r in runs if r.data.tags.get("build_only") != "true" and "latency_ms_median" in r.data.metrics]
    if not timed:
        raise ConfigError(f"no FINISHED timed run matches {selector!r}")
    return str(timed[0].info.run_id)


def _existing_run(client: object, uri: str, run_id: str) -> str:
    """``run_id`` if the store has it, in whichever experiment: a run id names one run across a store."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)  # type: ignore[attr-defined]
    except MlflowException as exc:
        raise ConfigError(f"no run {run_id!r} in {uri} ({exc.error_code})") from exc
    return run_id


def compare_runs(uri: str, experiment: str, a: str, b: str, timing: str, threshold: float) -> Comparison:
    """Two logged runs, each a run id (found in any experiment of the store) or a tag selector (``key=value,...``,
    the newest matching run of ``experiment``)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = None
    if "=" in a or "=" in b:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise ConfigError(f"no experiment {experiment!r} in {uri}; a tag selector searches one (--experiment)")
        experiment_id = found.experiment_id
    ids = [_run_by_selector(client, experiment_id, x) if "=" in x else _existing_run(client, uri, x) for x in (a, b)]
    print(f"A: run {ids[0]}\nB: run {ids[1]}")
    return compare_samples(_samples_of_run(ids[0], timing), _samples_of_run(ids[1], timing), threshold)


# -- interleaved re-measurement ------------------------------------------------------------------------------------


def interleave(
    a: list[str], b: list[str], common: list[str], rounds: int, per_round: int, threshold: float
) -> Comparison:
    """Build both engines, then time A and B alternately in one process: rounds of ``per_round`` inferences."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfgs = [
            compose(
                "config", overrides=[*side, *common, "tracking.enabled=false", f"work_dir=/tmp/blockbench-compare/{n}"]
            )
            for n, side in (("a", a), ("b", b))
        ]
    plans = [plan_job(cfg) for cfg in cfgs]
    for side, cfg in zip("AB", cfgs, strict=True):
        print(f"{side}: {run_name(cfg)} ({cfg.hardware.device}, {cfg.benchmark.mode})", flush=True)
    if plans[0].ctx.precision != plans[1].ctx.precision or plans[0].ctx.device != plans[1].ctx.device:
        raise ConfigError(
            "--interleave compares two configurations on one device in one precision (numeric modes are global)"
        )
    with contextlib.ExitStack() as stack:
        steps = [stack.enter_context(open_step(plan)) for plan in plans]
        if any(step is None for step in steps):
            raise ConfigError("--interleave needs engines this machine can run (a build-only job has none)")
        timers = [Timer(step) for step in steps]  # type: ignore[arg-type]
        samples: list[list[float]] = [[], []]
        for step, timer in zip(steps, timers, strict=True):
            with step.context():  # type: ignore[union-attr]
                for _ in range(max(10, per_round)):  # warm-up: caches, clocks, lazy initialisation
                    timer()
        for _ in range(rounds):
            for side, (step, timer) in enumerate(zip(steps, timers, strict=True)):
                with step.context():  # type: ignore[union-attr]
                    samples[side].extend(timer() for _ in range(per_round))
    return compare_samples(np.asarray(samples[0]), np.asarray(samples[1]), threshold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blockbench.compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="*", help="two run ids, A then B; with --interleave: overrides for both, after --"
    )
    parser.add_argument("--a", help="A: tag selector (key=value,...) of a logged run; with --interleave, overrides")
    parser.add_argument("--b", help="B: likewise")
    parser.add_argument("--tracking-uri", default=default_tracking_uri())
    parser.add_argument(
        "--experiment", default="blockbench", help="where --a/--b tag selectors search; run ids are found in any"
    )
    parser.add_argument("--timing", choices=("per_request", "pipelined"), default="per_request")
    parser.add_argument("--threshold", type=float, default=0.01, help="relative difference that matters (0.01 = 1 %%)")
    parser.add_argument("--interleave", action="store_true", help="re-measure A and B alternately in this process")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--round", dest="per_round", type=int, default=20, help="inferences per side per round")
    args = parser.parse_args(argv)
    try:
        if args.interleave:
            if not (args.a and args.b):
                raise ConfigError("--interleave needs --a and --b: the overrides of each configuration")
            result = interleave(args.a.split(), args.b.split(), args.runs, args.rounds, args.per_round, args.threshold)
        else:
            pair = args.runs if len(args.runs) == 2 else [args.a, args.b]
            if any(x is None for x in pair) or len(pair) != 2:
                raise ConfigError("give two run ids (A B), or --a and --b selectors")
            result = compare_runs(args.tracking_uri, args.experiment, pair[0], pair[1], args.timing, args.threshold)
    except BlockbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXPLAINED_EXIT
    print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
