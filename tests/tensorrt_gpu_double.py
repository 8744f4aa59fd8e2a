"""A recording test double of the ``tensorrt`` module, for what no real library can show on a machine without a GPU.

What TensorRT-RTX does without a GPU -- parse, configure, build, cache, refuse -- is tested against the real
library (``tests/backends/tensorrt/test_tensorrt_rtx_builder.py``,
``tests/backends/tensorrt/test_tensorrt_rtx_builds.py``). This double stands in for the
rest: running an engine (named tensors, ``execute_async_v3``, CUDA graphs, the per-layer profiler, deserialization
results), and standard TensorRT 10.x / 11.x, whose wheels install nowhere here: its builder calls, release-specific
ones included (weak typing, the timing cache's merge), are tested on this double
(``tests/backends/tensorrt/test_tensorrt_builder.py``).

Built from ``tests/data/tensorrt_api/tensorrt-<version>.json`` (read from the real bindings wheels): a name the
release lacks raises ``AttributeError`` exactly as the bindings would (``trt.BuilderFlag.FP16`` on 11.x), every call
and attribute assignment is recorded, and a :class:`Script` decides the few answers the backend depends on (parse
result, build result, engine I/O, ``execute_async_v3``'s return value). It proves the mapping from settings to API
calls, never speed or numerics: nothing runs on a GPU.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from blockbench.backends.tensorrt import library

SURFACES = Path(__file__).parent / "data" / "tensorrt_api"
VERSIONS = ("10.16.1.11", "11.4.0.106")
RTX_VERSION = "1.7.1.116"
RUNTIME_CACHE_MAGIC = b"TRT-DOUBLE-RUNTIME-CACHE\n"
PLAN_MAGIC = b"TRT-DOUBLE-PLAN\n"
CACHE_MAGIC = b"TRT-DOUBLE-TIMING\n"

ENUMS = (
    "BuilderFlag",
    "ComputeCapability",
    "CudaGraphStrategy",
    "DataType",
    "ErrorCode",
    "HardwareCompatibilityLevel",
    "LayerInformationFormat",
    "MemoryPoolType",
    "NetworkDefinitionCreationFlag",
    "ProfilingVerbosity",
    "TensorIOMode",
    "TilingOptimizationLevel",
)
SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")


def load_surface(version: str, library_name: str = "tensorrt") -> dict[str, Any]:
    return json.loads((SURFACES / f"{library_name}-{version}.json").read_text())


@dataclass
class Script:
    """The double's answers; defaults describe a healthy one-input, one-output FP32 engine."""

    parse_ok: bool = True
    parser_errors: list[dict[str, Any]] = field(default_factory=list)
    build_ok: bool = True
    build_errors: list[str] = field(default_factory=lambda: ["[optimizer] no implementation for node X"])
    timing_cache_accepted: bool = True
    io: list[tuple[str, str, tuple[int, ...], str]] = field(
        default_factory=lambda: [("input", "INPUT", (1, 3, 64, 64), "FLOAT"), ("logits", "OUTPUT", (1, 10), "FLOAT")]
    )
    execute_ok: bool = True
    runtime_cache_accepted: bool = True
    layers: list[str] = field(default_factory=lambda: ["conv1 + relu1", "gemm"])


class EnumValue:
    """An enum member like pybind11's: hashable, ``int()``-able, printed as ``Owner.NAME``."""

    def __init__(self, owner: str, name: str, value: int) -> None:
        self.owner, self.name, self.value = owner, name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"{self.owner}.{self.name}"

    __str__ = __repr__


