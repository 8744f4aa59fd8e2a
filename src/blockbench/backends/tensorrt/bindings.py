"""The only module that imports ``tensorrt``: parse, build, deserialize, named-tensor execution, inspect, profile.

Kept thin and explicit for ``tests/test_tensorrt_api_surface.py``: every ``trt.`` name, and every member of an
object annotated ``trt.<Class>``, must exist in each committed TensorRT API surface or sit inside
``if supports(VERSION, "<feature>"):`` (see :mod:`.versions`). So objects from TensorRT are annotated, enum members
are spelled out (no ``getattr`` with strings) and every boolean result is checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import tensorrt as trt

from blockbench.backends.tensorrt.diagnostics import (
    EngineBuildError,
    EngineRuntimeError,
    LayerTimes,
    OnnxParseError,
    ParserIssue,
    format_build_failure,
    format_parser_errors,
    format_runtime_failure,
)
from blockbench.backends.tensorrt.options import BuildOptions
from blockbench.backends.tensorrt.tensors import TensorInfo
from blockbench.backends.tensorrt.versions import TrtVersion, feature_error, supports

log = logging.getLogger(__name__)

VERSION = TrtVersion.parse(trt.__version__)

_SEVERITY = {
    trt.ILogger.INTERNAL_ERROR: logging.CRITICAL,
    trt.ILogger.ERROR: logging.ERROR,
    trt.ILogger.WARNING: logging.WARNING,
    trt.ILogger.INFO: logging.INFO,
    trt.ILogger.VERBOSE: logging.DEBUG,
}
_THRESHOLD = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "verbose": logging.DEBUG}
_PROFILING = {
    "detailed": trt.ProfilingVerbosity.DETAILED,
    "layer_names_only": trt.ProfilingVerbosity.LAYER_NAMES_ONLY,
    "none": trt.ProfilingVerbosity.NONE,
}
_DTYPE_NAMES = {
    trt.DataType.FLOAT: "float32",
    trt.DataType.HALF: "float16",
    trt.DataType.BF16: "bfloat16",
    trt.DataType.INT32: "int32",
    trt.DataType.INT64: "int64",
    trt.DataType.INT8: "int8",
    trt.DataType.UINT8: "uint8",
    trt.DataType.BOOL: "bool",
}


class Logger(trt.ILogger):
    """TensorRT's messages into ``logging`` (verbose ones at INFO, when asked for); errors kept for messages."""

    def __init__(self, level: str) -> None:
        trt.ILogger.__init__(self)
        self.threshold = _THRESHOLD[level]
        self.errors: list[str] = []

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        level = _SEVERITY.get(severity, logging.ERROR)
        if level >= logging.ERROR:
            self.errors.append(msg)
        if level >= self.threshold:
            log.log(max(level, logging.INFO), "TensorRT: %s", msg)


class _Progress(trt.IProgressMonitor):
    """Logs the builder's top-level phases; Ctrl-C during a build cancels it instead of killing the process."""

    def __init__(self) -> None:
        trt.IProgressMonitor.__init__(self)
        self.started: dict[str, float] = {}
        self.cancelled = False

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        try:
            if parent_phase is None:
                log.info("build: %s (%d steps)", phase_name, num_steps)
                self.started[phase_name] = time.perf_counter()
        except KeyboardInterrupt:
            self.cancelled = True

    def step_complete(self, phase_name: str, step: int) -> bool:
        try:
            return not self.cancelled
        except KeyboardInterrupt:
            self.cancelled = True
            return False

    def phase_finish(self, phase_name: str) -> None:
        try:
            start = self.started.pop(phase_name, None)
            if start is not None:
                log.info("build: %s done in %.1f s", phase_name, time.perf_counter() - start)
        except KeyboardInterrupt:
            self.cancelled = True


class _LayerProfiler(trt.IProfiler):
    def __init__(self, times: LayerTimes) -> None:
        trt.IProfiler.__init__(self)
        self.times = times

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        self.times.add(layer_name, ms)


def _network_flags(options: BuildOptions) -> int:
    if supports(VERSION, "weak_typing"):  # 10.x: strong typing is opt-in
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if options.strongly_typed else 0
    return 0  # 11.x: every network is strongly typed; the flag is deprecated and ignored


