"""The resume fingerprint follows the code that defines a measurement, and only that code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from blockbench.build import sources
from blockbench.recording import resume
from tests.helpers import TINY


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's sources that the fingerprint reads instead of the real ones (edited by the tests)."""
    tree = tmp_path / "blockbench"
    shutil.copytree(sources.PACKAGE_DIR, tree, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sources, "PACKAGE_DIR", tree)
    return tree


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


@pytest.mark.parametrize(
    ("edited", "remeasures"),
    [
        ("models/blocks.py", True),
        ("measure/harness.py", True),
        ("measure/statistics.py", True),
        ("build/export.py", True),
        ("build/quantize.py", True),
        ("backends/onnxruntime/backend.py", True),  # the chosen backend
        ("backends/torch/backend.py", False),  # another backend
        ("report/figures.py", False),
        ("report/findings.py", False),
        ("tracking/store.py", False),
        ("sweep/callback.py", False),
    ],
)
def test_an_edit_changes_the_fingerprint_only_where_it_changes_the_measurement(
    package: Path, compose_cfg: Callable[..., DictConfig], edited: str, remeasures: bool
) -> None:
    cfg = compose_cfg(*TINY, "backend=onnxruntime")
    device = torch.device("cpu")
    before = resume.config_hash(resume.fingerprint(cfg, device))
    _edit(package / edited)
    after = resume.config_hash(resume.fingerprint(cfg, device))
    assert (after != before) == remeasures


def test_docs_are_not_measurement_sources(compose_cfg: Callable[..., DictConfig]) -> None:
    """Nothing outside the package enters the fingerprint: its sources are globs under it."""
    assert all(not pattern.startswith(("..", "/")) for pattern in resume.MEASUREMENT_SOURCES)
    fp = resume.fingerprint(compose_cfg(*TINY), torch.device("cpu"))
    assert set(fp["sources_sha256"]) == {"measurement", "backend"}


def test_sources_sha256_names_each_file_so_moving_code_between_files_changes_it(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("")
    before = sources.sources_sha256(("*.py",), tmp_path)
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("x = 1\n")
    assert sources.sources_sha256(("*.py",), tmp_path) != before
    assert sources.sources_sha256(("*.py", "a.py"), tmp_path) == sources.sources_sha256(("*.py",), tmp_path)
