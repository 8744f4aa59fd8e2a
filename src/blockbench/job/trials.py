"""Independent trials of one job (``benchmark.trials``): each a fresh worker process and a fresh engine build.

One process's samples say how sure that process's median is; they say nothing of the next build, and engines that
pick kernels by timing them pick differently from build to build and process to process. So a job can be measured
as N trials, and its median is the median of the trial medians, with an interval that covers both levels
(:func:`~blockbench.measure.statistics.trials_interval`). What each trial makes again:

* **always** (its own worker process): the CUDA context and allocator, cuDNN's benchmark picks
  (``backend.cudnn_benchmark``), ONNX Runtime's session and its provider's algorithm search, CUDA graph capture;
* ``benchmark.trial_builds=fresh`` (the default): every trial after the first builds its engine in an empty
  engine cache (:attr:`~blockbench.backends.base.JobContext.engine_cache_dir`): TensorRT times its tactics again
  (no timing cache) and builds a new engine; inductor compiles and autotunes again (no FX-graph cache, no
  ``*.best_config`` picks); AOTInductor compiles its package again. The first trial reads the shared cache, which a
  prebuild or an earlier run of the same content may have filled;
* ``benchmark.trial_builds=shared``: every trial reads the shared engine caches, so trials differ by process only.

The ONNX export, MAC count and PyTorch FP32 references are deterministic and always come from the shared caches.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from blockbench.job.execute import ExecutionResult
from blockbench.job.observation import THROTTLED_TAG
from blockbench.job.plan import JobPlan
from blockbench.measure import latencies, statistics
from blockbench.measure import metric_names as names
from blockbench.recording.layout import TRIALS_DIR, TRIALS_FILE, WORKER_LOG

log = logging.getLogger(__name__)

ENGINE_CACHE = "engine_cache"  # in a fresh trial's folder: its empty engine cache, removed after the trial
# (name in trials.csv, metric or tag the value comes from)
TRIAL_COLUMNS = (
    ("latency_ms_median", names.LATENCY_MEDIAN),
    ("latency_ms_median_ci95_low", names.LATENCY_MEDIAN_CI_LOW),
    ("latency_ms_median_ci95_high", names.LATENCY_MEDIAN_CI_HIGH),
    ("latency_cov", names.LATENCY_COV),
    ("iterations", "iterations"),
    ("parity_rel_l2_err", names.PARITY_REL_L2),
    ("pipelined_ms_median", names.PIPELINED_MEDIAN),
    ("build_s", names.BUILD_S),
    ("trt_builder_s", names.BUILDER_S),
    ("throttled_s", names.THROTTLED_S),
    ("throttle_discarded", names.THROTTLE_DISCARDED),
)
TRIAL_TAGS = ("stop_reason", "parity", "compile_cache", "export_cache", THROTTLED_TAG)
# per trial, as MLflow metrics with step = trial: (logged name, source metric)
STEP_METRICS = (
    (names.TRIAL_MEDIAN, names.LATENCY_MEDIAN),
    (names.TRIAL_MEDIAN_CI_LOW, names.LATENCY_MEDIAN_CI_LOW),
    (names.TRIAL_MEDIAN_CI_HIGH, names.LATENCY_MEDIAN_CI_HIGH),
    (names.TRIAL_BUILD_S, names.BUILD_S),
    ("trial_pipelined_ms_median", names.PIPELINED_MEDIAN),
    ("trial_latency_cov", names.LATENCY_COV),
    ("trial_throttled_s", names.THROTTLED_S),
)
# (headline median, its covering interval's names, the series it is the median of)
COVERED = (
    (names.LATENCY_MEDIAN, names.LATENCY_MEDIAN_TRIALS_CI_LOW, names.LATENCY_MEDIAN_TRIALS_CI_HIGH, "per_request"),
    (
        names.PIPELINED_MEDIAN,
        names.PIPELINED_MEDIAN_TRIALS_CI_LOW,
        names.PIPELINED_MEDIAN_TRIALS_CI_HIGH,
        "pipelined",
    ),
)


@dataclasses.dataclass
class Trials:
    """What N trials produced: one result for the run, one metrics mapping per trial (step = trial)."""

    result: ExecutionResult
    per_trial: list[dict[str, float]]
    all_series: list[latencies.Series]


def trial_plan(plan: JobPlan, trial: int) -> JobPlan:
    """Trial ``trial``'s plan: the first runs in the job's folder with the shared caches; each later one in its own
    folder under ``trials/`` and, for fresh builds, with an empty engine cache of its own."""
    if trial == 0:
        return plan
    work = plan.ctx.work_dir / TRIALS_DIR / str(trial)
    if work.exists():  # a resumed job's leftovers
        shutil.rmtree(work)
    fresh = plan.config.benchmark.trial_builds == "fresh"
    ctx = dataclasses.replace(plan.ctx, work_dir=work, engine_cache_dir=work / ENGINE_CACHE if fresh else None)
    # the first trial's engine is the one logged, and its attribution the run's: later trials only time theirs
    config = dataclasses.replace(plan.config, benchmark=dataclasses.replace(plan.config.benchmark, attribution=False))
    return dataclasses.replace(plan, ctx=ctx, config=config)


def run_trials(plan: JobPlan, execute: Callable[[JobPlan], ExecutionResult], seed: int) -> Trials:
    """Execute ``plan`` as ``benchmark.trials`` trials, one after another, and combine them.

    ``execute`` runs one trial's plan (a fresh worker); ``seed`` seeds the covering interval (from the config's
    content, so the same samples always give the same interval). A trial that fails (after earlier ones finished)
    fails the job; the earlier trials' samples are kept in the job folder and named in the error.
    """
    count = plan.config.benchmark.trials
    shutil.rmtree(plan.ctx.work_dir / TRIALS_DIR, ignore_errors=True)  # an earlier attempt's, never this run's
    (plan.ctx.work_dir / TRIALS_FILE).unlink(missing_ok=True)
    done: list[ExecutionResult] = []
    for trial in range(count):
        if count > 1:
            log.info("trial %d of %d (%s engine cache)", trial + 1, count, _engine_cache(plan, trial))
        this = trial_plan(plan, trial)
        try:
            done.append(execute(this))
        except BaseException as exc:
            if done:
                _keep_partial(plan, done, exc)
            raise
        finally:
            if trial:
                _tidy(this.ctx.work_dir)
        if done[-1].failure is not None or done[-1].latency is None:  # parity=fail, or build-only: nothing to repeat
            break
    return combine(plan, done, seed)


def combine(plan: JobPlan, done: list[ExecutionResult], seed: int) -> Trials:
    """One result from the trials.

    Per timing (per-request, pipelined): the median of the trial medians as the headline, the interval covering the
    trials, and the rest of that timing's statistics (within-trial interval, CoV, percentiles, energy) from its
    median trial (the lower one of an even count), with the throughput recomputed from the headline. The engine —
    its files, build metrics and tags, the state, the attribution — is the first trial's (the logged engine). What
    any trial found wrong counts for the run: parity fails if any trial's failed (the largest errors are logged),
    the window is throttled if any trial's was, and an unstable trial makes the run unstable.
    """
    first = done[0]
    all_series = [r.series for r in done]
    if len(done) == 1:
        first.metrics[names.TRIALS] = 1.0
        return Trials(first, [], all_series)
    metrics, tags = dict(first.metrics), dict(first.tags)
    used = []
    for median, low, high, timing in COVERED:
        trials = [samples for r in done for name, samples in r.series if name == timing and len(samples)]
        if len(trials) != len(done) or any(r.latency is None for r in done):
            continue
        middle = int(np.argsort([float(np.median(t)) for t in trials])[(len(trials) - 1) // 2])
        summary = done[middle].latency.summary()  # type: ignore[union-attr]
        pipelined = timing == "pipelined"
        metrics.update({k: v for k, v in summary.items() if k.startswith("pipelined_") == pipelined})
        metrics[median] = statistics.median_over_trials(trials)
        metrics[low], metrics[high] = statistics.trials_interval(trials, seed)
        qps = "pipelined_throughput_qps" if pipelined else "throughput_qps"
        metrics[qps] = 1000.0 * plan.ctx.batch_size / metrics[median]
        used.append(f"{timing}: trial {middle}")
    metrics[names.TRIALS] = float(len(done))
    _worst_of_trials(done, metrics, tags)
    tags["trial_statistics"] = (
        f"{names.LATENCY_MEDIAN}: the median of {len(done)} trial medians, its interval "
        f"{names.LATENCY_MEDIAN_TRIALS_CI_LOW}/_high by {statistics.TRIALS_METHOD}; the other latency statistics "
        f"(within-trial interval, CoV, percentiles) are the median trial's ({', '.join(used)}); the engine, its "
        "build and attribution are trial 0's"
    )
    tags["trial_builds"] = plan.config.benchmark.trial_builds
    result = dataclasses.replace(
        first, metrics=metrics, tags=tags, failure=next((r.failure for r in done if r.failure), None)
    )
    per_trial = [{step: r.metrics[source] for step, source in STEP_METRICS if source in r.metrics} for r in done]
    write_table(plan.ctx.work_dir / TRIALS_FILE, plan, done)
    log.info(
        "trials: median %.4f ms over %d trials (%s), interval covering them %.4f-%.4f ms",
        metrics.get(names.LATENCY_MEDIAN, np.nan),
        len(done),
        ", ".join(f"{r.metrics.get(names.LATENCY_MEDIAN, np.nan):.4f}" for r in done),
        metrics.get(names.LATENCY_MEDIAN_TRIALS_CI_LOW, np.nan),
        metrics.get(names.LATENCY_MEDIAN_TRIALS_CI_HIGH, np.nan),
    )
    return Trials(result, per_trial, all_series)


def _worst_of_trials(done: list[ExecutionResult], metrics: dict[str, float], tags: dict[str, str]) -> None:
    """What any trial found wrong, for the run: parity, throttling, instability."""
    failed = [n for n, r in enumerate(done) if r.tags.get("parity") == "fail"]
    if "parity" in tags:
        tags["parity"] = "fail" if failed else tags["parity"]
        if failed:
            tags["parity_failed_trials"] = ",".join(map(str, failed))
    for key in (names.PARITY_MAX_ABS, names.PARITY_REL_L2):
        values = [r.metrics[key] for r in done if key in r.metrics]
        if values:
            metrics[key] = max(values)
    hot = [n for n, r in enumerate(done) if r.tags.get(THROTTLED_TAG, "").startswith("true")]
    if hot:
        tags[THROTTLED_TAG] = f"true in trials {','.join(map(str, hot))}: " + done[hot[0]].tags[THROTTLED_TAG]
    for key in (names.THROTTLED_S, names.THROTTLE_DISCARDED):
        values = [r.metrics[key] for r in done if key in r.metrics]
        if values:
            metrics[key] = float(sum(values))
    unstable = [f"trial {n}: {r.tags['latency_unstable']}" for n, r in enumerate(done) if "latency_unstable" in r.tags]
    if unstable:
        tags["latency_unstable"] = "; ".join(unstable)


def write_table(path: Path, plan: JobPlan, done: list[ExecutionResult]) -> None:
    """``trials.csv``: one row per trial, what it measured and how its engine was built."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["trial", "engine_cache", *(c for c, _ in TRIAL_COLUMNS), *TRIAL_TAGS])
        for trial, r in enumerate(done):
            values = [f"{r.metrics[m]:.6g}" if m in r.metrics else "" for _, m in TRIAL_COLUMNS]
            writer.writerow([trial, _engine_cache(plan, trial), *values, *(r.tags.get(t, "") for t in TRIAL_TAGS)])


