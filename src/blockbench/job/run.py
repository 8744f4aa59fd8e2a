"""Run one job: plan -> execute (a worker process per trial) -> record. The only job code that talks to a recorder.

Everything that can be refused is refused before a run exists (:func:`~blockbench.job.plan.plan_job`); once a run
exists it always ends FINISHED, FAILED or KILLED, with the failing stage recorded. In a sweep, a config the
experiment already has FINISHED (same config hash, :mod:`blockbench.resume`) is skipped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from blockbench.config.paths import source_root
from blockbench.errors import BlockbenchError
from blockbench.job import faults
from blockbench.job.launch import execute_job
from blockbench.job.plan import JobPlan, plan_job
from blockbench.job.stages import failed_stage, mark_failed_stage
from blockbench.job.trials import run_trials
from blockbench.measure import metric_names as names
from blockbench.measure.environment import device_name, environment_record, git_commit, gpu_facts, source_tags
from blockbench.measure.state import as_params
from blockbench.measure.statistics import seed_for
from blockbench.recording import resume
from blockbench.recording.files import write_job_files, write_results
from blockbench.recording.recorder import MlflowRecorder, Outcome, Recorder, RunFileRecorder, RunIdentity
from blockbench.tracking import flatten

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    skipped: str = ""  # why the job did not run (``run_id`` is then the run that already has it), else empty
    experiment_id: str | None = None  # the MLflow experiment holding the run
    failure: BlockbenchError | None = None  # measured and logged, then failed (benchmark.parity=fail)
    engine_files: list[Path] = field(default_factory=list)  # what the build produced, logged with the run


def run_job(
    cfg: DictConfig, parent_run_id: str | None = None, resume_sweep: bool = False, plan: JobPlan | None = None
) -> JobResult:
    """Plan, execute and record one job. Raises on failure, after ending its run as FAILED/KILLED.

    ``resume_sweep``: a config the experiment already has FINISHED, or RUNNING in a live process, is not run
    again (unless ``run.force``); the result then has ``skipped`` set and the existing run's id. ``plan``: the
    job's :func:`plan_job` result, when the caller planned it already.
    """
    plan = plan or plan_job(cfg)
    config, ctx = plan.config, plan.ctx
    fingerprint = resume.fingerprint(cfg, ctx.device, ctx.build_only)
    identity = RunIdentity(plan.name, run_tags(plan), resume.config_hash(fingerprint), parent_run_id)
    recorder: Recorder = (MlflowRecorder if config.tracking.enabled else RunFileRecorder)(
        config, identity, ctx.work_dir
    )
    params = flatten(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    skipped = recorder.begin(params, fingerprint, skip_done=resume_sweep and not config.run.force)
    if skipped:
        log.info("skip: %s: %s (run.force=true runs it again)", plan.name, skipped)
        return JobResult(run_id=recorder.run_id, skipped=skipped)

    def enter(name: str) -> None:
        recorder.stage(name)

    stage = "setup"
    try:
        environment = environment_record(ctx.device, source_root())
        write_job_files(ctx.work_dir, cfg, fingerprint, environment)
        trials = run_trials(plan, lambda trial: execute_job(trial, enter), seed_for(identity.config_hash))
        execution = trials.result
        stage = "tracking"
        enter(stage)
        faults.inject(stage, cfg)
        write_results(ctx.work_dir, environment, execution.state, trials.all_series, execution.attribution)
        outcome = Outcome(
            metrics=execution.metrics,
            tags=execution.tags,
            params=as_params(execution.state),
            engine_files=execution.engine_files,
            failed=execution.failure is not None,
            trial_metrics=trials.per_trial,
        )
        stored = recorder.finish(outcome)
        if stored is not None:
            execution.metrics[names.ARTIFACT_MB] = stored
        if execution.failure is not None:
            stage = execution.failure.stage
            raise execution.failure
        return JobResult(
            run_id=recorder.run_id,
            metrics=execution.metrics,
            tags=execution.tags,
            experiment_id=recorder.experiment_id,
            engine_files=execution.engine_files,
        )
    except BaseException as exc:
        mark_failed_stage(exc, stage)  # kept where the worker named the stage already
        recorder.fail(exc, failed_stage(exc), isinstance(exc, KeyboardInterrupt))
        raise


def run_tags(plan: JobPlan) -> dict[str, str]:
    """What a run is tagged with before it starts: axes, backend, device, commit, status."""
    config, device = plan.config, plan.ctx.device
    commit = git_commit(source_root())
    tags = {
        "backend": config.backend.name,
        "device_name": device_name(device),
        "git_commit": commit,
        "mlflow.source.git.commit": commit.removesuffix("-dirty"),
        "status": "running",
        "block": config.block.name,
        "norm": config.norm.name,
        "act": config.act.name,
        "precision": config.precision.name,
        "resolution": str(config.resolution.size),
        **source_tags(),
    }
    if device.type == "cuda":
        # The physical GPU this run measured (launchers pick it: Ray and Slurm set CUDA_VISIBLE_DEVICES per job),
        # in nvidia-smi's form, so runs that ran at the same time can be checked for never sharing one.
        uuid = gpu_facts(device).get("gpu_uuid", "")
        tags["gpu_uuid"] = uuid if not uuid or uuid.startswith("GPU-") else f"GPU-{uuid}"
        tags["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return tags