def _hardware_level(name: str) -> trt.HardwareCompatibilityLevel:
    if name != "same_compute_capability":
        levels = {
            "none": trt.HardwareCompatibilityLevel.NONE,
            "ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
        }
        return levels[name]
    if supports(VERSION, "same_compute_capability"):
        return trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
    raise feature_error(VERSION, "same_compute_capability")


def configure(config: trt.IBuilderConfig, options: BuildOptions) -> None:
    """Apply ``options`` to a builder config, one setting per call (the unit tests read these calls back)."""
    if options.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    config.builder_optimization_level = options.optimization_level
    config.avg_timing_iterations = options.avg_timing_iterations
    if options.max_aux_streams is not None:
        config.max_aux_streams = options.max_aux_streams
    config.profiling_verbosity = _PROFILING[options.profiling_verbosity]
    config.hardware_compatibility_level = _hardware_level(options.hardware_compatibility_level)
    if options.tiling_optimization_level is not None:
        if supports(VERSION, "tiling_optimization"):
            tiling = {
                "none": trt.TilingOptimizationLevel.NONE,
                "fast": trt.TilingOptimizationLevel.FAST,
                "moderate": trt.TilingOptimizationLevel.MODERATE,
                "full": trt.TilingOptimizationLevel.FULL,
            }
            config.tiling_optimization_level = tiling[options.tiling_optimization_level]
        else:
            raise feature_error(VERSION, "tiling_optimization")
    if options.tf32:
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    if options.weak_precision is not None:
        if supports(VERSION, "weak_typing"):
            fp16 = options.weak_precision == "fp16"
            config.set_flag(trt.BuilderFlag.FP16 if fp16 else trt.BuilderFlag.BF16)
        else:
            raise feature_error(VERSION, "weak_typing")


def _timing_cache(config: trt.IBuilderConfig, data: bytes) -> trt.ITimingCache | None:
    try:
        return config.create_timing_cache(data)
    except RuntimeError as exc:
        log.warning("timing cache: cannot read the saved cache (%s)", exc)
        return None


def _attach_timing_cache(config: trt.IBuilderConfig, saved: bytes | None) -> trt.ITimingCache:
    cache = _timing_cache(config, saved or b"")
    if cache is None or not config.set_timing_cache(cache, False):
        if saved:
            log.warning("timing cache: the saved cache does not fit TensorRT %s on this GPU; starting empty", VERSION)
        cache = config.create_timing_cache(b"")
        if not config.set_timing_cache(cache, False):
            raise EngineBuildError(f"TensorRT {VERSION} refused an empty timing cache")
    return cache


def _parser_issue(error: trt.ParserError) -> ParserIssue:
    location = f"{error.file()}:{error.line()} {error.func()}".strip(": ")
    return ParserIssue(
        code=str(error.code()),
        message=error.desc(),
        node=error.node(),
        node_name=error.node_name(),
        operator=error.node_operator(),
        local_functions=tuple(error.local_function_stack()),
        source=location,
    )


def build_plan(
    onnx_path: Path, options: BuildOptions, saved_cache: bytes | None, logger: Logger
) -> tuple[bytes, bytes | None]:
    """Parse ``onnx_path`` and build a serialized engine; also return the (updated) timing cache, if used."""
    logged_before = len(logger.errors)  # report this build's errors, not an earlier rejected cache entry's
    builder: trt.Builder = trt.Builder(logger)
    network: trt.INetworkDefinition = builder.create_network(_network_flags(options))
    parser: trt.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        issues = [_parser_issue(parser.get_error(index)) for index in range(parser.num_errors)]
        raise OnnxParseError(format_parser_errors(onnx_path, issues, str(VERSION)))
    config: trt.IBuilderConfig = builder.create_builder_config()
    configure(config, options)
    cache: trt.ITimingCache | None = _attach_timing_cache(config, saved_cache) if options.timing_cache else None
    progress = _Progress()
    config.progress_monitor = progress
    plan: trt.IHostMemory | None = builder.build_serialized_network(network, config)
    if progress.cancelled:
        raise KeyboardInterrupt
    if plan is None:
        raise EngineBuildError(format_build_failure(onnx_path, logger.errors[logged_before:], str(VERSION)))
    return bytes(plan), None if cache is None else bytes(cache.serialize())


