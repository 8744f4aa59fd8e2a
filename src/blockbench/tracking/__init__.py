"""MLflow tracking that stays trustworthy when sweeps run concurrently, crash or resume.

One module per concern; every importer uses the names re-exported here:

* :mod:`.store` — :class:`Tracker`: MLflow reads and writes for one experiment through an explicit client (no
  global active run), and claims (:meth:`Tracker.claim`): a config runs once even with two sweeps on one store.
* :mod:`.lock` — the store lock: one writer at a time per sqlite store (threads and processes).
* :mod:`.liveness` — run owners (host, pid, pid start time) and the heartbeat thread; what makes a run stale.
* :mod:`.redaction` — secrets never reach the store: params, tags, text artifacts and printed URIs are redacted.
* :mod:`.location` — where a store lives, whether it answers, how to open it in the MLflow UI.
* :mod:`.tags` — the names of the tags blockbench puts on runs.
* :mod:`.logged_models` — MLflow 3 LoggedModels (the engines), through a tracker's client and lock.
"""

from blockbench.tracking.liveness import Heartbeat, owner_gone, owner_tags
from blockbench.tracking.location import artifact_root_for, check_reachable, sqlite_path, ui_hint
from blockbench.tracking.lock import StoreLock, store_lock
from blockbench.tracking.redaction import redact, redact_params
from blockbench.tracking.store import Claim, StaleRunError, Tracker, flatten
from blockbench.tracking.tags import (
    CONFIG_HASH_TAG,
    HEARTBEAT_TAG,
    HOST_TAG,
    PARENT_TAG,
    PID_STARTED_TAG,
    PID_TAG,
    STAGE_TAG,
    SWEEP_TAG,
)

__all__ = [
    "CONFIG_HASH_TAG",
    "HEARTBEAT_TAG",
    "HOST_TAG",
    "PARENT_TAG",
    "PID_STARTED_TAG",
    "PID_TAG",
    "STAGE_TAG",
    "SWEEP_TAG",
    "Claim",
    "Heartbeat",
    "StaleRunError",
    "StoreLock",
    "Tracker",
    "artifact_root_for",
    "check_reachable",
    "flatten",
    "owner_gone",
    "owner_tags",
    "redact",
    "redact_params",
    "sqlite_path",
    "store_lock",
    "ui_hint",
]
