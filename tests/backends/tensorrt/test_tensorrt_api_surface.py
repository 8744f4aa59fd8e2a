"""The backend's TensorRT calls against the real API surfaces of TensorRT 10.x, 11.x and TensorRT-RTX 1.x.

Rule (also in ``backends/tensorrt/versions.py``): every ``trt.X`` / ``trt.X.Y`` name, and every member ``obj.m`` of an
object annotated ``obj: trt.X``, exists in each committed surface (``tests/data/tensorrt_api``), unless it sits inside
``if supports(<version>, "<feature>"):`` -- then it must exist in every committed release that has the feature (the
``else:`` branch: every release that lacks it). A name a ``FEATURES`` entry lists must always sit behind that switch,
even where both committed releases have it (``tiling_optimization_level`` is absent before 10.8). Dynamic access
(``getattr``/``hasattr`` on TensorRT objects, ``from tensorrt import``, passing the module around) is refused, since it
would hide names from this check.
"""

from __future__ import annotations

import ast
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from blockbench.backends.tensorrt.versions import FEATURES, TrtVersion, supports

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "blockbench" / "backends" / "tensorrt"
SURFACE_DIR = Path(__file__).parents[2] / "data" / "tensorrt_api"
DYNAMIC = ("getattr", "hasattr", "setattr", "delattr")


@dataclass(frozen=True)
class Surface:
    version: TrtVersion
    names: dict[str, set[str]]
    nested: set[str]

    def has(self, owner: str, member: str | None) -> bool:
        if owner not in self.names:
            return False
        return member is None or member in self.names[owner] or f"{owner}.{member}" in self.nested


def load_surfaces() -> list[Surface]:
    surfaces = []
    for path in sorted(SURFACE_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        names = {name: set(members) for name, members in data["names"].items()}
        version = TrtVersion.parse(data["version"], data.get("library", "tensorrt"))
        surfaces.append(Surface(version, names, set(data["nested"])))
    return surfaces


SURFACES = load_surfaces()


@dataclass(frozen=True)
class Use:
    line: int
    owner: str
    member: str | None
    text: str
    guards: tuple[tuple[str, bool], ...]

    @property
    def dotted(self) -> str:
        return self.owner if self.member is None else f"{self.owner}.{self.member}"


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None unless the expression is names and attributes only."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _binds_library(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "module_to_bind"


class Collector(ast.NodeVisitor):
    """Finds every TensorRT name a module uses, with the version switches around it."""

    def __init__(self, tree: ast.Module) -> None:
        self.problems: list[str] = []
        self.uses: list[Use] = []
        self.guards: list[tuple[str, bool]] = []
        # the library module's names: ``import tensorrt as trt``, or ``LIBRARY, trt = module_to_bind()``
        self.aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name in ("tensorrt", "tensorrt_rtx")
        } | {
            target.elts[-1].id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and _binds_library(node.value)
            for target in node.targets
            if isinstance(target, ast.Tuple) and isinstance(target.elts[-1], ast.Name)
        }
        self.types = self._annotated(tree)

    def _trt_class(self, annotation: ast.expr | None) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            return self._trt_class(ast.parse(annotation.value, mode="eval").body)
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            return self._trt_class(annotation.left) or self._trt_class(annotation.right)
        chain = _chain(annotation)
        return chain[1] if chain and len(chain) == 2 and chain[0] in self.aliases else None

    def _annotated(self, tree: ast.Module) -> dict[str, str]:
        """Expression text -> TensorRT class, from parameter and variable annotations (module-wide, consistent)."""
        found: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                target, annotation = node.arg, node.annotation
            elif isinstance(node, ast.AnnAssign):
                target, annotation = ast.unparse(node.target), node.annotation
            else:
                continue
            cls = self._trt_class(annotation)
            if cls is None:
                continue
            if found.setdefault(target, cls) != cls:
                self.problems.append(f"line {node.lineno}: {target!r} is annotated both {found[target]} and {cls}")
        return found

    def _use(self, node: ast.AST, owner: str, member: str | None) -> None:
        self.uses.append(Use(node.lineno, owner, member, ast.unparse(node), tuple(self.guards)))

    def _guard(self, test: ast.expr) -> str | None:
        if not (isinstance(test, ast.Call) and len(test.args) == 2):
            return None
        func = test.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        feature = test.args[1]
        if name != "supports":
            return None
        if not (isinstance(feature, ast.Constant) and isinstance(feature.value, str)):
            self.problems.append(f"line {test.lineno}: supports() needs the feature as a string literal")
            return None
        if feature.value not in FEATURES:
            self.problems.append(f"line {test.lineno}: unknown feature {feature.value!r} (see versions.FEATURES)")
            return None
        return feature.value

    def visit_If(self, node: ast.If) -> None:
        feature = self._guard(node.test)
        if feature is None:
            self.generic_visit(node)
            return
        for branch, present in ((node.body, True), (node.orelse, False)):
            self.guards.append((feature, present))
            for statement in branch:
                self.visit(statement)
            self.guards.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain and chain[0] in self.aliases:
            self._use(node, chain[1], chain[2] if len(chain) > 2 else None)
            return
        owner = self.types.get(ast.unparse(node.value))
        if owner is not None:
            self._use(node, owner, node.attr)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if not _binds_library(node.value):  # the one place the module is bound is not a use
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases:
            self.problems.append(f"line {node.lineno}: the tensorrt module is used as a value; its names go unchecked")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.module.split(".")[0] in ("tensorrt", "tensorrt_rtx"):
            self.problems.append(f"line {node.lineno}: 'from {node.module} import' hides names; use trt.<name>")

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in DYNAMIC and node.args:
            target = ast.unparse(node.args[0])
            chain = _chain(node.args[0])
            if (chain and chain[0] in self.aliases) or target in self.types:
                self.problems.append(f"line {node.lineno}: {node.func.id}({target}, ...) hides a TensorRT name")
        self.generic_visit(node)