class HostMemory:
    """``trt.IHostMemory``: bytes through ``bytes()``."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __bytes__(self) -> bytes:
        return self.data


class Recorded:
    """Base of the double's API objects: public attributes outside the release's surface do not exist."""

    surface = ""

    def __init__(self, double: TensorRTDouble) -> None:
        object.__setattr__(self, "_double", double)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "surface":
            return object.__getattribute__(self, name)
        double: TensorRTDouble = object.__getattribute__(self, "_double")
        qualname = f"{type(self).surface}.{name}"
        double.require(type(self).surface, name)
        try:
            return object.__getattribute__(self, name)
        except AttributeError:
            return double.recorder(qualname)

    def __setattr__(self, name: str, value: Any) -> None:
        double: TensorRTDouble = object.__getattribute__(self, "_double")
        double.require(type(self).surface, name)
        double.record(f"{type(self).surface}.{name}=", value)
        object.__setattr__(self, name, value)


class TimingCache(Recorded):
    surface = "ITimingCache"

    def __init__(self, double: TensorRTDouble, data: bytes) -> None:
        super().__init__(double)
        object.__setattr__(self, "_data", data)

    def serialize(self) -> HostMemory:
        self._double.record("ITimingCache.serialize")
        return HostMemory(self._data + b"+learnt")

    def combine(self, other: TimingCache, ignore_mismatch: bool) -> bool:
        self._double.record("ITimingCache.combine", other._data, ignore_mismatch)
        object.__setattr__(self, "_data", self._data + b"|" + other._data)
        return True


class BuilderConfig(Recorded):
    surface = "IBuilderConfig"

    def create_timing_cache(self, data: bytes) -> TimingCache:
        self._double.record("IBuilderConfig.create_timing_cache", data)
        if data and not data.startswith(CACHE_MAGIC):
            raise RuntimeError("invalid timing cache")
        return TimingCache(self._double, data or CACHE_MAGIC)

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        self._double.record("IBuilderConfig.set_timing_cache", cache._data, ignore_mismatch)
        return self._double.script.timing_cache_accepted or cache._data == CACHE_MAGIC


class Network(Recorded):
    surface = "INetworkDefinition"

    @property
    def num_layers(self) -> int:
        return len(self._double.script.layers)


class ParserError(Recorded):
    surface = "ParserError"

    def __init__(self, double: TensorRTDouble, fields: dict[str, Any]) -> None:
        super().__init__(double)
        object.__setattr__(self, "_fields", fields)

    def _get(self, name: str, default: Any) -> Any:
        return self._fields.get(name, default)

    def code(self) -> EnumValue:
        return self._double.enum("ErrorCode", self._get("code", "UNSUPPORTED_NODE"))

    def desc(self) -> str:
        return self._get("desc", "")

    def node(self) -> int:
        return self._get("node", -1)

    def node_name(self) -> str:
        return self._get("node_name", "")

    def node_operator(self) -> str:
        return self._get("node_operator", "")

    def file(self) -> str:
        return self._get("file", "ModelImporter.cpp")

    def line(self) -> int:
        return self._get("line", 42)

    def func(self) -> str:
        return self._get("func", "importNode")

    def local_function_stack(self) -> list[str]:
        return self._get("local_function_stack", [])


class OnnxParser(Recorded):
    surface = "OnnxParser"

    def __init__(self, network: Network, logger: Any) -> None:
        super().__init__(network._double)

    def parse_from_file(self, path: str) -> bool:
        self._double.record("OnnxParser.parse_from_file", path)
        return self._double.script.parse_ok

    @property
    def num_errors(self) -> int:
        return 0 if self._double.script.parse_ok else len(self._double.script.parser_errors)

    def get_error(self, index: int) -> ParserError:
        return ParserError(self._double, self._double.script.parser_errors[index])


class Builder(Recorded):
    surface = "Builder"

    def __init__(self, logger: Any) -> None:
        super().__init__(TensorRTDouble.current)
        object.__setattr__(self, "_logger", logger)

    def create_network(self, flags: int = 0) -> Network:
        self._double.record("Builder.create_network", flags)
        return Network(self._double)

    def create_builder_config(self) -> BuilderConfig:
        self._double.record("Builder.create_builder_config")
        return BuilderConfig(self._double)

    def build_serialized_network(self, network: Network, config: BuilderConfig) -> HostMemory | None:
        double = self._double
        double.record("Builder.build_serialized_network")
        if not double.script.build_ok:
            for message in double.script.build_errors:
                self._logger.log(double.ILogger.ERROR, message)
            return None
        # The plan records what the builder was told, so different settings give different bytes.
        told = [[name, repr(args)] for name, args in double.calls if name.startswith(("IBuilderConfig.", "Builder."))]
        return HostMemory(PLAN_MAGIC + json.dumps(told).encode())


class ExecutionContext(Recorded):
    surface = "IExecutionContext"

    def __init__(self, double: TensorRTDouble) -> None:
        super().__init__(double)
        object.__setattr__(self, "_shapes", {name: shape for name, _, shape, _ in double.script.io})

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self._double.record("IExecutionContext.set_input_shape", name, tuple(shape))
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        """Dynamic (-1) dimensions resolve to the batch size of the input shape set last."""
        batch = next((args[1][0] for args in reversed(self._double.calls_to("IExecutionContext.set_input_shape"))), -1)
        return tuple(batch if d == -1 else d for d in self._shapes[name])

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._double.record("IExecutionContext.set_tensor_address", name, address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self._double.record("IExecutionContext.execute_async_v3", stream_handle)
        if self._double.script.execute_ok:
            profiler = self.__dict__.get("profiler")
            for layer in self._double.script.layers if profiler is not None else ():
                profiler.report_layer_time(layer, 0.5)
        return self._double.script.execute_ok


class RuntimeCache(Recorded):
    """TensorRT-RTX's ``IRuntimeCache``: kernels compiled just in time, serialized to persist them."""

    surface = "IRuntimeCache"

    def deserialize(self, blob: bytes) -> bool:
        data = bytes(blob)
        self._double.record("IRuntimeCache.deserialize", data)
        return self._double.script.runtime_cache_accepted and data.startswith(RUNTIME_CACHE_MAGIC)

    def serialize(self) -> HostMemory:
        self._double.record("IRuntimeCache.serialize")
        return HostMemory(RUNTIME_CACHE_MAGIC + b"kernels")


class RuntimeConfig(Recorded):
    surface = "IRuntimeConfig"

    def create_runtime_cache(self) -> RuntimeCache:
        self._double.record("IRuntimeConfig.create_runtime_cache")
        return RuntimeCache(self._double)

    def set_runtime_cache(self, cache: RuntimeCache) -> bool:
        self._double.record("IRuntimeConfig.set_runtime_cache", cache)
        return True


