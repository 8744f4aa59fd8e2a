"""A/B comparison of two configurations: ratio of median latencies, its 95 % interval, and a verdict.

    python -m blockbench.compare RUN_ID_A RUN_ID_B                       # two logged runs
    python -m blockbench.compare --a block=mobilenet,norm=bn --b block=mobilenet,norm=ln   # selectors, newest run
    python -m blockbench.compare --interleave --a "block=mobilenet norm=bn" --b "block=mobilenet norm=ln" \\
        -- hardware.device=cuda precision=fp16 backend=torch backend.mode=cuda_graph

The interval of ``median(B) / median(A)`` is a percentile bootstrap (both sample sets resampled, seeded, so the same
samples always give the same interval): the ratio of two medians has no exact distribution-free interval, and the
bootstrap needs no assumption about the latency distribution. Where both logged runs measured trials
(``benchmark.trials`` >= 2: fresh processes and builds), each median is the median of its trial medians and the
bootstrap has two levels (trials, then each drawn trial's samples:
:func:`~blockbench.measure.statistics.trial_bootstrap`), so the interval covers the kernel choices that differ from
build to build; otherwise it covers the noise within one process. The output says which (``interval: covering trials
(Student's t over trial medians)`` or ``interval: within one process``). A logged comparison is seeded from the runs'
content (their config hashes, else their samples), never from their run ids, so it gives the same interval in any
store.

Verdict, at a threshold ``t`` (default 1 %), worded by :func:`blockbench.measure.statistics.describe`: "B is
slower (faster) than A by x–y %" when the whole interval lies above ``1 + t`` (below ``1 / (1 + t)``); "within ±t
%" when it lies between the two; otherwise "cannot tell at ±t %", with the interval, which then crosses a bound (it
may still exclude 1).

``--interleave`` measures the two configurations alternately in one process (A, B, A, B, ... in rounds of
``--round`` inferences), so a drift of clocks or temperature over the measurement falls on both alike instead of
masquerading as a difference between two runs made minutes apart. Alone, its interval is within one process (one
build of each side); with ``--trials N`` (N >= 2) each trial runs in a fresh process with fresh builds of both
sides and the interval covers the trials. The output says which.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import multiprocessing
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from hydra import compose, initialize_config_dir

from blockbench.config.paths import conf_dir, default_tracking_uri
from blockbench.errors import EXPLAINED_EXIT, BlockbenchError, ConfigError
from blockbench.job.engine import open_step
from blockbench.job.plan import JobPlan, plan_job, run_name
from blockbench.job.trials import trial_plan
from blockbench.measure import latencies
from blockbench.measure.statistics import (
    COVERING,
    RATIO_METHOD,
    SEED,
    TRIALS_RATIO_METHOD,
    WITHIN,
    bootstrap_medians,
    describe,
    interval,
    median_over_trials,
    seed_for,
    trial_bootstrap,
)
from blockbench.measure.timer import Timer
from blockbench.tracking.reader import StoreReader
from blockbench.tracking.tags import CONFIG_HASH_TAG


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
    interval_used: str = WITHIN  # which interval the verdict used, in words
    method: str = RATIO_METHOD
    trials_a: int = 1
    trials_b: int = 1

    @property
    def verdict(self) -> str:
        return describe(
            self.ratio, self.low, self.high, self.threshold, above="B is slower than A", below="B is faster than A"
        )

    def report(self) -> str:
        def counted(n: int, trials: int) -> str:
            return f"{trials} trials, {n} samples" if trials > 1 else f"{n} samples"

        return (
            f"A: median {self.median_a:.4f} ms ({counted(self.n_a, self.trials_a)}); B: median {self.median_b:.4f} ms "
            f"({counted(self.n_b, self.trials_b)})\nB / A = {self.ratio:.4f}, 95 % interval [{self.low:.4f}, "
            f"{self.high:.4f}] ({self.method})\ninterval: {self.interval_used}\nverdict: {self.verdict}"
        )


def compare_samples(
    a: np.ndarray, b: np.ndarray, threshold: float = 0.01, seed: int = SEED, interval_used: str = WITHIN
) -> Comparison:
    """The ratio of medians of two sample sets, bootstrapped (seeded, so reproducible): within one process each."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ConfigError(f"a comparison needs at least 2 samples on each side; got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    med_a, med_b = bootstrap_medians(a, rng), bootstrap_medians(b, rng)
    low, high = interval(med_b / med_a)
    median_a, median_b = float(np.median(a)), float(np.median(b))
    return Comparison(median_a, median_b, median_b / median_a, low, high, threshold, a.size, b.size, interval_used)


