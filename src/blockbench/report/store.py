"""Reading the MLflow store: the runs of one or several sweeps (or a whole experiment) as a :class:`RunSet`, their
kept latency samples and their environment. Tidying the runs into the report's frame is :mod:`blockbench.report.data`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from blockbench.measure import latencies
from blockbench.report.data import RunSet, tidy
from blockbench.tracking import PARENT_TAG, SWEEP_TAG, store_lock
from blockbench.tracking.reader import StoreReader

log = logging.getLogger(__name__)


class ReportDataError(RuntimeError):
    """The store holds nothing to report on (no experiment, no sweep, no runs); the message says what to do."""


def search(uri: str, experiment: str, filter_string: str = "", order_by: list[str] | None = None) -> pd.DataFrame:
    """The runs of one experiment of one store matching ``filter_string``, as a pandas frame."""
    reader = StoreReader(uri)
    with store_lock(uri):
        experiment_id = reader.experiment_id(experiment)
        if experiment_id is None:
            raise ReportDataError(f"experiment {experiment!r} does not exist in {uri}")
        return reader.runs(experiment_id, filter_string, order_by)


def latest_sweep(uri: str, experiment: str) -> str | None:
    """Run id of the newest sweep parent run (tag ``blockbench.sweep = parent``), or None."""
    parents = search(uri, experiment, f"tags.`{SWEEP_TAG}` = 'parent'", order_by=["attributes.start_time DESC"])
    return None if parents.empty else str(parents.iloc[0]["run_id"])


def load_runs(uri: str, experiment: str, parent_runs: Sequence[str] | None = ("latest",)) -> RunSet:
    """Children of the given sweep parents (``latest`` = newest sweep), or every run when ``parent_runs`` is None.

    Parent runs themselves are never rows: they hold no benchmark, only the sweep's bookkeeping.
    """
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        # MLflow would create an empty database there; a report never writes a store it was only to read.
        raise ReportDataError(
            f"no MLflow store at {uri}; run a sweep first (python main.py -m ...) or pass --tracking-uri"
        )
    experiment_id = StoreReader(uri).experiment_id(experiment)
    if experiment_id is None:
        raise ReportDataError(
            f"experiment {experiment!r} does not exist in {uri}; run a sweep first "
            f"(python main.py -m ...) or pass --tracking-uri/--experiment"
        )
    parent_ids: list[str] = []
    if parent_runs is not None:
        for given in parent_runs:
            if given == "latest":
                found = latest_sweep(uri, experiment)
                if found is None:
                    raise ReportDataError(
                        f"no sweep (parent run tagged {SWEEP_TAG}=parent) in experiment {experiment!r} of {uri}; "
                        "run one with `python main.py -m ...` or pass --all-runs"
                    )
                parent_ids.append(found)
            else:
                parent_ids.append(given)
    frames = []
    parents: list[dict[str, str]] = []
    if parent_runs is None:
        everything = search(uri, experiment)
        tag = f"tags.{SWEEP_TAG}"
        is_parent = everything[tag].eq("parent") if tag in everything else pd.Series(False, index=everything.index)
        frames.append(everything[~is_parent])
    else:
        for parent_id in dict.fromkeys(parent_ids):
            parent = search(uri, experiment, f"attributes.run_id = '{parent_id}'")
            if parent.empty:
                raise ReportDataError(f"run {parent_id} is not in experiment {experiment!r} of {uri}")
            row = parent.iloc[0]
            skipped = skipped_run_ids(row.get("tags.sweep_dir"), parent_id)
            parents.append(
                {
                    "run_id": parent_id,
                    "run_name": str(row.get("tags.mlflow.runName", "")),
                    "status": str(row.get("status", "")),
                    "skipped_runs": str(len(skipped)),
                }
            )
            frames.append(search(uri, experiment, f"tags.`{PARENT_TAG}` = '{parent_id}'"))
            if skipped:
                listed = ", ".join(f"'{run_id}'" for run_id in skipped)
                frames.append(search(uri, experiment, f"attributes.run_id IN ({listed})"))
    frames = [f for f in frames if not f.empty]
    raw = pd.concat(frames, ignore_index=True).drop_duplicates("run_id") if frames else pd.DataFrame()
    if raw.empty:
        where = f"sweep(s) {', '.join(parent_ids)}" if parent_ids else f"experiment {experiment!r}"
        raise ReportDataError(f"no runs in {where} of {uri}")
    frame, variant_keys = tidy(raw)
    return RunSet(frame, uri, experiment, experiment_id, parents, variant_keys)


def skipped_run_ids(sweep_dir: object, parent_id: str) -> list[str]:
    """Runs a resumed sweep skipped because an earlier sweep had them FINISHED: they belong in its report.

    The sweep records them only in its folder (``<sweep_dir>/*/result.json``, status ``skipped``, with the
    existing run's id), so this works where the sweep ran; elsewhere the report covers the sweep's own children.
    """
    if not isinstance(sweep_dir, str) or not sweep_dir:
        return []
    folder = Path(sweep_dir)
    try:
        info = json.loads((folder / "sweep.json").read_text())
    except (OSError, ValueError):
        return []
    if info.get("parent_run_id") != parent_id:
        return []
    found = []
    for path in sorted(folder.glob("*/result.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (
            result.get("status") == "skipped"
            and result.get("sweep_id") == info.get("sweep_id")
            and result.get("run_id")
        ):
            found.append(str(result["run_id"]))
    return found


def _artifact_path(runs: RunSet, row: pd.Series, name: str) -> Path:
    """A run's artifact as a local file: read in place from a local store, else downloaded."""
    uri = str(row["artifact_uri"])
    if uri.startswith("file:"):
        return Path(urlparse(uri).path) / name
    return StoreReader(runs.tracking_uri).download(str(row["run_id"]), name)


def load_trials(runs: RunSet, timing: str = "per_request") -> dict[str, list[np.ndarray]]:
    """The kept latency samples (``latencies.csv``) of every FINISHED timed run, one array per trial (one for a run
    without trials); runs without them are left out."""
    found: dict[str, list[np.ndarray]] = {}
    for _, row in runs.finished.iterrows():
        try:
            trials = latencies.read_trials(_artifact_path(runs, row, latencies.FILE).read_text(), timing)
        except Exception as exc:  # noqa: BLE001 - a run without samples only loses its intervals
            log.debug("no %s for %s: %s", latencies.FILE, row["run_id"], exc)
            continue
        if trials:
            found[str(row["run_id"])] = trials
    return found


def load_samples(runs: RunSet, timing: str = "per_request") -> dict[str, np.ndarray]:
    """:func:`load_trials`, every run's trials pooled into one array."""
    return {run_id: np.concatenate(trials) for run_id, trials in load_trials(runs, timing).items()}


def environment(runs: RunSet) -> dict[str, Any]:
    """The environment.json artifact of the newest FINISHED run (versions, GPU, driver), or {} if unreadable."""

    finished = runs.finished.sort_values("start_time", ascending=False)
    for _, row in finished.head(3).iterrows():
        try:
            return dict(json.loads(_artifact_path(runs, row, "environment.json").read_text()))
        except Exception as exc:  # noqa: BLE001 - a missing or unreadable artifact only loses the versions line
            log.debug("no environment.json for %s: %s", row["run_id"], exc)
    return {}