class Inspector(Recorded):
    surface = "EngineInspector"

    def get_engine_information(self, fmt: EnumValue) -> str:
        self._double.record("EngineInspector.get_engine_information", fmt)
        return json.dumps({"Layers": self._double.script.layers})


class CudaEngine(Recorded):
    surface = "ICudaEngine"

    @property
    def num_io_tensors(self) -> int:
        return len(self._double.script.io)

    @property
    def num_layers(self) -> int:
        return len(self._double.script.layers)

    def _io(self, name: str) -> tuple[str, str, tuple[int, ...], str]:
        return next(t for t in self._double.script.io if t[0] == name)

    def get_tensor_name(self, index: int) -> str:
        return self._double.script.io[index][0]

    def get_tensor_mode(self, name: str) -> EnumValue:
        return self._double.enum("TensorIOMode", self._io(name)[1])

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._io(name)[2]

    def get_tensor_dtype(self, name: str) -> EnumValue:
        return self._double.enum("DataType", self._io(name)[3])

    def create_execution_context(self, *config: RuntimeConfig) -> ExecutionContext:
        self._double.record("ICudaEngine.create_execution_context", *config)
        return ExecutionContext(self._double)

    def create_runtime_config(self) -> RuntimeConfig:
        self._double.record("ICudaEngine.create_runtime_config")
        return RuntimeConfig(self._double)

    def create_engine_inspector(self) -> Inspector:
        return Inspector(self._double)


class Runtime(Recorded):
    surface = "Runtime"

    def __init__(self, logger: Any) -> None:
        super().__init__(TensorRTDouble.current)

    def deserialize_cuda_engine(self, plan: bytes) -> CudaEngine | None:
        data = bytes(plan)
        self._double.record("Runtime.deserialize_cuda_engine", len(data))
        return CudaEngine(self._double) if data.startswith(PLAN_MAGIC) else None


class Subclassable:
    """``ILogger`` / ``IProfiler`` / ``IProgressMonitor``: Python subclasses call ``Base.__init__(self)``."""

    def __init__(self) -> None:
        pass


class TensorRTDouble(types.ModuleType):
    """Stand-in for ``import tensorrt`` of one release; ``calls`` lists ``(qualified name, args)`` in order."""

    current: TensorRTDouble

    def __init__(self, version: str, script: Script | None = None, library_name: str = "tensorrt") -> None:
        super().__init__(library_name)
        surface = load_surface(version, library_name)
        self.__version__ = version
        self.script = script or Script()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._members: dict[str, set[str]] = {name: set(members) for name, members in surface["names"].items()}
        behaviour = {
            "Builder": Builder,
            "OnnxParser": OnnxParser,
            "Runtime": Runtime,
            "IBuilderConfig": BuilderConfig,
            "INetworkDefinition": Network,
            "ITimingCache": TimingCache,
            "ICudaEngine": CudaEngine,
            "IExecutionContext": ExecutionContext,
            "EngineInspector": Inspector,
            "ParserError": ParserError,
            "IRuntimeConfig": RuntimeConfig,
            "IRuntimeCache": RuntimeCache,
        }
        for name, members in surface["names"].items():
            if name in ENUMS:
                values = {m: EnumValue(name, m, i) for i, m in enumerate(sorted(members)) if m.isupper()}
                setattr(self, name, type(name, (), values))
            elif name in ("ILogger", "IProfiler", "IProgressMonitor"):
                extra = (
                    {s: EnumValue("ILogger.Severity", s, i) for i, s in enumerate(SEVERITIES)}
                    if name == "ILogger"
                    else {}
                )
                setattr(self, name, type(name, (Subclassable,), extra))
            elif name in behaviour:
                setattr(self, name, behaviour[name])
            elif name != "__version__":
                setattr(self, name, type(name, (Recorded,), {"surface": name}))
        TensorRTDouble.current = self

    def require(self, surface: str, member: str) -> None:
        if member not in self._members.get(surface, ()):
            raise AttributeError(f"TensorRT {self.__version__}: {surface} has no attribute {member!r}")

    def record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def recorder(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.record(name, *args, *kwargs.values())

        return call

    def enum(self, owner: str, member: str) -> EnumValue:
        return getattr(getattr(self, owner), member)

    def calls_to(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]


def install(
    monkeypatch: pytest.MonkeyPatch, version: str, script: Script | None = None, library_name: str = "tensorrt"
) -> tuple[TensorRTDouble, Any]:
    """The bindings of ``library_name`` executed against a fresh double of it; undone at test teardown."""
    double = TensorRTDouble(version, script, library_name)
    monkeypatch.setitem(sys.modules, library.LIBRARIES[library_name].module, double)
    monkeypatch.setattr(library, "_loaded", {})  # bindings are executed again, against the double
    monkeypatch.delitem(sys.modules, f"blockbench.backends.tensorrt.bindings_{library_name}", raising=False)
    return double, library.load_bindings(library_name)
