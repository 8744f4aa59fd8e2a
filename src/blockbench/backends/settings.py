"""The base of every backend's typed settings (a leaf: the config schema and each backend's settings build on it)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class BackendSettings:
    """Base schema of ``conf/backend/<name>.yaml``; subclasses add their own keys."""

    name: str = MISSING