def check_source(source: str, surfaces: list[Surface] = SURFACES) -> tuple[list[str], list[Use]]:
    """Problems (empty when the rule holds) and the TensorRT names found in ``source``."""
    tree = ast.parse(source)
    collector = Collector(tree)
    collector.visit(tree)
    problems = list(collector.problems)
    for use in collector.uses:
        reachable = [s for s in surfaces if all(supports(s.version, f) == want for f, want in use.guards)]
        if not reachable:
            problems.append(f"line {use.line}: {use.text} is behind switches no committed release passes")
        for surface in reachable:
            if not surface.has(use.owner, use.member):
                problems.append(f"line {use.line}: {use.text}: {use.dotted} is not in TensorRT {surface.version}")
        for feature, spec in FEATURES.items():
            listed = any(use.dotted == name or use.owner == name for name in spec.api)
            if listed and (feature, True) not in use.guards:
                problems.append(f"line {use.line}: {use.text} needs `if supports(VERSION, {feature!r}):` around it")
    return problems, collector.uses


def test_committed_surfaces_are_10x_11x_and_tensorrt_rtx() -> None:
    found = sorted((s.version.library, s.version.major) for s in SURFACES)
    assert found == [("tensorrt", 10), ("tensorrt", 11), ("tensorrt_rtx", 1)]