def compare_trials(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], threshold: float = 0.01, seed: int = SEED
) -> Comparison:
    """The ratio of two runs' medians, each the median of its trial medians, by their intervals over trials
    (:func:`~blockbench.measure.statistics.trial_bootstrap`) where both sides have >= 2 trials.

    With one trial on each side this is :func:`compare_samples` (within one process). With trials on one side only,
    that side keeps its interval over trials and the other its within-process one, and the output says so.
    """
    a = [np.asarray(t, dtype=float) for t in a if len(t)]
    b = [np.asarray(t, dtype=float) for t in b if len(t)]
    if len(a) <= 1 and len(b) <= 1:
        return compare_samples(a[0] if a else np.empty(0), b[0] if b else np.empty(0), threshold, seed)
    n_a, n_b = sum(t.size for t in a), sum(t.size for t in b)
    if not a or not b or min(t.size for t in [*a, *b]) < 2:
        raise ConfigError(f"a comparison needs at least 2 samples in each trial; got {n_a} and {n_b} in all")
    rng = np.random.default_rng(seed)
    boot_a, boot_b = trial_bootstrap(a, rng), trial_bootstrap(b, rng)
    low, high = interval(boot_b / boot_a)
    median_a, median_b = median_over_trials(a), median_over_trials(b)
    if len(a) > 1 and len(b) > 1:
        used = f"{COVERING}: A {len(a)} trials, B {len(b)} trials"
    else:
        one, many = ("A", "B") if len(a) == 1 else ("B", "A")
        n = max(len(a), len(b))
        used = (
            f"mixed: {many} {COVERING} over its {n} trials, {one} {WITHIN} (one trial: its "
            f"rebuild-to-rebuild variation is not covered)"
        )
    ratio = median_b / median_a
    return Comparison(
        median_a, median_b, ratio, low, high, threshold, n_a, n_b, used, TRIALS_RATIO_METHOD, len(a), len(b)
    )


# -- logged runs ---------------------------------------------------------------------------------------------------


def _trials_of_run(reader: StoreReader, run_id: str, timing: str) -> tuple[list[np.ndarray], str]:
    """The kept samples of one run (its ``latencies.csv`` artifact), per-request or pipelined, one array per trial;
    and the sha256 of that file, content to seed from where the run has no config hash."""
    try:
        text = reader.text(run_id, latencies.FILE)
    except Exception as exc:
        raise ConfigError(f"run {run_id}: cannot read its latencies.csv ({exc})") from exc
    trials = latencies.read_trials(text, timing)
    if not trials:
        raise ConfigError(f"run {run_id} has no {timing} samples (benchmark.timing was not {timing} or both)")
    return trials, hashlib.sha256(text.encode()).hexdigest()


def _seed_material(reader: StoreReader, run_id: str, samples_sha256: str) -> str:
    """What a logged run's side of the seed is made of: its config hash (the content of its configuration, the
    same in every store), else the sha256 of its samples; never its run id."""
    return reader.tags(run_id).get(CONFIG_HASH_TAG) or f"samples:{samples_sha256}"


