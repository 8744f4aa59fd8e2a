"""Where the project's code and results live: the checkout, the config groups, the default store (a leaf)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """Where results go (store, caches, outputs, reports): ``BLOCKBENCH_ROOT`` if set, else the directory holding
    ``main.py`` and ``conf/`` (source checkout), else the working directory. Config groups: :func:`conf_dir`."""
    env = os.environ.get("BLOCKBENCH_ROOT")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "conf").is_dir() and (checkout / "main.py").is_file():
        return checkout
    return Path.cwd().resolve()


def source_root() -> Path:
    """The project's code: the checkout holding ``main.py`` and ``conf/``, else the working directory. Never
    ``BLOCKBENCH_ROOT``, which says where results go (a cluster's shared results folder need hold no code)."""
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "conf").is_dir() else Path.cwd().resolve()


def conf_dir() -> Path:
    """The config groups Hydra composes (``main.py`` reads the ``conf/`` beside it)."""
    return source_root() / "conf"


def default_tracking_uri() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"