def test_the_rtx_surface_is_the_installed_librarys() -> None:
    """The committed TensorRT-RTX surface is what the real module exposes (re-record it on an upgrade)."""
    trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras")
    (rtx,) = [s for s in SURFACES if s.version.library == "tensorrt_rtx"]
    if str(rtx.version) != trt.__version__:
        pytest.skip(f"installed TensorRT-RTX {trt.__version__}, committed surface {rtx.version}")
    for owner, members in rtx.names.items():
        value = getattr(trt, owner)
        missing = [m for m in members if not hasattr(value, m)]
        assert missing == [], (owner, missing)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_backend_source_passes_the_surface_rule(path: Path) -> None:
    problems, uses = check_source(path.read_text())
    assert problems == []
    if path.name == "bindings.py":
        owners = {u.owner for u in uses}
        assert {"Builder", "IBuilderConfig", "OnnxParser", "ParserError", "Runtime", "ICudaEngine"} <= owners
        assert {"IExecutionContext", "ITimingCache", "EngineInspector", "BuilderFlag", "ILogger"} <= owners
        assert {"ComputeCapability", "IRuntimeConfig", "IRuntimeCache", "CudaGraphStrategy"} <= owners
    else:
        assert uses == [], f"{path.name} touches TensorRT; keep that in bindings.py"


PLANTED = """
import tensorrt as trt

def configure(config: trt.IBuilderConfig) -> None:
    config.set_flag(trt.BuilderFlag.FP16)
"""


def test_checker_fails_on_a_planted_fp16_flag_without_a_switch() -> None:
    problems, _ = check_source(PLANTED)
    assert any("BuilderFlag.FP16 is not in TensorRT 11.4.0.106" in p for p in problems), problems
    assert any("needs `if supports(VERSION, 'weak_typing'):`" in p for p in problems), problems


def test_the_planted_flag_passes_behind_its_switch() -> None:
    source = PLANTED.replace(
        "    config.set_flag(trt.BuilderFlag.FP16)",
        '    if supports(VERSION, "weak_typing"):\n        config.set_flag(trt.BuilderFlag.FP16)',
    )
    assert check_source(source)[0] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        # the else branch runs on releases WITHOUT the feature: 11.x has no FP16 flag
        (
            'if supports(VERSION, "weak_typing"):\n    pass\nelse:\n    trt.BuilderFlag.FP16',
            "BuilderFlag.FP16 is not in TensorRT 11.4.0.106",
        ),
        # a member of an annotated object: Builder lost platform_has_fast_fp16 in 11.0
        ("def f(builder: trt.Builder) -> bool:\n    return builder.platform_has_fast_fp16", "platform_has_fast_fp16"),
        # present in both committed releases, but absent before 10.8: still needs its switch
        ("def f(config: trt.IBuilderConfig) -> None:\n    config.tiling_optimization_level = 1", "tiling_optimization"),
        # names the notes list as nonexistent
        ("trt.TimingCache", "TimingCache is not in TensorRT 10.16.1.11"),
        ("trt.BuilderFlag.STRICT_TYPES", "STRICT_TYPES is not in TensorRT 10.16.1.11"),
        ("trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH", "is not in TensorRT 11.4.0.106"),
        ("def f(e: trt.ParserError) -> str:\n    return e.description", "ParserError.description"),
        ("def f(c: trt.IBuilderConfig) -> None:\n    c.create_optimization_profile()", "is not in TensorRT"),
        ('getattr(trt.BuilderFlag, "FP16")', "hides a TensorRT name"),
        ("from tensorrt import BuilderFlag", "hides names"),
        ("def f() -> object:\n    return trt", "used as a value"),
        ('if supports(VERSION, "fp8"):\n    pass', "unknown feature 'fp8'"),
    ],
)
def test_checker_catches(body: str, fragment: str) -> None:
    problems, _ = check_source("import tensorrt as trt\n\n" + textwrap.dedent(body))
    assert any(fragment in p for p in problems), problems


def test_feature_table_agrees_with_the_committed_surfaces() -> None:
    """A feature's API names exist in every committed release that has it and in none that lacks it."""
    for feature, spec in FEATURES.items():
        for surface in SURFACES:
            for name in spec.api:
                owner, _, member = name.partition(".")
                assert surface.has(owner, member or None) == supports(surface.version, feature), (feature, name)
