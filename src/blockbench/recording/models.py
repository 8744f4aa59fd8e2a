"""Every built engine as an MLflow LoggedModel of the run that built it, with the runs' measurements linked to it.

The engine is the build's engine file: ONNX Runtime's optimized graph, a TensorRT / TensorRT-RTX plan, an
AOTInductor package (a module torch compiles in memory has no file, and no model). One model per content: it is
found by the SHA-256 of that file's content (:data:`ENGINE_TAG`, :func:`content_sha256`), so a re-measure, a
trial or a comparison that runs the same engine links its metrics to the model the first run created, and the
file is stored once, as the model's artifact. The model has

* name: the run's name; ``model_type``: the engine kind (:func:`engine_kind`);
* params: the experiment's axes and the engine's settings (:data:`MODEL_PARAM_PREFIXES`);
* tags: library and version, build target, content hash, file name and size, the device and commit it was
  built on;
* metrics: each measuring run's latency, throughput, parity, agreement and energy (:data:`LINKED_PREFIXES`),
  logged with ``model_id`` (the run keeps them too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import onnx

from blockbench.build.cache import sha256_file
from blockbench.config.schema import TrackingConfig
from blockbench.measure.metric_names import LATENCY_MEDIAN
from blockbench.recording.layout import ENVIRONMENT_FILE
from blockbench.tracking import Tracker
from blockbench.tracking.logged_models import LoggedModels, ModelRef
from blockbench.tracking.redaction import redact

log = logging.getLogger(__name__)

ENGINE_TAG = "blockbench.engine_sha256"  # on a LoggedModel: the content hash of its engine file
MODEL_PARAM_PREFIXES = ("block.", "norm.", "act.", "resolution.", "precision.", "model.", "backend.", "hardware.")
LINKED_PREFIXES = (
    "latency_",
    "pipelined_",
    "throughput",
    "parity_",
    "top1_",
    "enqueue_",
    "h2d_",
    "compute_",
    "d2h_",
    "energy_",
    "peak_memory",
)
_NOT_IN_NAMES = re.compile(r"[/:.%\"']")  # characters MLflow refuses in a LoggedModel's name


def engine_file(engine_files: Sequence[Path]) -> Path | None:
    """The engine among a build's files: the first file that is not a JSON report (layer information, a layer
    profile) beside it."""
    return next((path for path in engine_files if path.is_file() and path.suffix != ".json"), None)


def content_sha256(path: Path) -> str:
    """What makes two engine files one engine: their bytes; for an ONNX graph (ONNX Runtime's optimized model)
    the graph without its node names, which ONNX Runtime draws from a process-wide counter (two builds of one
    engine differ only there)."""
    if path.suffix != ".onnx":
        return sha256_file(path)
    graph = onnx.load(str(path), load_external_data=False)
    for node in graph.graph.node:
        node.name = ""
    return hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()


def engine_kind(params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """``onnxruntime``, ``tensorrt``, ``tensorrt_rtx`` or ``torch-<mode>`` (``torch-aoti``)."""
    backend = params.get("backend.name") or tags.get("backend", "")
    if backend == "torch":
        return f"torch-{params.get('backend.mode', tags.get('torch_mode', ''))}"
    return params.get("backend.library") or tags.get("tensorrt_library") or backend


def is_linked(metric: str) -> bool:
    """Whether a run's metric is a measurement of its engine (linked to the engine's model)."""
    return metric.startswith(LINKED_PREFIXES)


def model_tags(kind: str, tags: Mapping[str, str], packages: Mapping[str, str], path: Path) -> dict[str, str]:
    """The engine's library and version, what it was built for, and where."""
    if kind.startswith("torch"):
        library, version, target = "torch", packages.get("torch", ""), tags.get("device_name", "")
    elif "tensorrt_version" in tags:
        library, version = tags.get("tensorrt_library", kind), tags["tensorrt_version"]
        target = f"sm_{tags.get('engine_target', '')}".replace(".", "")
    else:
        library, version = kind, tags.get("ort_version") or packages.get(kind, "")
        target = tags.get("ort_providers", "")
    found = {
        "engine.library": library,
        "engine.library_version": version,
        "engine.build_target": target,
        "engine.file": path.name,
        "engine.bytes": str(path.stat().st_size),
        "device_name": tags.get("device_name", ""),
        "git_commit": tags.get("git_commit", ""),
    }
    return {key: value for key, value in found.items() if value}


def record_engine(
    tracker: Tracker,
    run_id: str,
    run_name: str,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    engine_files: Sequence[Path],
    tracking: TrackingConfig,
    work: Path,
) -> ModelRef | None:
    """The engine's LoggedModel (created with its file, or the one already holding these bytes), linked to the
    run; None where the build left no engine file."""
    path = engine_file(engine_files)
    if path is None:
        return None
    kind = engine_kind(params, tags)
    digest = content_sha256(path)
    models = LoggedModels(tracker)
    model = models.find_or_create(
        ENGINE_TAG,
        digest,
        name=_NOT_IN_NAMES.sub("_", redact(run_name)) or kind,  # redacted before a secret is cut apart
        model_type=kind,
        source_run_id=run_id,
        params={k: v for k, v in params.items() if k.startswith(MODEL_PARAM_PREFIXES)},
        tags=model_tags(kind, tags, _packages(work), path),
    )
    if not model.ready:  # new, or its first uploader died before it was READY
        large = path.stat().st_size >= tracking.large_file_mb * 2**20
        if tracking.log_engine and not (large and tracking.keep_model_files == "none"):
            models.upload(model, path)
            model = replace(model, ready=True)
        else:  # READY without its file: only its hash is kept
            models.finalize(model.model_id)
    models.link_run(run_id, model)
    log.info("tracking: engine %s %s model %s (%s)", path.name, "as" if model.created else "is", model.model_id, kind)
    return model


def log_measurement(tracker: Tracker, run_id: str, metrics: Mapping[str, float], model: ModelRef | None) -> None:
    """The run's metrics; its engine's measurements linked to the engine's model as well."""
    # the latency first: the Models tab shows metric columns in the order they were first logged
    keys = sorted(
        (k for k in metrics if model is not None and is_linked(k)),
        key=lambda k: (k != LATENCY_MEDIAN, not k.startswith("latency")),
    )
    linked = {k: metrics[k] for k in keys}
    tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if k not in linked})
    if linked and model is not None:
        LoggedModels(tracker).log_metrics(run_id, linked, model.model_id)


def _packages(work: Path) -> dict[str, str]:
    try:
        return dict(json.loads((work / ENVIRONMENT_FILE).read_text()).get("packages", {}))
    except (OSError, ValueError):
        return {}
