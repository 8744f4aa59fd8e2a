#!/usr/bin/env python3
"""Record the Python API surface of TensorRT releases from the PyPI bindings wheels.

For every requested version this downloads the ``tensorrt-cu13-bindings`` (or, failing
that, ``tensorrt-cu12-bindings``) wheel, which holds the compiled pybind11 extension
``tensorrt_bindings/tensorrt.so`` plus a small ``__init__.py``, and writes
``<out>/tensorrt-<version>.json``::

    {"version": "11.4.0.106", "package": "tensorrt-cu13-bindings",
     "wheel": "tensorrt_cu13_bindings-...whl", "source": "introspection",
     "names": {"BuilderFlag": ["DEBUG", ...], "volume": [], ...},
     "nested": {"ILogger.Severity": ["ERROR", ...]}}

``names`` holds what ``import tensorrt`` exposes (``tensorrt/__init__.py`` is just
``from tensorrt_bindings import *`` plus ``__version__``); each class maps to its sorted
attributes, functions and constants map to ``[]``. ``nested`` holds classes defined
inside classes (keyed by ``__qualname__``).

How the names are read
----------------------
1. ``source: "stub"`` -- if the wheel ships a ``.pyi`` stub it is parsed with ``ast``
   (members of base classes defined in the same stub are merged in). No TensorRT
   wheel up to 11.4 ships one.
2. ``source: "introspection"`` -- otherwise the real extension is imported, in a child
   process, against generated no-op stand-ins for the libraries it links to
   (``libnvinfer.so.N``, ``libnvinfer_plugin.so.N``, ``libnvonnxparser.so.N``). The
   extension only references a handful of C entry points of those libraries
   (``createInferBuilder_INTERNAL``, ``getPluginRegistry``, ...) and module
   initialisation calls none of them, so pybind11 registers every class, method,
   property and enum value exactly as with the real libraries; nothing TensorRT-side
   is ever executed. Attribution of members to classes is therefore exact
   (``vars()`` over each class's MRO), not heuristic.

Why not scrape strings out of the ``.so``: the extension is built with LTO, so
``.def("name", ...)`` calls are inlined into a few huge ``bind*`` functions and the
name strings reach pybind11 through arbitrary registers/stack slots; and the linker
deduplicates (and tail-merges) identical strings across the whole library, so
``"name"``, ``"REFIT"`` or ``"set_flag"`` occur once, next to whichever class used them
first. Strings give a bag of identifiers, not a class -> member mapping; some names do
not even survive as standalone strings (measured on 10.16/11.4: ~13% of member names and
``Builder``, ``Runtime``, ``DataType``, ``Logger`` exist only as tails of longer ones).

Filtering rules (documented so the data can be trusted):
* class members: names from ``vars()`` of every class in the MRO that belongs to the
  TensorRT module (``object``/pybind11 bases excluded); private ``_x`` names and
  pybind11 bookkeeping (``__module__``, ``__doc__``, ``__pybind11_module_local_*``)
  are dropped; other dunders (``__init__``, ``__len__``, ``__enter__`` ...) are kept.
* enums: dunders (``__int__``, ``__lt__`` ...) and the pybind11 enum machinery common to
  *all* enums (``name``, ``value``) are dropped; what remains are the enum members plus
  anything extra (e.g. ``DataType.itemsize``).
* top level: public names of the extension, public functions defined in
  ``tensorrt_bindings/__init__.py`` (``volume``, ``nptype`` ...) and ``__version__``;
  modules (``os``, ``sys`` ...) and leaked loop variables (``attr``, ``value``) are not
  API. ``tensorrt.plugin`` (a pure-Python subpackage) is not imported.

Requirements: Linux, ``pip``, a C compiler (``cc``) and binutils (``nm``, ``readelf``).
The wheel is fetched for the running interpreter's CPython version.

Usage::

    python scripts/trt_api_surface.py --versions 10.16.1.11 11.4.0.106 \\
        --out tests/data/tensorrt_api
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGES = ("tensorrt-cu13-bindings", "tensorrt-cu12-bindings")
PLATFORM_TAGS = ("manylinux_2_28", "manylinux_2_17", "manylinux2014")
PACKAGE_DIR = "tensorrt_bindings"
NOISE = {"__module__", "__doc__", "__dict__", "__weakref__", "__qualname__"}
DESCRIPTION = "Record the TensorRT Python API surface from the PyPI bindings wheels."

Surface = dict[str, Any]


# --------------------------------------------------------------------------- download


def download_wheel(version: str, packages: tuple[str, ...], dest: Path) -> tuple[str, Path]:
    """Download the bindings wheel of ``version``; return (package, wheel path)."""
    py = f"{sys.version_info.major}{sys.version_info.minor}"
    for package in packages:
        for tag in PLATFORM_TAGS:
            target = dest / f"{package}-{version}"
            cmd = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--python-version", py,
                "--platform", f"{tag}_{platform.machine()}",
                "--dest", str(target), f"{package}=={version}",
            ]  # fmt: skip
            done = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if done.returncode == 0:
                wheels = sorted(target.glob("*.whl"))
                if wheels:
                    return package, wheels[0]
    raise SystemExit(f"no bindings wheel found for TensorRT {version} in {packages}")


# --------------------------------------------------------------------------- .pyi stubs


def _stub_members(cls: ast.ClassDef) -> set[str]:
    members: set[str] = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members.add(node.target.id)
        elif isinstance(node, ast.Assign):
            members.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {m for m in members if not m.startswith("_") or _is_api_dunder(m)}


def surface_from_stub(stub: Path) -> Surface:
    """Names from a ``.pyi`` stub; base-class members defined in the stub are merged."""
    tree = ast.parse(stub.read_text())
    classes: dict[str, ast.ClassDef] = {}
    names: dict[str, set[str]] = {}

    def collect(cls: ast.ClassDef, qualname: str) -> None:
        classes[qualname] = cls
        for node in cls.body:
            if isinstance(node, ast.ClassDef):
                collect(node, f"{qualname}.{node.name}")

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            collect(node, node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
        elif isinstance(node, ast.Assign):
            names.update((t.id, set()) for t in node.targets if isinstance(t, ast.Name))

    def members(qualname: str, seen: frozenset[str] = frozenset()) -> set[str]:
        cls = classes[qualname]
        result = _stub_members(cls)
        for base in cls.bases:
            base_name = ast.unparse(base).rsplit(".", 1)[-1]
            if base_name in classes and base_name not in seen:
                result |= members(base_name, seen | {qualname})
        return result

    nested = {q: sorted(members(q)) for q in classes if "." in q}
    names.update((q, members(q)) for q in classes if "." not in q)
    public = {k: sorted(v) for k, v in names.items() if not k.startswith("_") or k == "__version__"}
    return {"names": public, "nested": nested}


# --------------------------------------------------------------------------- import


def _is_api_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in NOISE and not name.startswith("__pybind11")


def _missing_libraries(ext: Path) -> list[str]:
    """DT_NEEDED entries of ``ext`` that the dynamic loader cannot find."""
    dynamic = subprocess.run(["readelf", "-d", str(ext)], check=True, capture_output=True, text=True)
    missing = []
    for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic.stdout):
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(lib)
    return missing


def _missing_symbols(ext: Path) -> list[str]:
    """Unversioned undefined symbols of ``ext`` that this process does not provide."""
    nm = subprocess.run(
        ["nm", "-D", "--undefined-only", str(ext)],
        check=True,
        capture_output=True,
        text=True,
    )
    process = ctypes.CDLL(None)
    symbols = []
    for line in nm.stdout.splitlines():
        match line.split():
            case ["U", name] if "@" not in name and not hasattr(process, name):
                symbols.append(name)
    return symbols


def build_stub_libraries(ext: Path) -> None:
    """Put no-op ``libnvinfer*.so.N`` next to ``ext`` (its rpath is ``$ORIGIN``)."""
    libraries = _missing_libraries(ext)
    if not libraries:
        return
    symbols = _missing_symbols(ext)
    source = ext.parent / "_trt_stub.c"
    source.write_text("".join(f"void *{s}(void) {{ return 0; }}\n" for s in symbols))
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("a C compiler (cc/gcc) is needed to build the stub libraries")
    for lib in libraries:
        cmd = [
            compiler,
            "-shared",
            "-fPIC",
            f"-Wl,-soname,{lib}",
            "-o",
            str(ext.parent / lib),
        ]
        subprocess.run([*cmd, str(source)], check=True)


def introspect(root: Path | None, package_dir: str = PACKAGE_DIR, extension: str = "tensorrt") -> Surface:
    """Import ``package_dir`` (from ``root``, else as installed) and list its API (child process)."""
    if root is not None:
        sys.path.insert(0, str(root))
    trt = importlib.import_module(package_dir)
    ext = getattr(trt, extension)
    module_names = {ext.__name__, trt.__name__}

    def own_classes(cls: type) -> list[type]:
        return [k for k in cls.__mro__ if k.__module__ in module_names]

    def raw_members(cls: type) -> set[str]:
        names = {n for k in own_classes(cls) for n in vars(k)}
        return {n for n in names if not n.startswith("_") or _is_api_dunder(n)}

    classes: dict[str, type] = {}

    def collect(cls: type, qualname: str) -> None:
        classes[qualname] = cls
        for name in raw_members(cls):
            value = getattr(cls, name, None)
            if isinstance(value, type) and value.__qualname__ == f"{qualname}.{name}":
                collect(value, f"{qualname}.{name}")

    top: dict[str, object] = {}
    for name in dir(trt):
        value = getattr(trt, name)
        if isinstance(value, types.ModuleType):
            continue
        from_ext = not name.startswith("_") and name in vars(ext)
        from_init = not name.startswith("_") and isinstance(value, types.FunctionType)
        if from_ext or from_init or name == "__version__":
            top[name] = value
            if isinstance(value, type) and value.__qualname__ == name:
                collect(value, name)

    def enum_values(cls: type) -> set[str] | None:
        values = getattr(cls, "__members__", None)
        return set(values) if isinstance(values, Mapping) else None

    enum_extras = [raw_members(c) - values for c in classes.values() if (values := enum_values(c)) is not None]
    generic: set[str] = set.intersection(*enum_extras) if enum_extras else set()

    def members(cls: type) -> list[str]:
        result = raw_members(cls)
        values = enum_values(cls)
        if values is not None:
            result = {n for n in result - generic if not n.startswith("__")} | values
        return sorted(result)

    names = {n: members(v) if isinstance(v, type) else [] for n, v in top.items()}
    nested = {q: members(c) for q, c in classes.items() if "." in q}
    return {"version": trt.__version__, "names": names, "nested": nested}


def surface_from_import(root: Path) -> Surface:
    """Run :func:`introspect` in a fresh interpreter so several versions never mix."""
    ext = next((root / PACKAGE_DIR).glob("tensorrt*.so"))
    build_stub_libraries(ext)
    cmd = [sys.executable, __file__, "--introspect", str(root)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    surface: Surface = json.loads(result.stdout)
    return surface


# --------------------------------------------------------------------------- driver


def extract(version: str, packages: tuple[str, ...], workdir: Path) -> Surface:
    package, wheel = download_wheel(version, packages, workdir)
    root = workdir / f"{package}-{version}-unpacked"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(root)
    stubs = sorted((root / PACKAGE_DIR).glob("*.pyi"))
    if stubs:
        surface, source = surface_from_stub(stubs[0]), "stub"
    else:
        surface, source = surface_from_import(root), "introspection"
        if surface.pop("version") != version:
            raise SystemExit(f"{wheel.name}: __version__ does not match {version}")
    return {
        "version": version,
        "package": package,
        "wheel": wheel.name,
        "source": source,
        "names": surface["names"],
        "nested": surface["nested"],
    }


def dump(surface: Surface) -> str:
    """JSON with one line per class, so diffs between versions stay readable."""

    def block(mapping: dict[str, list[str]]) -> str:
        rows = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(mapping.items())]
        return "{\n" + ",\n".join(rows) + "\n  }"

    keys = (
        ("version", "library", "package", "wheel", "source")
        if "library" in surface
        else ("version", "package", "wheel", "source")
    )
    head = [f"  {json.dumps(k)}: {json.dumps(surface[k])}" for k in keys]
    body = [
        f'  "names": {block(surface["names"])}',
        f'  "nested": {block(surface["nested"])}',
    ]
    return "{\n" + ",\n".join(head + body) + "\n}\n"


def installed_surface(library: str) -> Surface:
    """The API surface of an installed library that imports on this machine (TensorRT-RTX does, without a GPU)."""
    package_dir = f"{library}_bindings"
    cmd = [sys.executable, __file__, "--introspect-installed", library]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    surface: Surface = json.loads(result.stdout)
    version = surface.pop("version")
    return {
        "version": version,
        "library": library,
        "package": ", ".join(importlib.metadata.packages_distributions().get(package_dir, [package_dir])),
        "wheel": f"installed {library} {version}",
        "source": "introspection",
        "names": surface["names"],
        "nested": surface["nested"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--versions", nargs="+", help="TensorRT versions, e.g. 10.16.1.11 11.4.0.106")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("tests/data/tensorrt_api"),
        help="output directory for tensorrt-<version>.json",
    )
    parser.add_argument(
        "--packages",
        nargs="+",
        default=list(PACKAGES),
        help="PyPI names to try, in order",
    )
    parser.add_argument(
        "--installed",
        help="instead of wheels: introspect this installed library module, e.g. tensorrt_rtx (TensorRT-RTX)",
    )
    parser.add_argument("--introspect", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--introspect-installed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.introspect:
        json.dump(introspect(args.introspect), sys.stdout)
        return
    if args.introspect_installed:
        library = args.introspect_installed
        json.dump(introspect(None, f"{library}_bindings", library), sys.stdout)
        return
    if args.installed:
        args.out.mkdir(parents=True, exist_ok=True)
        surface = installed_surface(args.installed)
        path = args.out / f"{args.installed}-{surface['version']}.json"
        path.write_text(dump(surface))
        print(f"{path}: {surface['package']} ({surface['source']}), {len(surface['names'])} names")
        return
    if not args.versions:
        parser.error("--versions is required")

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trt-api-") as tmp:
        for version in args.versions:
            surface = extract(version, tuple(args.packages), Path(tmp))
            path = args.out / f"tensorrt-{version}.json"
            path.write_text(dump(surface))
            members = sum(len(v) for v in surface["names"].values())
            print(f"{path}: {surface['package']} ({surface['source']}), "
                  f"{len(surface['names'])} names, {members} members")  # fmt: skip


if __name__ == "__main__":
    main()
