"""Content-addressed on-disk cache for build products (ONNX exports, engines, timing caches).

Why: a sweep re-run (or a resumed sweep) should not pay for an export or an engine build it already did, and a
cache shared by concurrent processes or interrupted by ``kill -9`` must never hand out a truncated or foreign file.

* **Key** — the SHA-256 of the canonical JSON of everything the product depends on (:meth:`ContentCache.key_for`).
  An entry is the folder ``<root>/<namespace>/<key>/`` with the files plus ``manifest.json`` (the key, the key
  material and each file's SHA-256).
* **Atomic writes** — an entry is built in a temporary sibling folder and renamed into place only once complete,
  so readers see a whole entry or none; leftovers of a killed builder are removed by the next builder.
* **Verified reads** — every file is hashed against the manifest, and the manifest's key must be the hash of its
  own material and the folder's name; a mismatch makes the entry *bad*: it is discarded and rebuilt.
* **One builder per entry** — building holds a file lock ``<key>.lock``; a second process asking for the same
  entry waits, then finds it built (it does not build it again, and never sees a half-written one).
* **Unusable entries** — an entry that verifies but that its consumer cannot use (an engine the runtime refuses
  after a driver update) is removed with :meth:`ContentCache.discard`, and the next build replaces it.

Engines and other files that get *deserialized* must come through :meth:`CacheEntry.read_bytes` (the bytes
returned are the bytes hashed) or :meth:`CacheEntry.materialize` (the copies made are the copies hashed), so a
file swapped after the check is never loaded. The hashes protect against corruption, truncation and stray files;
they are not a signature against someone who can write to the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from blockbench.errors import BlockbenchError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
PRODUCER = "blockbench"
_CHUNK = 1 << 20
_TMP_MARK = ".tmp-"
_TRASH_MARK = ".trash-"
LOCK_TIMEOUT_S = 3600.0


class CacheError(BlockbenchError):
    """A cache entry failed its hash check at the moment it was read, or the cache cannot be used."""

    stage = "cache"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(material: Mapping[str, Any]) -> bytes:
    return json.dumps(material, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest(material: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``material`` (sorted keys, no spaces): the one content hash every cache key
    and config hash uses."""
    return hashlib.sha256(_canonical(material)).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Readers (and a kill mid-write) see the old file or the new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(lock_path: Path, what: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the inter-process file lock ``lock_path``; every cache file shared by concurrent jobs is written under
    one. A holder stuck for over ``timeout_s`` (a hung build) is a :class:`CacheError` naming ``what`` and the lock
    file, not a silent hang."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout as exc:
        raise CacheError(f"{what} has been locked by another process for over {timeout_s:.0f} s ({lock_path})") from exc
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class CacheEntry:
    """A verified entry: its folder, the files its manifest lists (name -> SHA-256) and whether it was a hit."""

    key: str
    path: Path
    files: Mapping[str, str]
    hit: bool

    def _source(self, name: str) -> Path:
        if name not in self.files:
            raise CacheError(f"cache entry {self.key[:12]} has no file {name!r}; it has {sorted(self.files)}")
        return self.path / name

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes, hashed after reading: what the caller deserializes is exactly what was verified."""
        data = self._source(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.files[name]:
            raise CacheError(f"cache entry {self.key[:12]}: {name} changed after it was verified; not loading it")
        return data

    def materialize(self, dest: Path) -> dict[str, Path]:
        """Copy every file into ``dest`` (same relative names), hashing the copied bytes; name -> copy."""
        copies: dict[str, Path] = {}
        for name, expected in self.files.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with self._source(name).open("rb") as src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected:
                target.unlink(missing_ok=True)
                raise CacheError(f"cache entry {self.key[:12]}: {name} changed after it was verified; not using it")
            copies[name] = target
        return copies


class ContentCache:
    """One namespace (``onnx``, ``tensorrt``, ...) of the project cache under ``root``."""

    def __init__(self, root: Path, namespace: str, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        if not namespace.isidentifier():
            raise ValueError(f"cache namespace must be a plain name, got {namespace!r}")
        self.dir = Path(root) / namespace
        self.lock_timeout_s = lock_timeout_s

    @staticmethod
    def key_for(material: Mapping[str, Any]) -> str:
        """SHA-256 of the canonical JSON of ``material`` (:func:`digest`)."""
        return digest(material)

    def lookup(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``, or None when it is missing or bad (a bad entry is logged, not used)."""
        return self._lookup(key, warn=True)

    def _lookup(self, key: str, warn: bool) -> CacheEntry | None:
        """:meth:`lookup`; ``warn`` False where a bad entry was already reported (a second look under the lock)."""
        entry_dir = self.dir / key
        if not (entry_dir / MANIFEST).is_file():
            return None
        problem = self._problem(key, entry_dir)
        if problem:
            if warn:
                log.warning("cache: entry %s in %s is bad (%s); it will be rebuilt", key[:12], self.dir, problem)
            return None
        files = json.loads((entry_dir / MANIFEST).read_text())["files"]
        return CacheEntry(key=key, path=entry_dir, files=files, hit=True)

    def get_or_build(self, material: Mapping[str, Any], build: Callable[[Path], None]) -> CacheEntry:
        """The entry for ``material``; on a miss (or a bad entry) ``build(folder)`` writes the files, once.

        ``build`` gets an empty temporary folder and writes the product's files into it; an exception leaves
        no entry behind.
        """
        key = self.key_for(material)
        entry = self.lookup(key)
        if entry is not None:
            return entry
        with self._locked(key):
            entry = self._lookup(key, warn=False)  # another process may have built it while we waited
            if entry is not None:
                return entry
            return self._build(key, material, build)

    def discard(self, entry: CacheEntry) -> None:
        """Remove ``entry``, which verified but which its consumer cannot use (e.g. an engine the runtime refuses
        after a driver update), so the next :meth:`get_or_build` rebuilds it; the caller logs why.

        Only that very entry goes: if another process has already replaced it (other file hashes), the
        replacement stays.
        """
        with self._locked(entry.key):
            current = self._lookup(entry.key, warn=False)  # a bad one is reported when it is rebuilt
            if current is not None and current.files == entry.files:
                self._remove(entry.path)

    def _locked(self, key: str) -> AbstractContextManager[None]:
        """The lock that one entry's builder (and discarder) holds."""
        return locked(self.dir / f"{key}.lock", f"cache entry {key[:12]} in {self.dir}", self.lock_timeout_s)

    def _remove(self, entry_dir: Path) -> None:
        """Move the folder aside first (one rename: readers see the entry or nothing), then delete it."""
        trash = self.dir / f"{entry_dir.name}{_TRASH_MARK}{os.getpid()}-{time.monotonic_ns()}"
        entry_dir.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _build(self, key: str, material: Mapping[str, Any], build: Callable[[Path], None]) -> CacheEntry:
        for leftover in self.dir.glob(f"{key}{_TMP_MARK}*"):  # a builder killed mid-way (we hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}{_TMP_MARK}", dir=self.dir))
        try:
            start = time.perf_counter()
            build(tmp)
            files = {
                str(p.relative_to(tmp)): sha256_file(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file() and not p.is_symlink()
            }
            if not files:
                raise CacheError(f"building cache entry {key[:12]} produced no files")
            manifest = {
                "format": FORMAT,
                "producer": PRODUCER,
                "key": key,
                "material": json.loads(_canonical(material)),
                "files": files,
                "build_s": round(time.perf_counter() - start, 3),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            final = self.dir / key
            if final.exists():  # a bad entry: rename cannot replace a folder
                self._remove(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("cache: built %s/%s (%d files)", self.dir.name, key[:12], len(files))
        return CacheEntry(key=key, path=final, files=files, hit=False)

    def _problem(self, key: str, entry_dir: Path) -> str | None:
        """Why the entry cannot be trusted, or None when every check passes."""
        try:
            manifest = json.loads((entry_dir / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable manifest: {exc}"
        if not isinstance(manifest, dict) or manifest.get("producer") != PRODUCER or manifest.get("format") != FORMAT:
            return "manifest was not written by this version of blockbench"
        if manifest.get("key") != key or self.key_for(manifest.get("material") or {}) != key:
            return "manifest key does not match the entry's name and material"
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            return "manifest lists no files"
        root = entry_dir.resolve()
        for name, expected in files.items():
            path = entry_dir / name
            if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
                return f"{name} is missing or not a regular file inside the entry"
            if sha256_file(path) != expected:
                return f"{name} does not match its SHA-256"
        return None
