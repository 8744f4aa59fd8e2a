"""ONNX Runtime's two builds share one package folder, so no install this project documents may bring both."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_onnxruntime_comes_from_exactly_one_extra_never_from_the_base_install() -> None:
    extras = PROJECT["optional-dependencies"]
    assert not _names(PROJECT["dependencies"]) & {"onnxruntime", "onnxruntime-gpu"}
    assert _names(extras["cpu"]) == {"onnxruntime"} and _names(extras["gpu"]) == {"onnxruntime-gpu"}
    for name, requirements in extras.items():
        if name not in ("cpu", "gpu"):
            assert not _names(requirements) & {"onnxruntime", "onnxruntime-gpu"}, name


def test_every_documented_install_takes_one_onnxruntime_build() -> None:
    commands = re.findall(r"pip install [^\n`]*-e \"\.\[([^\]]*)\]\"", (ROOT / "README.md").read_text())
    commands += re.findall(r"-e \"\.\[([^\]]*)\]\"", (ROOT / ".ci" / "run").read_text())
    assert len(commands) >= 3, commands
    for extras in commands:
        chosen = {"cpu", "gpu"} & set(extras.split(","))
        assert len(chosen) <= 1, extras
    assert all("cpu" in extras.split(",") or "gpu" in extras.split(",") for extras in commands[:2]), commands
