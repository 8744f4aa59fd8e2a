"""Trials: each a fresh worker and a fresh engine cache; one run with the median of the trial medians, an interval
that covers the trials, each trial's numbers as steps and in trials.csv; a failed trial keeps the finished ones."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from blockbench.backends.base import JobContext
from blockbench.backends.torch.backend import INDUCTOR_CACHE, TorchBackend
from blockbench.job.execute import ExecutionResult
from blockbench.job.plan import plan_job
from blockbench.job.run import run_job
from blockbench.job.trials import ENGINE_CACHE, run_trials, trial_plan
from blockbench.measure import latencies
from blockbench.measure import metric_names as names
from blockbench.measure.harness import LatencyResult
from blockbench.recording.layout import TRIALS_DIR, TRIALS_FILE
from tests.helpers import TINY


@pytest.mark.usefixtures("store")
def test_three_trials_make_one_run_with_a_covering_interval_and_each_trial_kept(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg(*TINY, "benchmark.trials=3", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}")
    result = run_job(cfg)
    work = tmp_path / "work"
    m = result.metrics
    assert m[names.TRIALS] == 3
    trials = latencies.read_trials((work / latencies.FILE).read_text())
    assert len(trials) == 3 and all(t.size >= 5 for t in trials)
    medians = [float(np.median(t)) for t in trials]
    assert m[names.LATENCY_MEDIAN] == pytest.approx(float(np.median(medians)), rel=1e-5)
    low, high = m[names.LATENCY_MEDIAN_TRIALS_CI_LOW], m[names.LATENCY_MEDIAN_TRIALS_CI_HIGH]
    assert low <= m[names.LATENCY_MEDIAN] <= high
    assert low <= min(medians) + 1e-9 or high >= max(medians) - 1e-9  # it spans the trials, not one process

    rows = list(csv.DictReader((work / TRIALS_FILE).open()))
    assert [r["engine_cache"] for r in rows] == ["shared", "fresh", "fresh"]
    assert [float(r["latency_ms_median"]) for r in rows] == pytest.approx(medians, rel=1e-4)
    assert all(r["stop_reason"] == "min_iters/min_s" for r in rows)
    # later trials' folders are gone (their engines and caches), their worker logs kept
    assert sorted(p.name for p in (work / TRIALS_DIR).iterdir()) == ["worker-1.log", "worker-2.log"]
    assert result.tags["trial_builds"] == "fresh" and "median of 3 trial medians" in result.tags["trial_statistics"]

    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        steps = con.execute(
            "SELECT step, value FROM metrics WHERE run_uuid=? AND key=? ORDER BY step",
            (result.run_id, names.TRIAL_MEDIAN),
        ).fetchall()
    assert [s for s, _ in steps] == [0, 1, 2] and [v for _, v in steps] == pytest.approx(medians, rel=1e-4)


def test_a_fresh_trial_builds_in_an_empty_engine_cache_and_a_shared_one_does_not(compose_cfg, tmp_path: Path) -> None:
    plan = plan_job(compose_cfg(*TINY, "benchmark.trials=2", "tracking.enabled=false"))
    assert trial_plan(plan, 0) is plan and plan.ctx.engines_dir == plan.ctx.cache_dir
    fresh = trial_plan(plan, 1)
    assert fresh.ctx.work_dir == plan.ctx.work_dir / TRIALS_DIR / "1"
    assert fresh.ctx.engines_dir == fresh.ctx.work_dir / ENGINE_CACHE and fresh.ctx.cache_dir == plan.ctx.cache_dir
    shared_cfg = compose_cfg(*TINY, "benchmark.trials=2", "benchmark.trial_builds=shared", "tracking.enabled=false")
    shared = trial_plan(plan_job(shared_cfg), 1)
    assert shared.ctx.engines_dir == plan.ctx.cache_dir


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["benchmark.trials=2", "run.isolation=inline"], "benchmark.trials=2 is not allowed; each trial is a fresh"),
        (["benchmark.trial_builds=shared"], "benchmark.trial_builds='shared' is not allowed; it says how trials after"),
        (["benchmark.trial_builds=cached"], "benchmark.trial_builds='cached'"),
        (["benchmark.throttle=discard"], "throttling is observed through NVML on CUDA GPUs; hardware.device=cpu"),
        (["benchmark.throttle=discard", "run.isolation=inline"], "watched from the parent of a worker process"),
        (["benchmark.trials=0"], "benchmark.trials=0"),
        (["benchmark.target_precision=1.5"], "benchmark.target_precision=1.5 is not allowed; it must be a fraction"),
    ],
)
def test_trial_and_stopping_settings_that_cannot_work_are_refused_before_any_run(
    compose_cfg, overrides: list[str], message: str
) -> None:
    from blockbench.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_job(compose_cfg(*TINY, "tracking.enabled=false", *overrides))


def test_torch_compile_reads_inductor_caches_from_the_trials_engine_cache(tmp_path: Path, monkeypatch) -> None:
    from blockbench.backends.torch.settings import TorchSettings

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    ctx = JobContext(
        device=__import__("torch").device("cpu"),
        precision="fp32",
        batch_size=1,
        resolution=32,
        work_dir=tmp_path / "w",
        cache_dir=tmp_path / "shared",
        cpu_threads=0,
        engine_cache_dir=tmp_path / "fresh",
    )
    backend = TorchBackend(TorchSettings(name="torch", mode="compile"), ctx)
    backend.build(__import__("torch").nn.Conv2d(3, 4, 3), None)  # torch.compile wraps; nothing compiles yet
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "fresh" / INDUCTOR_CACHE)
    backend.close()


def _result(median: float) -> ExecutionResult:
    samples = np.full(20, median)
    latency = LatencyResult(samples, median, 1, "host_clock")
    return ExecutionResult(metrics=latency.summary(), latency=latency, tags={"stop_reason": "max_s"})


def test_a_failed_trial_fails_the_job_and_keeps_the_finished_trials(compose_cfg, tmp_path: Path) -> None:
    plan = plan_job(compose_cfg(*TINY, "benchmark.trials=3", "tracking.enabled=false"))
    calls: list[Path] = []

    def execute(trial_plan_) -> ExecutionResult:
        calls.append(trial_plan_.ctx.work_dir)
        if len(calls) == 3:
            raise RuntimeError("worker died")
        trial_plan_.ctx.work_dir.mkdir(parents=True, exist_ok=True)
        return _result(1.0 + len(calls))

    with pytest.raises(RuntimeError, match="worker died") as raised:
        run_trials(plan, execute, seed=1)
    assert "the 2 finished trials (medians 2.0000, 3.0000 ms) are kept" in "".join(raised.value.__notes__)
    work = plan.ctx.work_dir
    assert [t.tolist()[0] for t in latencies.read_trials((work / latencies.FILE).read_text())] == [2.0, 3.0]
    assert len(list(csv.DictReader((work / TRIALS_FILE).open()))) == 2


def test_trials_of_known_medians_combine_to_their_median_and_an_interval_between_them(compose_cfg) -> None:
    plan = plan_job(compose_cfg(*TINY, "benchmark.trials=3", "tracking.enabled=false"))
    plan.ctx.work_dir.mkdir(parents=True)
    done = iter([_result(1.0), _result(3.0), _result(2.0)])
    trials = run_trials(plan, lambda _: next(done), seed=7)
    m = trials.result.metrics
    assert m[names.LATENCY_MEDIAN] == 2.0 and m[names.TRIALS] == 3
    # three trials: wider than their range (the few-trials widening)
    assert m[names.LATENCY_MEDIAN_TRIALS_CI_LOW] < 1.0 and m[names.LATENCY_MEDIAN_TRIALS_CI_HIGH] > 3.0
    assert [t[names.TRIAL_MEDIAN] for t in trials.per_trial] == [1.0, 3.0, 2.0]
    assert "the median trial's (per_request: trial 2)" in trials.result.tags["trial_statistics"]
    assert m["throughput_qps"] == pytest.approx(1000.0 / 2.0)  # from the headline, not from a trial


def test_what_any_trial_found_wrong_counts_for_the_run(compose_cfg) -> None:
    """A later trial's fresh build fails parity and throttles: the run says so, whichever trial is the median."""
    plan = plan_job(compose_cfg(*TINY, "benchmark.trials=3", "tracking.enabled=false"))
    plan.ctx.work_dir.mkdir(parents=True)
    results = [_result(1.0), _result(2.0), _result(3.0)]
    for n, r in enumerate(results):
        r.tags |= {"parity": "pass", "throttled": "false (10 readings)"}
        r.metrics |= {names.PARITY_REL_L2: 1e-6 * (n + 1), names.THROTTLED_S: 0.0}
    results[2].tags |= {"parity": "fail", "throttled": "true: 0.4 s of 1.0 s (...)", "latency_unstable": "CoV 3 %"}
    results[2].metrics |= {names.PARITY_REL_L2: 0.5, names.THROTTLED_S: 0.4}
    done = iter(results)
    trials = run_trials(plan, lambda _: next(done), seed=7)
    tags, m = trials.result.tags, trials.result.metrics
    assert tags["parity"] == "fail" and tags["parity_failed_trials"] == "2" and m[names.PARITY_REL_L2] == 0.5
    assert tags["throttled"].startswith("true in trials 2: true: 0.4 s") and m[names.THROTTLED_S] == 0.4
    assert tags["latency_unstable"] == "trial 2: CoV 3 %"
    rows = list(csv.DictReader((plan.ctx.work_dir / TRIALS_FILE).open()))
    assert [r["parity"] for r in rows] == ["pass", "pass", "fail"]


def test_a_rerun_with_fewer_trials_leaves_no_stale_trial_files(compose_cfg) -> None:
    plan = plan_job(compose_cfg(*TINY, "benchmark.trials=2", "tracking.enabled=false"))
    stale = plan.ctx.work_dir / TRIALS_DIR
    stale.mkdir(parents=True)
    (stale / "worker-5.log").write_text("an earlier attempt's")
    (plan.ctx.work_dir / TRIALS_FILE).write_text("stale")
    done = iter([_result(1.0), _result(1.1)])
    run_trials(plan, lambda _: next(done), seed=1)
    assert not (stale / "worker-5.log").exists()
    assert "stale" not in (plan.ctx.work_dir / TRIALS_FILE).read_text()
