"""run.prebuild_workers: a sweep builds every job's engine in parallel processes, then times the jobs from caches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from blockbench.sweep.prebuild import sweep_jobs
from tests.helpers import TINY, run_main, store_runs


def _job_runs(db: Path) -> list[dict[str, object]]:
    return [r for r in store_runs(db) if r["tags"].get("blockbench.sweep") != "parent"]


def test_sweep_jobs_expand_like_the_basic_sweeper() -> None:
    config = OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": ["block=vgg,mobilenet", "resolution=64,256", "precision=fp32"]},
                "sweeper": {"params": {"norm": "bn,ln", "precision": "fp16"}},
            }
        }
    )
    jobs = sweep_jobs(config)
    assert len(jobs) == 8  # the command line's precision=fp32 replaces the preset's fp16, as in Hydra
    assert all("precision=fp32" in job for job in jobs)
    assert {"norm=bn", "block=vgg", "resolution='64'", "precision=fp32"} == set(jobs[0])
    assert len({tuple(job) for job in jobs}) == 8


def test_paper_experiment_preset_is_the_96_config_sweep(compose_cfg) -> None:
    cfg = compose_cfg("+experiment=paper_gpu")
    assert (cfg.backend.name, cfg.backend.mode, cfg.backend.channels_last) == ("torch", "compile", True)
    assert (cfg.hardware.device, cfg.run.prebuild_workers, cfg.benchmark.min_s) == ("cuda", 8, 1.0)
    config = OmegaConf.create(
        {"hydra": {"overrides": {"task": ["+experiment=paper_gpu"]}, "sweeper": {"params": _preset_params()}}}
    )
    jobs = sweep_jobs(config)
    assert len(jobs) == 96
    assert {job[3] for job in jobs} == {"resolution='64'", "resolution='256'", "resolution='1024'"}


def _preset_params() -> dict[str, str]:
    preset = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "experiment" / "paper_gpu.yaml")
    return dict(preset.hydra.sweeper.params)


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_prebuild_fills_the_caches_and_a_rerun_builds_nothing(tmp_path: Path) -> None:
    args = ["-m", *TINY, "block=vgg,mobilenet", "run.prebuild_workers=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    first = run_main(*args, tmp_path=tmp_path, forked=True)  # its own cache: the test is what the prebuild put there
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-3000:]
    assert "prebuild: 2 built, 0 already finished, 0 failed" in out
    runs = _job_runs(tmp_path / "mlflow.db")
    assert len(runs) == 2 and {r["status"] for r in runs} == {"FINISHED"}
    # The timed jobs found what the workers built: the ONNX export, the MAC count and PyTorch FP32's references.
    assert {r["tags"]["export_cache"] for r in runs} == {"hit"}
    assert {r["tags"]["complexity_cache"] for r in runs} == {"hit"}
    assert {r["tags"]["reference_cache"] for r in runs} == {"hit"}

    again = run_main(*args, tmp_path=tmp_path, forked=True)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert "prebuild: 0 built, 2 already finished, 0 failed" in out
    assert "2 jobs, 0 finished, 0 failed, 2 skipped" in out


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_prebuilt_torch_compile_is_an_inductor_cache_hit_in_the_timed_job(tmp_path: Path) -> None:
    # Regression: inductor fixes its cache dir in the environment the first time anything asks (meta-device ops
    # do); the workers then compiled into /tmp while the timed jobs looked in the project cache, and missed.
    args = ["-m", *TINY, "backend=torch", "backend.mode=compile", "block=mobilenet", "run.prebuild_workers=1"]
    proc = run_main(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", tmp_path=tmp_path, forked=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    (run,) = _job_runs(tmp_path / "mlflow.db")
    assert run["tags"]["compile_cache"] == "hit"
    assert list((tmp_path / "cache" / "inductor").rglob("*.py")), "kernels belong in the project cache"
    # The timed job loaded the prebuilt graph without a pool of compile processes (started and stopped per worker).
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        (threads,) = con.execute(
            "SELECT value FROM params WHERE run_uuid=? AND key='state.inductor_compile_threads'", (run["run_id"],)
        ).fetchone()
    assert threads == "1"
