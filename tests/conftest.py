"""Shared fixtures: config composition through Hydra's compose API; the session summary of engines built."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import blockbench.config.schema  # noqa: F401  (registers the config schemas that compose() resolves)
from tests.helpers import CONF, ENGINES_BUILT


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose ``conf/config.yaml`` with overrides, as Hydra would for ``main.py`` (work dirs under tmp)."""
    base = [f"work_dir={tmp_path / 'work'}", f"cache_dir={tmp_path / 'cache'}"]

    def _compose(*overrides: str) -> DictConfig:
        return compose(config_name="config", overrides=[*base, *overrides])

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield _compose


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store with its schema created (a fresh one costs each test seconds of migrations)."""
    from blockbench.tracking import Tracker

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    Tracker(f"sqlite:///{db}", "template")
    return db


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> Path:
    """``tmp_path/mlflow.db``, a copy of the migrated template (no runs), where ``run_main`` points ``tracking.uri``.

    For tests that are not about creating a store: the first run's schema migration costs seconds.
    """
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    return tmp_path / "mlflow.db"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many real engines this session built (tests/backends/tensorrt/test_tensorrt_rtx_builds.py)."""
    if ENGINES_BUILT:
        terminalreporter.write_sep("-", f"TensorRT-RTX engines built for real: {len(ENGINES_BUILT)}")
        for line in ENGINES_BUILT:
            terminalreporter.write_line(f"  {line}")
