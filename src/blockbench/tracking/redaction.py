"""Redaction: what keeps secrets out of the tracking store and out of printed URIs.

Params, tags, text artifacts and printed URIs pass through :func:`redact`: credentials in URIs (``user:pass@``),
secret-looking query parameters, values of secret environment variables and AWS key ids never reach the store.
A store is often shared (a team's tracking server), so this happens on every write, not at the edges.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|connection[_-]?string",
    re.IGNORECASE,
)
_URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][a-zA-Z0-9_.-]*(?:token|password|secret|signature|sig|key|credential)[a-zA-Z0-9_.-]*=)"
    r"[^&;\s'\"]+",
    re.IGNORECASE,
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".txt", ".csv", ".log", ".md", ".cfg", ".ini", ".toml"}
_MAX_REDACTED_FILE_BYTES = 64 * 2**20
_NOT_SECRETS = {"true", "false", "none", "null", "yes", "no"}


def _environ() -> dict[str, str]:
    """A copy of ``os.environ``, retried: another thread (MLflow's telemetry) may remove a variable mid-copy."""
    for _ in range(10):
        try:
            return dict(os.environ)
        except KeyError:
            continue
    return dict(os.environ)


def _secret_env_values() -> list[str]:
    """Values of environment variables whose names say they are secrets (longest first, so overlaps redact)."""
    values = {
        value
        for name, value in _environ().items()
        if _SECRET_NAME.search(name) and len(value) >= 4 and value.lower() not in _NOT_SECRETS
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with URI credentials, secret query values, secret env values and AWS key ids replaced by ***."""
    text = _URI_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    for value in _secret_env_values():
        text = text.replace(value, REDACTED)
    return text


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """Params with secret-named keys blanked and every value passed through :func:`redact`."""
    return {key: REDACTED if _SECRET_NAME.search(key) else redact(str(value)) for key, value in params.items()}


@contextmanager
def redacted(path: Path) -> Iterator[Path]:
    """``path`` itself when nothing in it needs redaction, else a temporary redacted copy (the file is left as is)."""
    if not _needs_redaction(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="blockbench-redacted-") as tmp:
        yield _redacted_copy(path, Path(tmp))


def _is_text(path: Path) -> bool:
    return path.suffix.lower() in _TEXT_SUFFIXES and path.stat().st_size <= _MAX_REDACTED_FILE_BYTES


def _needs_redaction(path: Path) -> bool:
    if path.is_dir():
        return any(_needs_redaction(p) for p in path.rglob("*") if p.is_file())
    if not _is_text(path):
        return False
    text = path.read_text(errors="replace")
    return redact(text) != text


def _redacted_copy(path: Path, into: Path) -> Path:
    """Copy of a file or folder under ``into`` with every text file redacted (binary files copied as they are)."""
    target = into / path.name
    if path.is_dir():
        shutil.copytree(path, target, symlinks=False)
        files = [p for p in target.rglob("*") if p.is_file()]
    else:
        shutil.copyfile(path, target)
        files = [target]
    for file in files:
        if _is_text(file):
            file.write_text(redact(file.read_text(errors="replace")))
    return target
