"""Load an engine from the cache or build it: verify before trusting, rebuild what fails, save what was learnt."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blockbench.backends.tensorrt.cache import (
    EngineCache,
    GpuIdentity,
    TimingCacheFile,
    atomic_write,
    engine_key,
    onnx_digest,
)
from blockbench.backends.tensorrt.diagnostics import EngineBuildError
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.settings import BUILD_FIELDS, TensorRTSettings

log = logging.getLogger(__name__)

UNCACHED_PLAN_NAME = "model.engine"


@dataclass
class PreparedEngine:
    """A ready engine (``bindings.Engine``), where its plan lies, and how it was obtained."""

    engine: Any
    plan_path: Path
    cache: str  # "hit" | "miss" | "off"
    plan_bytes: int
    builder_s: float | None  # None when nothing was built (cache hit)


def prepare_engine(
    onnx_path: Path,
    settings: TensorRTSettings,
    precision: str,
    gpu: GpuIdentity,
    cache_dir: Path,
    work_dir: Path,
) -> PreparedEngine:
    """The job's engine: a verified cache hit, else a fresh build (stored in the cache when enabled)."""
    from blockbench.backends.tensorrt import bindings

    logger = bindings.Logger(settings.log_level)
    options = BuildOptions.resolve(settings, precision)
    timing = (
        TimingCacheFile(cache_dir / "tensorrt" / "timing", str(bindings.VERSION), gpu) if options.timing_cache else None
    )

    def build() -> tuple[bytes, float]:
        saved = timing.load() if timing else None
        start = time.perf_counter()
        plan, learnt = bindings.build_plan(onnx_path, options, saved, logger)
        seconds = time.perf_counter() - start
        log.info("build: TensorRT %s engine in %.1f s (%.1f MB)", bindings.VERSION, seconds, len(plan) / 1e6)
        if timing is not None and learnt is not None:
            timing.save(learnt, saved, lambda ours, theirs: bindings.combine_timing_caches(ours, theirs, logger))
        return plan, seconds

    def load(plan: bytes) -> Any:
        engine = bindings.deserialize(plan, logger)
        if engine is None:
            raise EngineBuildError(f"TensorRT {bindings.VERSION} cannot deserialize the engine it just built")
        return engine

    if not settings.engine_cache:
        plan, seconds = build()
        path = work_dir / UNCACHED_PLAN_NAME
        atomic_write(path, plan)
        return PreparedEngine(load(plan), path, "off", len(plan), seconds)

    key = engine_key(onnx_digest(onnx_path), settings, precision, str(bindings.VERSION), gpu)
    store = EngineCache(cache_dir / "tensorrt" / "engines")
    with store.lock(key):
        cached = store.load(key)
        if cached is not None:
            engine = bindings.deserialize(cached, logger)
            if engine is not None:
                log.info("build: engine cache hit %s… (%.1f MB)", key[:12], len(cached) / 1e6)
                return PreparedEngine(engine, store.plan_path(key), "hit", len(cached), None)
            log.warning("engine cache: TensorRT %s rejects entry %s…; rebuilding", bindings.VERSION, key[:12])
            store.discard(key)
        plan, seconds = build()
        info = {
            "tensorrt": str(bindings.VERSION),
            "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
            "precision": precision,
            "settings": {name: getattr(settings, name) for name in BUILD_FIELDS},
            "onnx": onnx_path.name,
        }
        path = store.store(key, plan, info)
    return PreparedEngine(load(plan), path, "miss", len(plan), seconds)
