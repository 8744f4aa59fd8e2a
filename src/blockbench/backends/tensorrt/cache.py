"""Persistent caches shared across runs: content-addressed engines and one timing cache per TensorRT + GPU.

Both live under ``<cache_dir>/tensorrt/``. Files are written atomically (temporary file in the same folder, then
``os.replace``) and under a per-file lock, so concurrent jobs never read half a file nor build the same engine twice.
A cached engine is trusted only if its metadata names the same key and the plan's SHA-256 matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from blockbench.backends.tensorrt.settings import BUILD_FIELDS, TensorRTSettings
from blockbench.cache import atomic_write, digest

log = logging.getLogger(__name__)

# Bump when what a key covers, or the entry layout, changes: old entries then simply stop matching.
CACHE_FORMAT = "blockbench-tensorrt-engine/2"
_CHUNK = 1 << 24


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


def _sha256_file(path: Path, digest: Any) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def onnx_digest(onnx_path: Path) -> str:
    """SHA-256 over the ONNX file and its external-data side files (``model.onnx.data``: names it prefixes)."""
    digest = hashlib.sha256()
    files = [onnx_path, *sorted(p for p in onnx_path.parent.glob(f"{onnx_path.name}?*") if p.is_file())]
    for path in files:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        _sha256_file(path, digest)
    return digest.hexdigest()


def engine_key(
    onnx_sha256: str, settings: TensorRTSettings, precision: str, trt_version: str, target: BuildTarget
) -> str:
    """Content address of an engine: everything that changes what TensorRT builds, and nothing else."""
    payload = {
        "format": CACHE_FORMAT,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "settings": {name: getattr(settings, name) for name in BUILD_FIELDS},
        "tensorrt": trt_version,
        "target": asdict(target),
    }
    return digest(payload)


class EngineCache:
    """Serialized engines by key: ``<key>.engine`` plus ``<key>.json`` (written last, so it marks a whole entry)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def plan_path(self, key: str) -> Path:
        return self.root / f"{key}.engine"

    def meta_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        """Held from lookup to store, so a second job wanting the same engine waits and then hits."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{key}.lock"))

    def load(self, key: str) -> bytes | None:
        """The verified plan, or None; an entry that fails verification is removed (it will be rebuilt)."""
        meta_path, plan_path = self.meta_path(key), self.plan_path(key)
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            plan = plan_path.read_bytes()
        except (OSError, ValueError) as exc:
            return self._reject(key, f"unreadable ({exc})")
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("format") != CACHE_FORMAT:
            return self._reject(key, "metadata names another key or format")
        if meta.get("bytes") != len(plan) or meta.get("sha256") != hashlib.sha256(plan).hexdigest():
            return self._reject(key, "plan does not match its recorded SHA-256")
        return plan

    def store(self, key: str, plan: bytes, info: dict[str, Any]) -> Path:
        meta = {
            **info,
            "format": CACHE_FORMAT,
            "key": key,
            "bytes": len(plan),
            "sha256": hashlib.sha256(plan).hexdigest(),
        }
        atomic_write(self.plan_path(key), plan)
        atomic_write(self.meta_path(key), json.dumps(meta, indent=2, sort_keys=True).encode())
        return self.plan_path(key)

    def metadata(self, key: str) -> dict[str, Any]:
        """The entry's metadata (read after :meth:`load` verified the entry)."""
        meta: dict[str, Any] = json.loads(self.meta_path(key).read_text())
        return meta

    def discard(self, key: str) -> None:
        self.meta_path(key).unlink(missing_ok=True)
        self.plan_path(key).unlink(missing_ok=True)

    def _reject(self, key: str, why: str) -> None:
        log.warning("engine cache: entry %s… is corrupt or mismatched (%s); rebuilding", key[:12], why)
        self.discard(key)


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path.with_name(self.path.name + ".lock"))):
            current = self.load()
            data = ours if current is None or current == loaded else merge(ours, current)
            atomic_write(self.path, data)
