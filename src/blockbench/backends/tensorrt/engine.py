"""Load an engine from the cache or build it: verify before trusting, rebuild what fails, save what was learnt."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from blockbench.backends.tensorrt.cache import (
    INFO_FILE,
    PLAN_FILE,
    BuildTarget,
    SharedCacheFile,
    engine_cache,
    engine_material,
    onnx_digest,
)
from blockbench.backends.tensorrt.diagnostics import EngineBuildError
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.build.cache import atomic_write

log = logging.getLogger(__name__)

# Rounds of the cache: a second only when the runtime refused a cached engine and another job's entry replaced
# it before ours could be rebuilt.
_CACHE_ROUNDS = 2


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

    def build() -> tuple[Any, float]:
        saved = timing.load() if timing else None
        start = time.perf_counter()
        result = bindings.build_plan(onnx_path, options, saved, logger)
        seconds = time.perf_counter() - start
        log.info("build: %s engine in %.1f s (%.1f MiB)", bindings.VERSION.label, seconds, len(result.plan) / 2**20)
        if timing is not None and result.timing_cache is not None:
            timing.save(
                result.timing_cache, saved, lambda ours, theirs: bindings.combine_timing_caches(ours, theirs, logger)
            )
        return result, seconds

    def load(plan: bytes) -> Any:
        if runtime is None:
            return None
        engine = bindings.deserialize(plan, logger, runtime)
        if engine is None:
            raise EngineBuildError(f"{bindings.VERSION.label} cannot deserialize the engine it just built")
        return engine

    def from_build(result: Any, seconds: float, path: Path, cache: str) -> PreparedEngine:
        plan = result.plan
        return PreparedEngine(load(plan), path, cache, len(plan), seconds, result.network_layers, result.warnings)

    if not settings.engine_cache:
        result, seconds = build()
        path = work_dir / PLAN_FILE
        atomic_write(path, result.plan)
        return from_build(result, seconds, path, "off")

    builds: list[tuple[Any, float]] = []  # what build_entry made, when it ran

    def build_entry(folder: Path) -> None:
        result, seconds = build()
        (folder / PLAN_FILE).write_bytes(result.plan)
        info = {"onnx": onnx_path.name, "network_layers": result.network_layers}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        builds.append((result, seconds))

    cache = engine_cache(cache_dir)
    material = engine_material(onnx_digest(onnx_path), settings, precision, str(bindings.VERSION), target)
    for _ in range(_CACHE_ROUNDS):
        entry = cache.get_or_build(material, build_entry)
        if not entry.hit:
            return from_build(*builds[-1], entry.path / PLAN_FILE, "miss")
        plan = entry.read_bytes(PLAN_FILE)
        engine = None if runtime is None else bindings.deserialize(plan, logger, runtime)
        if runtime is None or engine is not None:
            log.info("build: engine cache hit %s… (%.1f MiB)", entry.key[:12], len(plan) / 2**20)
            layers = json.loads(entry.read_bytes(INFO_FILE)).get("network_layers")
            return PreparedEngine(engine, entry.path / PLAN_FILE, "hit", len(plan), None, layers)
        log.warning("engine cache: %s rejects entry %s…; rebuilding", bindings.VERSION.label, entry.key[:12])
        cache.discard(entry)
    raise EngineBuildError(
        f"{bindings.VERSION.label} rejects the cached engine {entry.key[:12]}… that another job rebuilt; "
        f"delete {entry.path} and run again"
    )
