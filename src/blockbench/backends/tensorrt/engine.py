"""Load an engine from the cache or build it: verify before trusting, rebuild what fails, save what was learnt."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from blockbench.backends.tensorrt.cache import (
    BuildTarget,
    EngineCache,
    SharedCacheFile,
    engine_key,
    onnx_digest,
)
from blockbench.backends.tensorrt.diagnostics import EngineBuildError
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.settings import BUILD_FIELDS, TensorRTSettings
from blockbench.cache import atomic_write

log = logging.getLogger(__name__)

UNCACHED_PLAN_NAME = "model.engine"


@dataclass
class PreparedEngine:
    """A ready engine (``bindings.Engine``; None for a build-only job), where its plan lies, how it was obtained."""

    engine: Any
    plan_path: Path
    cache: str  # "hit" | "miss" | "off"
    plan_bytes: int
    builder_s: float | None  # None when nothing was built (cache hit)
    network_layers: int | None = None  # known when this job built the engine
    warnings: tuple[str, ...] = field(default_factory=tuple)


def prepare_engine(
    bindings: ModuleType,
    onnx_path: Path,
    settings: TensorRTSettings,
    precision: str,
    target: BuildTarget,
    cache_dir: Path,
    work_dir: Path,
    runtime: Any = None,
    has_gpu: bool = True,
) -> PreparedEngine:
    """The job's engine: a verified cache hit, else a fresh build (stored in the cache when enabled).

    ``runtime``: the ``bindings.RuntimeOptions`` to deserialize with; None for a build-only job, whose engine is
    never deserialized (it may be built for GPUs this machine does not have). ``has_gpu`` False: no persistent
    timing cache (without a GPU nothing is timed, and a saved cache cannot even be read).
    """
    logger = bindings.Logger(settings.log_level)
    options = BuildOptions.resolve(settings, precision)
    timing = (
        SharedCacheFile(cache_dir / "tensorrt" / "timing", str(bindings.VERSION), target, settings.library)
        if options.timing_cache and has_gpu
        else None
    )
    built: dict[str, Any] = {}

    def build() -> tuple[bytes, float]:
        saved = timing.load() if timing else None
        start = time.perf_counter()
        result = bindings.build_plan(onnx_path, options, saved, logger)
        seconds = time.perf_counter() - start
        log.info("build: %s engine in %.1f s (%.1f MiB)", bindings.VERSION.label, seconds, len(result.plan) / 2**20)
        if timing is not None and result.timing_cache is not None:
            timing.save(
                result.timing_cache, saved, lambda ours, theirs: bindings.combine_timing_caches(ours, theirs, logger)
            )
        built.update(network_layers=result.network_layers, warnings=result.warnings)
        return result.plan, seconds

    def load(plan: bytes) -> Any:
        if runtime is None:
            return None
        engine = bindings.deserialize(plan, logger, runtime)
        if engine is None:
            raise EngineBuildError(f"{bindings.VERSION.label} cannot deserialize the engine it just built")
        return engine

    if not settings.engine_cache:
        plan, seconds = build()
        path = work_dir / UNCACHED_PLAN_NAME
        atomic_write(path, plan)
        return PreparedEngine(load(plan), path, "off", len(plan), seconds, **built)

    key = engine_key(onnx_digest(onnx_path), settings, precision, str(bindings.VERSION), target)
    store = EngineCache(cache_dir / "tensorrt" / "engines")
    with store.lock(key):
        cached = store.load(key)
        if cached is not None:
            engine = None if runtime is None else bindings.deserialize(cached, logger, runtime)
            if runtime is None or engine is not None:
                log.info("build: engine cache hit %s… (%.1f MiB)", key[:12], len(cached) / 2**20)
                layers = store.metadata(key).get("network_layers")
                return PreparedEngine(engine, store.plan_path(key), "hit", len(cached), None, layers)
            log.warning("engine cache: %s rejects entry %s…; rebuilding", bindings.VERSION.label, key[:12])
            store.discard(key)
        plan, seconds = build()
        info = {
            "library": settings.library,
            "tensorrt": str(bindings.VERSION),
            "target": {"name": target.name, "compute_capability": target.compute_capability},
            "precision": precision,
            "settings": {name: getattr(settings, name) for name in BUILD_FIELDS},
            "onnx": onnx_path.name,
            "network_layers": built["network_layers"],
        }
        path = store.store(key, plan, info)
    return PreparedEngine(load(plan), path, "miss", len(plan), seconds, **built)
