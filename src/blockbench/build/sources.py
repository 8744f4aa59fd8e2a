"""Hashes of the source code itself: what makes "the same code" checkable without trusting a commit name.

One hashing rule for every use: the content caches and the resume fingerprint key on the sources a product or a
measurement depends on (:func:`sources_sha256`), and the environment record names the whole code that ran
(:func:`tree_sha256` over :func:`checkout_files`), computed the same way for a git commit's tree by the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from blockbench.config.paths import conf_dir

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the sources that run: this installed or checked-out package
PACKAGE_PREFIX = "src/blockbench"  # where the package lives in the project's tree
CONF_PREFIX = "conf"


def tree_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over ``(name, content)`` pairs in name order: each name and its length-prefixed bytes, so moving
    code from one file to another, or renaming a file, changes the hash too."""
    digest = hashlib.sha256()
    for name, content in sorted(files):
        digest.update(name.encode() + b"\0" + str(len(content)).encode() + b"\0")
        digest.update(content)
    return digest.hexdigest()


def sources_sha256(patterns: Iterable[str], root: Path | None = None) -> str:
    """SHA-256 of the files under ``root`` (this package by default) matching any of the glob ``patterns``
    (``models/*.py``, ``backends/torch/**/*.py``), each file once, named by its path relative to ``root``."""
    base = PACKAGE_DIR if root is None else root
    paths = {path for pattern in patterns for path in base.glob(pattern) if path.is_file()}
    return tree_sha256((path.relative_to(base).as_posix(), path.read_bytes()) for path in paths)


def checkout_files(package: Path | None = None, conf: Path | None = None) -> Iterator[tuple[str, bytes]]:
    """The code that runs, named as in the project's tree: every ``src/blockbench/**/*.py`` and every file of
    ``conf/`` (``package`` and ``conf`` default to this package and its config groups)."""
    package = PACKAGE_DIR if package is None else package
    conf = conf_dir() if conf is None else conf
    for path in sorted(package.rglob("*.py")):
        yield f"{PACKAGE_PREFIX}/{path.relative_to(package).as_posix()}", path.read_bytes()
    for path in sorted(p for p in conf.rglob("*") if p.is_file()):
        yield f"{CONF_PREFIX}/{path.relative_to(conf).as_posix()}", path.read_bytes()


def is_checkout_file(name: str) -> bool:
    """Whether a path of the project's tree belongs to :func:`checkout_files`."""
    return (name.startswith(f"{PACKAGE_PREFIX}/") and name.endswith(".py")) or name.startswith(f"{CONF_PREFIX}/")


def commit_sha256(commit: str, repo: Path | None = None) -> str | None:
    """:func:`tree_sha256` of a git commit's :func:`checkout_files` (read with ``git ls-tree`` / ``git cat-file``),
    to compare with a run's recorded source hash; None when ``repo`` (this package's checkout by default) has no
    such commit or git is unavailable."""
    import subprocess

    where = str(PACKAGE_DIR if repo is None else repo)

    def git(*args: str, stdin: bytes | None = None) -> bytes | None:
        try:
            done = subprocess.run(["git", "-C", where, *args], input=stdin, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    listing = git("ls-tree", "-r", "-z", "--full-tree", f"{commit}^{{commit}}")
    if listing is None:
        return None
    entries = []  # (name, blob id) of the files checkout_files would read
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, name = record.decode().split("\t", 1)
        mode, kind, blob = meta.split()
        if kind == "blob" and mode != "120000" and is_checkout_file(name):
            entries.append((name, blob))
    batch = git("cat-file", "--batch", stdin="".join(f"{blob}\n" for _, blob in entries).encode())
    if batch is None:
        return None
    files, offset = [], 0
    for name, _ in entries:  # each: "<id> blob <size>\n<content>\n"
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        files.append((name, batch[header_end + 1 : header_end + 1 + size]))
        offset = header_end + 1 + size + 1
    return tree_sha256(files)