def _run_by_selector(reader: StoreReader, experiment_id: str, selector: str) -> str:
    """The newest FINISHED, timed run whose tags match ``key=value,key=value``."""
    pairs = [p.split("=", 1) for p in selector.replace(" ", ",").split(",") if p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ConfigError(f"selector {selector!r} must be key=value pairs, e.g. block=mobilenet,norm=bn")
    clauses = [f"tags.`{k}` = '{v}'" for k, v in pairs] + ["attributes.status = 'FINISHED'"]
    runs = reader.runs(experiment_id, " and ".join(clauses), order_by=["attributes.start_time DESC"])
    timed = runs.iloc[0:0]
    if "metrics.latency_ms_median" in runs:
        build_only = runs["tags.build_only"].eq("true") if "tags.build_only" in runs else False
        timed = runs[runs["metrics.latency_ms_median"].notna() & ~build_only]
    if timed.empty:
        raise ConfigError(f"no FINISHED timed run matches {selector!r}")
    return str(timed.iloc[0]["run_id"])


def _existing_run(reader: StoreReader, run_id: str) -> str:
    """``run_id`` if the store has it, in whichever experiment: a run id names one run across a store."""
    from mlflow.exceptions import MlflowException

    try:
        reader.tags(run_id)
    except MlflowException as exc:
        raise ConfigError(f"no run {run_id!r} in {reader.uri} ({exc.error_code})") from exc
    return run_id


def compare_runs(uri: str, experiment: str, a: str, b: str, timing: str, threshold: float) -> Comparison:
    """Two logged runs, each a run id (found in any experiment of the store) or a tag selector (``key=value,...``,
    the newest matching run of ``experiment``); read through a :class:`StoreReader`, never the global MLflow URI."""
    reader = StoreReader(uri)
    experiment_id = ""
    if "=" in a or "=" in b:
        found = reader.experiment_id(experiment)
        if found is None:
            raise ConfigError(f"no experiment {experiment!r} in {uri}; a tag selector searches one (--experiment)")
        experiment_id = found
    ids = [_run_by_selector(reader, experiment_id, x) if "=" in x else _existing_run(reader, x) for x in (a, b)]
    print(f"A: run {ids[0]}\nB: run {ids[1]}")
    (trials_a, sha_a), (trials_b, sha_b) = (_trials_of_run(reader, x, timing) for x in ids)
    sides = (_seed_material(reader, x, sha) for x, sha in zip(ids, (sha_a, sha_b), strict=True))
    return compare_trials(trials_a, trials_b, threshold, seed_for("|".join([timing, *sides])))


# -- interleaved re-measurement ------------------------------------------------------------------------------------


def interleave(
    a: list[str], b: list[str], common: list[str], rounds: int, per_round: int, threshold: float, trials: int = 1
) -> Comparison:
    """Build both engines, then time A and B alternately: rounds of ``per_round`` inferences.

    ``trials`` 1: in this process, one build of each side. ``trials`` >= 2: each trial in a fresh process (spawned)
    with fresh builds of both sides (after the first, in empty engine caches, as ``benchmark.trial_builds=fresh``
    does), and the verdict uses the interval over the trials.
    """
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
    if trials < 1:
        raise ConfigError(f"--trials={trials} is not allowed: it must be >= 1")
    if trials == 1:
        first, second = _interleaved(plans, rounds, per_round)
        used = f"{WITHIN} (one build of each side, interleaved; rebuild-to-rebuild variation is not covered)"
        return compare_samples(first, second, threshold, interval_used=used)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for trial in range(trials):
        print(f"trial {trial + 1} of {trials}: a fresh process, fresh builds", flush=True)
        trial_plans = [trial_plan(plan, trial) for plan in plans]
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                found.append(pool.submit(_interleaved, trial_plans, rounds, per_round).result())
        finally:
            for later in trial_plans if trial else []:  # a fresh trial's folder holds its engines and caches
                shutil.rmtree(later.ctx.work_dir, ignore_errors=True)
    material = " ".join([*a, "|", *b, "|", *common])
    result = compare_trials([x for x, _ in found], [y for _, y in found], threshold, seed_for(material))
    how = " (each trial a fresh process with fresh builds of both sides, interleaved within it)"
    return dataclasses.replace(result, interval_used=result.interval_used + how)


def _interleaved(plans: list[JobPlan], rounds: int, per_round: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' samples, timed alternately in this process."""
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
    return np.asarray(samples[0]), np.asarray(samples[1])


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
    parser.add_argument(
        "--trials", type=int, default=1, help="--interleave: trials, each a fresh process with fresh builds"
    )
    args = parser.parse_args(argv)
    try:
        if args.interleave:
            if not (args.a and args.b):
                raise ConfigError("--interleave needs --a and --b: the overrides of each configuration")
            result = interleave(
                args.a.split(), args.b.split(), args.runs, args.rounds, args.per_round, args.threshold, args.trials
            )
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
