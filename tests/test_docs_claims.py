"""What the docs say about TensorRT is what the code and the tests do."""

from __future__ import annotations

import ast
import re

import pytest

from tests.helpers import ROOT


def _prose(path: str) -> str:
    return " ".join((ROOT / path).read_text().split())


def test_the_tensorrt_rtx_targets_in_the_docs_are_the_librarys() -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras: pip install -e .[test]")
    from blockbench.backends.tensorrt.library import load_bindings

    targets = list(load_bindings("tensorrt_rtx").compute_capabilities())
    assert targets  # e.g. 7.5 (Turing) to 12.1
    assert f"compute capability {', '.join(targets[:-1])} and {targets[-1]}" in _prose("docs/results.md")
    assert f"GPUs of compute capability {', '.join(targets)} " in _prose("docs/tensorrt.md")


def test_the_double_names_the_tests_that_use_the_real_library_and_those_that_use_it() -> None:
    doc = ast.get_docstring(ast.parse((ROOT / "tests" / "tensorrt_gpu_double.py").read_text())) or ""
    real = re.search(r"tested against the real\s+library \(([^)]*)\)", doc)
    assert real is not None
    for name in re.findall(r"tests/((?:\w+/)*test_\w+\.py)", real.group(1)):
        assert "tests.tensorrt_gpu_double" not in (ROOT / "tests" / name).read_text(), name
    assert (
        "from tests.tensorrt_gpu_double import"
        in (ROOT / "tests" / "backends" / "tensorrt" / "test_tensorrt_builder.py").read_text()
    )
    assert "on this double (``tests/backends/tensorrt/test_tensorrt_builder.py``)" in " ".join(doc.split())


def test_the_readme_says_up_front_that_no_tensorrt_engine_was_timed_here() -> None:
    top = " ".join((ROOT / "README.md").read_text().split("## ")[0].split())
    assert "No TensorRT or TensorRT-RTX engine has been timed on this project's hardware" in top
    assert "the paper's TensorRT 8.5 latencies (RTX 3090 Ti) appear only as the paper's" in top
