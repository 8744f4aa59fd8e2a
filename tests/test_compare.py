"""A/B comparison: known samples in, known ratios, intervals and verdicts out; runs found by id or by tags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blockbench.compare import compare_samples, compare_trials, main
from tests.helpers import ROOT, SHARED_CACHE, TINY, run_main, store_runs


def noisy(median: float, n: int, seed: int, spread: float = 0.005) -> np.ndarray:
    return median * (1 + spread * np.random.default_rng(seed).standard_normal(n))


def test_a_ten_percent_slowdown_is_found_with_its_interval() -> None:
    result = compare_samples(noisy(1.0, 300, 1), noisy(1.10, 300, 2))
    assert result.ratio == pytest.approx(1.10, abs=0.003)
    assert 1.09 < result.low < result.ratio < result.high < 1.11
    assert result.verdict == f"B is slower than A by {100 * (result.low - 1):.1f}–{100 * (result.high - 1):.1f} %"


def test_faster_equivalent_and_undecided() -> None:
    assert compare_samples(noisy(1.0, 300, 3), noisy(0.9, 300, 4)).verdict.startswith("B is faster than A")
    same = compare_samples(noisy(1.0, 500, 5), noisy(1.0, 500, 6), threshold=0.01)
    assert same.verdict == "within ±1 %"
    few = compare_samples(noisy(1.0, 8, 7, spread=0.2), noisy(1.02, 8, 8, spread=0.2))
    assert few.verdict.startswith("cannot tell at ±1 %: the interval, ")


def test_an_interval_that_excludes_1_but_crosses_the_threshold_is_not_called_no_difference() -> None:
    """1.02 in [1.006, 1.034] at ±1 %: B is slower, by more or less than 1 % the samples cannot say."""
    from blockbench.compare import Comparison

    verdict = Comparison(1.0, 1.02, 1.02, 1.006, 1.034, 0.01, 300, 300).verdict
    assert verdict == "cannot tell at ±1 %: the interval, +0.6 % to +3.4 %, crosses ±1 %"
    assert Comparison(1.0, 1.1, 1.1, 1.09, 1.11, 0.01, 300, 300).verdict == "B is slower than A by 9.0–11.0 %"
    assert Comparison(1.0, 0.9, 0.9, 0.89, 0.91, 0.01, 300, 300).verdict == "B is faster than A by 9.0–11.0 %"


def test_the_interval_is_reproducible() -> None:
    a, b = noisy(1.0, 100, 9), noisy(1.05, 100, 10)
    assert compare_samples(a, b) == compare_samples(a, b)


def test_too_few_samples_are_refused() -> None:
    from blockbench.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 2 samples"):
        compare_samples(np.array([1.0]), np.array([1.0, 2.0]))


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_two_logged_runs_compared_by_tags_and_by_ids(tmp_path: Path, capsys) -> None:
    for norm in ("bn", "ln"):  # main.py forked from the session's server; the cache is not what is compared
        args = (*TINY, "block=mobilenet", f"norm={norm}")
        assert run_main(*args, tmp_path=tmp_path, forked=True, cache_dir=SHARED_CACHE).returncode == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["--tracking-uri", uri, "--a", "block=mobilenet,norm=bn", "--b", "block=mobilenet,norm=ln"]) == 0
    out = capsys.readouterr().out
    assert "B / A = " in out and "95 % interval" in out and "verdict: " in out
    by_norm = {r["tags"]["norm"]: r["run_id"] for r in store_runs(tmp_path / "mlflow.db")}
    assert main(["--tracking-uri", uri, by_norm["bn"], by_norm["ln"]]) == 0
    assert f"A: run {by_norm['bn']}" in capsys.readouterr().out


@pytest.mark.usefixtures("store")
def test_a_selector_matching_nothing_is_one_message_and_exit_2(tmp_path: Path) -> None:
    assert run_main(*TINY, tmp_path=tmp_path, forked=True, cache_dir=SHARED_CACHE).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "blockbench.compare", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
         "--a", "block=vgg", "--b", "block=convnext"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "no FINISHED timed run matches 'block=convnext'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_interleave_applies_the_common_overrides(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "blockbench.compare", "--interleave", "--a", "block=mobilenet norm=bn",
         "--b", "block=mobilenet norm=ln", "--", "benchmark.batch_size=0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "benchmark.batch_size=0 is not allowed" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.slow
def test_interleave_times_both_tiny_networks_alternately(capsys) -> None:
    tiny = [a for a in TINY if a.startswith("model.")]
    args = [
        "--interleave",
        "--a",
        "block=mobilenet norm=bn",
        "--b",
        "block=vgg norm=bn",
        "--rounds",
        "3",
        "--round",
        "4",
    ]
    assert main([*args, *tiny, "cache_dir=/tmp/blockbench-compare-cache"]) == 0
    out = capsys.readouterr().out
    assert "A: mobilenet-bn-relu-64-fp32-onnxruntime (cpu, compute)" in out and "(12 samples)" in out
    assert "\ninterval: within one process (one build of each side, interleaved;" in out


@pytest.mark.slow
def test_interleave_trials_each_run_in_a_fresh_process_and_the_interval_covers_them(capsys) -> None:
    tiny = [a for a in TINY if a.startswith("model.")]
    args = ["--interleave", "--a", "block=vgg norm=bn", "--b", "block=vgg norm=ln", "--rounds", "2", "--round", "5"]
    assert main([*args, "--trials", "2", *tiny, "cache_dir=/tmp/blockbench-compare-cache"]) == 0
    out = capsys.readouterr().out
    assert out.count("a fresh process, fresh builds") == 2 and "(2 trials, 20 samples)" in out
    assert (
        "\ninterval: covering trials (Student's t over trial medians): A 2 trials, B 2 trials (each trial a fresh"
        in out
    )


def _logged_run(
    uri: str, experiment: str, samples: np.ndarray | list[np.ndarray], folder: Path, tags: dict[str, str] | None = None
) -> str:
    """A run in ``experiment`` holding ``samples`` (one array, or one per trial) as its latencies.csv, as a timed
    job logs them."""
    from mlflow.tracking import MlflowClient

    from blockbench.measure import latencies

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_id = client.create_run(experiment_id, tags=tags or {}).info.run_id
    folder.mkdir(parents=True)
    trials = samples if isinstance(samples, list) else [samples]
    latencies.write(folder / latencies.FILE, [[("per_request", t)] for t in trials])
    client.log_artifact(run_id, str(folder / latencies.FILE))
    client.set_terminated(run_id)
    return run_id


def test_run_ids_are_found_in_any_experiment_of_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run ids name runs across a store: no --experiment needed (the default one does not even exist here)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    a = _logged_run(uri, "h100-paper", noisy(1.0, 100, 11), tmp_path / "a")
    b = _logged_run(uri, "h100-speed", noisy(1.2, 100, 12), tmp_path / "b")
    assert main(["--tracking-uri", uri, a, b]) == 0
    out = capsys.readouterr().out
    assert f"A: run {a}" in out and f"B: run {b}" in out and "verdict: B is slower than A by" in out
    assert main(["--tracking-uri", uri, a, "0" * 32]) == 2
    assert f"no run '{'0' * 32}' in {uri}" in capsys.readouterr().err


def builds(medians: list[float], n: int, seed: int, spread: float = 0.002) -> list[np.ndarray]:
    """One trial per build: each build's true median given, the samples of each tightly around it."""
    return [noisy(m, n, seed + i, spread) for i, m in enumerate(medians)]


