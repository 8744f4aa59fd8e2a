"""The names of the tags blockbench puts on MLflow runs.

One home for them, because several writers (the pipeline, the sweep, the recorder, the heartbeat) and several
readers (stale-run reaping, claims, the report) must agree on every name.
"""

from __future__ import annotations

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests a job's run under its sweep's parent run

# the process that owns a run (liveness.owner_tags): how another process tells that it has died
HOST_TAG = "blockbench.host"
PID_TAG = "blockbench.pid"
PID_STARTED_TAG = "blockbench.pid_started"
HEARTBEAT_TAG = "blockbench.heartbeat"

STAGE_TAG = "blockbench.stage"  # the pipeline stage a run is in (recorded as the error stage when it is reaped)
CONFIG_HASH_TAG = "blockbench.config_hash"  # what claims and resumed sweeps compare
SWEEP_TAG = "blockbench.sweep"  # "parent" on a sweep's parent run
