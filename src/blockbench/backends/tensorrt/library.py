"""The two TensorRT libraries one backend drives: standard TensorRT and TensorRT-RTX.

Both expose TensorRT's builder and runtime API (``Builder``, ``OnnxParser``, ``IBuilderConfig``, ``Runtime``,
``execute_async_v3``) under different module names and version lines. Everything that differs between them is
in this module (what to import and install, which releases are checked, where the library builds and runs) or
behind ``if supports(VERSION, "<feature>"):`` in :mod:`.bindings`; the rest of the backend is shared.

:func:`load_bindings` executes ``bindings.py`` once per library with ``trt`` bound to that library's module, so
one process can drive both (a sweep over ``backend.library=tensorrt,tensorrt_rtx``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Library:
    """One TensorRT library: its ``backend.library`` value and the facts the backend needs about it."""

    name: str  # backend.library value
    label: str  # how messages and tags name it
    module: str  # the Python module
    distributions: tuple[str, ...]  # PyPI distributions that provide the module (for "what was found")
    install: str  # the command that installs it
    oldest: tuple[int, int]  # oldest release the backend is written to
    newest_checked: tuple[int, int]  # newest release whose API surface is committed under tests/data
    builds_without_gpu: bool  # True: engines build on a machine with no GPU (ahead of time, for target GPUs)


LIBRARIES: dict[str, Library] = {
    "tensorrt": Library(
        name="tensorrt",
        label="TensorRT",
        module="tensorrt",
        distributions=(
            "tensorrt",
            "tensorrt-cu13",
            "tensorrt-cu12",
            "tensorrt-cu13-bindings",
            "tensorrt-cu12-bindings",
        ),
        install='pip install -e ".[tensorrt]" (CUDA 13 wheels; with a CUDA 12 build of torch: '
        "pip install tensorrt-cu12)",
        oldest=(10, 0),
        newest_checked=(11, 4),
        builds_without_gpu=False,
    ),
    "tensorrt_rtx": Library(
        name="tensorrt_rtx",
        label="TensorRT-RTX",
        module="tensorrt_rtx",
        distributions=(
            "tensorrt-rtx-cu13",
            "tensorrt-rtx-cu12",
            "tensorrt_rtx_cu13_bindings",
            "tensorrt_rtx_cu12_bindings",
        ),
        install='pip install -e ".[tensorrt-rtx]" (CUDA 13 wheels; with a CUDA 12 build of torch: pip install '
        "tensorrt-rtx-cu12)",
        # 1.7 is the release whose API surface is committed and whose builds CI runs; older ones are untested.
        oldest=(1, 7),
        newest_checked=(1, 7),
        builds_without_gpu=True,
    ),
}

_BINDINGS_FILE = Path(__file__).with_name("bindings.py")
_loaded: dict[str, ModuleType] = {}
_binding: tuple[Library, ModuleType] | None = None


def module_to_bind() -> tuple[Library, ModuleType]:
    """Called by ``bindings.py`` while :func:`load_bindings` executes it: the library it is being bound to."""
    if _binding is None:
        raise ImportError("blockbench.backends.tensorrt.bindings is loaded through library.load_bindings(name)")
    return _binding


def load_bindings(name: str) -> ModuleType:
    """``bindings.py`` bound to library ``name`` (imported once per process); ImportError/OSError if it is missing."""
    global _binding
    if name in _loaded:
        return _loaded[name]
    spec_of = LIBRARIES[name]
    module = importlib.import_module(spec_of.module)
    qualified = f"blockbench.backends.tensorrt.bindings_{name}"
    spec = importlib.util.spec_from_file_location(qualified, _BINDINGS_FILE)
    assert spec is not None and spec.loader is not None
    bound = importlib.util.module_from_spec(spec)
    _binding = (spec_of, module)
    try:
        sys.modules[qualified] = bound
        spec.loader.exec_module(bound)
    except BaseException:
        sys.modules.pop(qualified, None)
        raise
    finally:
        _binding = None
    _loaded[name] = bound
    return bound


def forget_bindings() -> None:
    """Drop the loaded bindings (tests swap the library module for a double)."""
    for name in list(_loaded):
        sys.modules.pop(f"blockbench.backends.tensorrt.bindings_{name}", None)
    _loaded.clear()