def combine_timing_caches(ours: bytes, theirs: bytes, logger: Logger) -> bytes:
    """``ours`` plus the entries another job saved meanwhile; ``ours`` alone if TensorRT cannot combine them."""
    builder: trt.Builder = trt.Builder(logger)
    config: trt.IBuilderConfig = builder.create_builder_config()
    mine: trt.ITimingCache | None = _timing_cache(config, ours)
    other: trt.ITimingCache | None = _timing_cache(config, theirs)
    if mine is None:
        return ours
    if other is None or not mine.combine(other, False):
        log.warning("timing cache: could not merge the cache another job saved; keeping this run's")
        return ours
    return bytes(mine.serialize())


class Engine:
    """A deserialized engine and one execution context: the named-tensor API, every boolean result checked."""

    def __init__(self, runtime: trt.Runtime, engine: trt.ICudaEngine, logger: Logger) -> None:
        # TensorRT keeps raw pointers to the logger and runtime: both must outlive the engine and its context.
        self.logger = logger
        self.runtime: trt.Runtime = runtime
        self.engine: trt.ICudaEngine = engine
        self.context: trt.IExecutionContext = engine.create_execution_context()
        if self.context is None:
            raise EngineRuntimeError(format_runtime_failure("create_execution_context", logger.errors))
        self._execute = self.context.execute_async_v3
        self._profiler: _LayerProfiler | None = None

    @property
    def num_layers(self) -> int:
        return self.engine.num_layers

    def io_tensors(self) -> list[TensorInfo]:
        tensors = []
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            dtype = self.engine.get_tensor_dtype(name)
            tensors.append(
                TensorInfo(
                    name=name,
                    is_input=self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                    shape=tuple(self.engine.get_tensor_shape(name)),
                    dtype=_DTYPE_NAMES.get(dtype, str(dtype)),
                )
            )
        return tensors

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self.context.set_input_shape(name, shape):
            raise EngineRuntimeError(format_runtime_failure(f"set_input_shape({name!r}, {shape})", self.logger.errors))

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.context.get_tensor_shape(name))

    def bind(self, name: str, address: int) -> None:
        if not self.context.set_tensor_address(name, address):
            raise EngineRuntimeError(format_runtime_failure(f"set_tensor_address({name!r})", self.logger.errors))

    def enqueue(self, stream_handle: int) -> None:
        """``execute_async_v3`` on the stream; the timed call, so nothing else happens here."""
        if not self._execute(stream_handle):
            raise EngineRuntimeError(format_runtime_failure("execute_async_v3", self.logger.errors))

    def layer_information(self) -> str:
        """The engine inspector's JSON (detail set by the build's profiling verbosity)."""
        inspector: trt.EngineInspector = self.engine.create_engine_inspector()
        inspector.execution_context = self.context
        return inspector.get_engine_information(trt.LayerInformationFormat.JSON)

    def release(self) -> None:
        """Free the context, then the engine, then the runtime: TensorRT's objects must die in that order."""
        self._execute = None
        self._profiler = None
        self.context = None
        self.engine = None
        self.runtime = None

    def profile_layers(self, stream_handle: int, iterations: int, synchronize: Callable[[], None]) -> LayerTimes:
        """Per-layer times over ``iterations`` plain enqueues (never the timed loop: the profiler slows every layer)."""
        times = LayerTimes()
        self._profiler = _LayerProfiler(times)  # referenced here: TensorRT holds only a raw pointer
        self.context.profiler = self._profiler
        for _ in range(iterations):
            self.enqueue(stream_handle)
            synchronize()
        return times


def deserialize(plan: bytes, logger: Logger) -> Engine | None:
    """The engine, or None when TensorRT rejects the plan (another version, another GPU, damaged bytes)."""
    runtime: trt.Runtime = trt.Runtime(logger)
    engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        return None
    return Engine(runtime, engine, logger)
