"""Checks that run with the config checks, before any work or MLflow run: things the schema cannot see.

Why here and not later: a job refused at plan time leaves nothing half-written (no run, no export, no engine),
and gives one message naming the key, instead of a traceback from deep inside a stage.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench.config.schema import RunConfig
from blockbench.errors import ConfigError


def check_writable(key: str, path: str | Path) -> None:
    """``path`` exists as a writable folder or can be created as one; nothing is left behind.

    Proven by writing a probe file into the nearest existing folder: permission bits lie to root and about
    read-only or virtual file systems (``/proc``), where ``os.access`` says yes and the first real write fails.
    """
    target = Path(path).absolute()
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{key}={str(target)!r} cannot be created: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".blockbench-write-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(
            f"{key}={str(target)!r} is not writable: writing into {probe} failed ({exc.strerror or exc})"
        ) from exc


def check_finite(node: Mapping[str, Any], prefix: str = "") -> None:
    """Every float in the config is finite: NaN passes every ``<`` check, and an infinite duration never ends."""
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            check_finite(value, f"{name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} is not allowed; it must be a finite number")


def check_complete(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data; a missing value (``???``, ``~key``) or a broken interpolation is refused."""
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        resolved = None if missing else OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:  # the message ends with the offending full_key
        raise ConfigError(f"config does not resolve: {exc}") from exc
    if missing:
        raise ConfigError(f"{missing[0]} has no value; set it on the command line, e.g. {missing[0]}=...")
    return resolved  # type: ignore[return-value]


def unknown_keys(node: Any, schema: Any, prefix: str = "") -> list[str]:
    """Keys of ``node`` that the dataclass ``schema`` lacks, recursively.

    Hydra lets ``++key=value`` add a key to a structured config, and converting the config to objects drops it
    without a word; a key no code reads would be logged as a parameter and silently do nothing, so it is refused.
    A section is checked against its own class (``backend`` against the chosen backend's settings class).
    """
    if not isinstance(node, DictConfig) or not dataclasses.is_dataclass(schema):
        return []
    names = {f.name for f in dataclasses.fields(schema)}
    unknown = [f"{prefix}{key}" for key in node if key not in names]
    for key in sorted(names):
        # select, not get: a leaf's broken interpolation is check_complete's to report, naming its key
        child = OmegaConf.select(node, key, throw_on_resolution_failure=False) if key in node else None
        if isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            unknown += unknown_keys(child, OmegaConf.get_type(child), f"{prefix}{key}.")
    return unknown


def check_known_keys(cfg: DictConfig) -> None:
    unknown = unknown_keys(cfg, RunConfig)
    if unknown:
        section = unknown[0].rpartition(".")[0]
        known = cfg.get(section) if section else cfg
        extra = {key.rpartition(".")[2] for key in unknown if key.rpartition(".")[0] == section}
        allowed = ", ".join(str(k) for k in known if k not in extra) if isinstance(known, DictConfig) else ""
        if section == "backend":
            raise ConfigError(
                f"{', '.join(unknown)}: no such setting of backend={cfg.backend.name}; its settings: {allowed}"
            )
        raise ConfigError(
            f"{', '.join(unknown)}: no such setting (added with '+'?); nothing reads it. "
            f"{'Settings of ' + section + ': ' if section else 'Top-level keys: '}{allowed}"
        )


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (Slurm and taskset narrow it), else
    every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# Thread counts a job hands to libraries, which create that many threads at once: far beyond the CPUs, torch's
# first parallel kernel fails and ONNX Runtime's session creation stalls, after the run exists.
THREAD_KEYS = ("hardware.cpu_threads", "backend.intra_op_threads", "backend.inter_op_threads")


def check_thread_counts(resolved: Mapping[str, Any]) -> None:
    """Every thread count is at most the CPUs this process may use (0: the library's default)."""
    limit = usable_cpus()
    for key in THREAD_KEYS:
        section, _, leaf = key.partition(".")
        value = resolved.get(section, {}).get(leaf)
        if isinstance(value, int) and value > limit:
            raise ConfigError(
                f"{key}={value} is not allowed; this machine lets the process run on {limit} CPU(s): choose 0 "
                f"(the library's default) or 1..{limit}"
            )


def check_job(cfg: DictConfig) -> None:
    """The checks above for a composed job config (run before the value rules, which assume completeness)."""
    check_known_keys(cfg)
    resolved = check_complete(cfg)
    check_finite(resolved)
    check_thread_counts(resolved)
    check_writable("work_dir", cfg.work_dir)
    check_writable("cache_dir", cfg.cache_dir)
