"""Where a tracking store lives, whether it answers, and how a person opens it.

Kept apart from the tracker because the store lock, preflight checks and printed hints need the store's location
without opening an MLflow client (which, on a fresh sqlite file, runs schema migrations).
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from blockbench.errors import ConfigError
from blockbench.tracking.redaction import redact

REACHABLE_TIMEOUT_S = 5.0

# MLflow 3's UI shows the GenAI view unless told otherwise (a per-browser setting); this opens the runs.
RUNS_VIEW = "?workflowType=machine_learning"


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if urlparse(uri).scheme == "sqlite" else None


def artifact_root_for(uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database file (never into the working directory)."""
    db_path = sqlite_path(uri)
    if db_path is not None:
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
        return (db_path.parent / "mlartifacts" / folder).as_uri()
    return None


def check_reachable(uri: str) -> None:
    """Fail fast with one message when a tracking server does not answer (MLflow itself retries for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=REACHABLE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"tracking.uri={redact(uri)!r} cannot be reached ({exc.strerror or exc}); start the tracking server, "
            "fix the URI, or use the default sqlite store"
        ) from exc


def ui_hint(uri: str, experiment_id: str | None = None) -> str:
    """How to look at a store's runs: a server store is already a UI; a local one needs ``mlflow ui``."""
    shown = redact(uri)
    page = f"/#/experiments/{experiment_id}{RUNS_VIEW}" if experiment_id else ""
    if urlparse(uri).scheme in ("http", "https"):
        return f"open {shown.rstrip('/')}{page} in a browser"
    return f"mlflow ui --backend-store-uri {shown}" + (f", then open http://127.0.0.1:5000{page}" if page else "")