def test_trials_on_both_sides_compare_medians_of_trial_medians_with_the_covering_interval() -> None:
    """Builds whose medians differ by ±5 %: one process each would call a 2 % difference; the trials cannot."""
    a, b = builds([0.95, 1.0, 1.05, 0.97, 1.03], 200, 20), builds([0.97, 1.02, 1.07, 0.99, 1.05], 200, 30)
    result = compare_trials(a, b, threshold=0.01)
    assert result.median_a == pytest.approx(np.median([np.median(t) for t in a]))
    assert result.ratio == pytest.approx(1.02, abs=0.005)
    within = compare_samples(a[1], b[1], threshold=0.01)  # one process of each
    assert (result.high - result.low) > 10 * (within.high - within.low)
    assert result.verdict.startswith("cannot tell at ±1 %") and within.verdict.startswith("B is slower than A")
    report = result.report()
    assert "\ninterval: covering trials (Student's t over trial medians): A 5 trials, B 5 trials\n" in report
    assert "(5 trials, 1000 samples)" in report and "each side drawn from its interval over trials" in report
    assert compare_trials(a, b, 0.01, seed=5) == compare_trials(a, b, 0.01, seed=5)


def test_one_trial_each_is_the_within_process_comparison_and_says_so() -> None:
    a, b = noisy(1.0, 100, 40), noisy(1.05, 100, 41)
    assert compare_trials([a], [b]) == compare_samples(a, b)
    assert "\ninterval: within one process\n" in compare_samples(a, b).report()


def test_trials_on_one_side_only_say_which_side_the_interval_covers() -> None:
    result = compare_trials([noisy(1.0, 100, 42)], builds([1.1, 1.12, 1.08], 100, 43))
    assert result.interval_used.startswith(
        "mixed: B covering trials (Student's t over trial medians) over its 3 trials, A within"
    )
    assert result.trials_a == 1 and result.trials_b == 3


def test_logged_runs_with_trials_use_the_covering_interval_seeded_by_content_not_run_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same trials logged twice (other run ids) give the same interval: the config hashes seed it."""
    a, b = builds([1.0, 1.02, 0.98], 100, 50), builds([1.2, 1.25, 1.18], 100, 60)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outputs = []
    for copy in ("first", "second"):
        ids = [
            _logged_run(uri, "blockbench", trials, tmp_path / copy / side, {"blockbench.config_hash": f"hash-{side}"})
            for side, trials in (("a", a), ("b", b))
        ]
        assert main(["--tracking-uri", uri, *ids]) == 0
        outputs.append(capsys.readouterr().out.split("\n", 2)[2])  # after the two "A: run <id>" lines
    assert outputs[0] == outputs[1]
    assert "interval: covering trials (Student's t over trial medians): A 3 trials, B 3 trials" in outputs[0]
    assert "verdict: B is slower than A by" in outputs[0]