def _engine_cache(plan: JobPlan, trial: int) -> str:
    return "fresh" if trial and plan.config.benchmark.trial_builds == "fresh" else "shared"


def _tidy(work: Path) -> None:
    """A later trial's folder: its worker log kept as ``trials/worker-<n>.log``, the rest (engine, cache) removed."""
    if not work.is_dir():
        return
    if (work / WORKER_LOG).is_file():
        shutil.move(work / WORKER_LOG, work.parent / f"worker-{work.name}.log")
    shutil.rmtree(work, ignore_errors=True)


def _keep_partial(plan: JobPlan, done: list[ExecutionResult], exc: BaseException) -> None:
    """A trial failed: the finished trials' samples and table stay in the job folder, and the error names them."""
    work = plan.ctx.work_dir
    latencies.write(work / latencies.FILE, [r.series for r in done])
    write_table(work / TRIALS_FILE, plan, done)
    medians = ", ".join(f"{r.metrics.get(names.LATENCY_MEDIAN, np.nan):.4f}" for r in done)
    exc.add_note(
        f"trial {len(done) + 1} of {plan.config.benchmark.trials} failed; the {len(done)} finished trials "
        f"(medians {medians} ms) are kept in {work / latencies.FILE} and {work / TRIALS_FILE}"
    )
