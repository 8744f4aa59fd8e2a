"""MLflow 3 LoggedModels of one experiment, through a :class:`~blockbench.tracking.store.Tracker`'s client and lock.

A LoggedModel is MLflow's entity for a model a run produced: its own params, tags, artifacts and status, and
metrics linked to it by ``model_id`` from any run (``search_logged_models``; the experiment's Models tab). Here it
is found by a tag (the content hash of the file it holds), so one model is shared by every run that measures the
same bytes; :meth:`find_or_create` is one critical section of the store lock, so two processes never create two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from blockbench.tracking.redaction import redact, redact_params, redacted
from blockbench.tracking.store import Tracker

READY = "READY"


@dataclass(frozen=True)
class ModelRef:
    """A LoggedModel as blockbench uses it: its id, whether this call created it, and whether it holds its file."""

    model_id: str
    created: bool
    ready: bool
    artifact_location: str


class LoggedModels:
    """The LoggedModels of ``tracker``'s experiment."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def find(self, tag: str, value: str) -> ModelRef | None:
        """The oldest model of the experiment whose ``tag`` is ``value``, or None."""
        with self.tracker.lock:
            page = self.tracker.client.search_logged_models(
                [self.tracker.experiment_id],
                filter_string=f"tags.`{tag}` = '{value}'",
                order_by=[{"field_name": "creation_time", "ascending": True}],
                max_results=1,
            )
        if not page:
            return None
        model = page[0]
        return ModelRef(model.model_id, False, model.status == READY, model.artifact_location)

    def find_or_create(
        self,
        tag: str,
        value: str,
        name: str,
        model_type: str,
        source_run_id: str,
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> ModelRef:
        """The model whose ``tag`` is ``value``; created PENDING for ``source_run_id`` (with ``params`` and
        ``tags``) where there is none yet."""
        with self.tracker.lock:
            found = self.find(tag, value)
            if found is not None:
                return found
            model = self.tracker.client.create_logged_model(
                self.tracker.experiment_id,
                name=redact(name),
                source_run_id=source_run_id,
                tags={**{k: redact(str(v)) for k, v in tags.items()}, tag: value},
                params=redact_params(params),
                model_type=model_type,
            )
        return ModelRef(model.model_id, True, False, model.artifact_location)

    def upload(self, model: ModelRef, path: Path) -> None:
        """``path`` (a file, or a folder's contents) as the model's artifact; then the model is READY."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(model.artifact_location, tracking_uri=self.tracker.uri)
        with redacted(path) as source:
            if source.is_dir():
                repo.log_artifacts(str(source))
            else:
                repo.log_artifact(str(source))
        self.finalize(model.model_id)

    def finalize(self, model_id: str) -> None:
        """Mark the model READY (it holds what it will hold)."""
        with self.tracker.lock:
            self.tracker.client.finalize_logged_model(model_id, READY)

    def link_run(self, run_id: str, model: ModelRef) -> None:
        """The run's page lists the model: as its output where the run created it, else as its input."""
        from mlflow.entities import LoggedModelInput, LoggedModelOutput

        with self.tracker.lock:
            if model.created:
                self.tracker.client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
            else:
                self.tracker.client.log_inputs(run_id, models=[LoggedModelInput(model.model_id)])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], model_id: str | None) -> None:
        """Metrics of ``run_id``, each linked to ``model_id`` too (the model's measurements), in batches."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in metrics.items()]
        with self.tracker.lock:
            for i in range(0, len(items), 1000):
                self.tracker.client.log_batch(run_id, metrics=items[i : i + 1000])
