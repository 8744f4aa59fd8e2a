"""Persistent TensorRT caches shared across runs, under ``<cache_dir>/tensorrt/``.

* Engines are entries of the project's content-addressed cache (:class:`blockbench.build.cache.ContentCache`, namespace
  ``engines``), keyed by :func:`engine_material`: built once under a lock, renamed into place whole, every file
  hashed against the entry's manifest before it is trusted.
* Timing caches (and TensorRT-RTX runtime caches) are one mutable file per library release and target, merged
  across jobs (:class:`SharedCacheFile`): written with :func:`blockbench.build.cache.atomic_write` under
  :func:`blockbench.build.cache.locked`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blockbench.backends.tensorrt.settings import BUILD_FIELDS, TensorRTSettings
from blockbench.build.cache import ContentCache, atomic_write, digest, locked, sha256_file

# Bump when what a key covers, or the entry layout, changes: old entries then simply stop matching.
CACHE_FORMAT = "blockbench-tensorrt-engine/3"
PLAN_FILE = "model.engine"  # the serialized engine, cached or not (also its artifact name)
INFO_FILE = "engine.json"  # what the build reported that the key does not say (ONNX file name, network layers)


@dataclass(frozen=True)
class BuildTarget:
    """What an engine is specific to besides the library release.

    Standard TensorRT: the GPU model it was built on and its compute capability. TensorRT-RTX builds ahead of time
    for a list of compute capabilities, on any machine, so there the target is that list (``name`` is the library).
    """

    name: str
    compute_capability: str  # "9.0"; TensorRT-RTX: "8.6+8.9", or "default" (the library's own target list)

    @property
    def slug(self) -> str:
        model = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return f"{model}-sm{self.compute_capability.replace('.', '')}"


def onnx_digest(onnx_path: Path) -> str:
    """SHA-256 over the ONNX file and its external-data side files (``model.onnx.data``: names it prefixes)."""
    files = [onnx_path, *sorted(p for p in onnx_path.parent.glob(f"{onnx_path.name}?*") if p.is_file())]
    return digest({path.name: sha256_file(path) for path in files})


def engine_material(
    onnx_sha256: str, settings: TensorRTSettings, precision: str, trt_version: str, target: BuildTarget
) -> dict[str, Any]:
    """What an engine's cache key is the digest of: everything that changes what TensorRT builds, and nothing else."""
    return {
        "format": CACHE_FORMAT,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "settings": {name: getattr(settings, name) for name in BUILD_FIELDS},
        "tensorrt": trt_version,
        "target": asdict(target),
    }


def engine_cache(cache_dir: Path) -> ContentCache:
    """The engines, one :class:`ContentCache` entry each: :data:`PLAN_FILE` plus :data:`INFO_FILE`."""
    return ContentCache(cache_dir / "tensorrt", "engines")


class SharedCacheFile:
    """One persistent cache file per library release and target, shared by every run.

    Used for TensorRT's timing cache (``timing/``) and TensorRT-RTX's runtime cache of just-in-time compiled
    kernels (``runtime/``, one per GPU model: the library rejects a cache from another GPU or driver).
    """

    def __init__(self, root: Path, trt_version: str, target: BuildTarget, library: str = "tensorrt") -> None:
        self.path = root / f"{library}-{trt_version}-{target.slug}.cache"

    def load(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def save(self, ours: bytes, loaded: bytes | None, merge: Callable[[bytes, bytes], bytes]) -> None:
        """Write ``ours`` back; if another job saved since we loaded, merge its entries in first (under the lock)."""
        with locked(self.path.with_name(self.path.name + ".lock"), str(self.path)):
            current = self.load()
            data = ours if current is None or current == loaded else merge(ours, current)
            atomic_write(self.path, data)
