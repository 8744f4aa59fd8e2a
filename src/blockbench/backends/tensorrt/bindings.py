"""The only module that touches TensorRT: parse, build, deserialize, named-tensor execution, inspect, profile.

Executed once per library by :func:`.library.load_bindings`, with ``trt`` bound to ``tensorrt`` or
``tensorrt_rtx`` (the same builder and runtime API). Kept thin and explicit for
``tests/backends/tensorrt/test_tensorrt_api_surface.py``: every ``trt.`` name, and every member of an object annotated
``trt.<Class>``, must exist in each committed API surface of either library or sit inside
``if supports(VERSION, "<feature>"):`` (see :mod:`.versions`). So objects from TensorRT are annotated, enum members
are spelled out (no ``getattr`` with strings) and every boolean result is checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blockbench.backends.tensorrt.diagnostics import (
    EngineBuildError,
    EngineRuntimeError,
    LayerTimes,
    OnnxParseError,
    ParserIssue,
    format_build_failure,
    format_parser_errors,
    format_runtime_failure,
    format_unknown_target,
)
from blockbench.backends.tensorrt.library import module_to_bind
from blockbench.backends.tensorrt.options import BuildOptions, BuiltPlan, RuntimeOptions
from blockbench.backends.tensorrt.tensors import TensorInfo
from blockbench.backends.tensorrt.versions import TrtVersion, feature_error, supports

log = logging.getLogger(__name__)

LIBRARY, trt = module_to_bind()
VERSION = TrtVersion.parse(trt.__version__, LIBRARY.name)

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
        self.warnings: list[str] = []

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        level = _SEVERITY.get(severity, logging.ERROR)
        if level >= logging.ERROR:
            self.errors.append(msg)
        elif level == logging.WARNING:
            self.warnings.append(msg)
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
    if supports(VERSION, "hardware_compatibility"):
        config.hardware_compatibility_level = _hardware_level(options.hardware_compatibility_level)
    elif options.hardware_compatibility_level != "none":
        raise feature_error(VERSION, "hardware_compatibility")
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
    if options.compute_capabilities:
        if supports(VERSION, "compute_capabilities"):
            targets = compute_capabilities()
            config.num_compute_capabilities = len(options.compute_capabilities)
            for index, capability in enumerate(options.compute_capabilities):
                if capability not in targets:
                    raise EngineBuildError(format_unknown_target(capability, VERSION.label, list(targets)))
                if not config.set_compute_capability(targets[capability], index):
                    raise EngineBuildError(f"{VERSION.label} refused compute capability {capability} as a target")
        else:
            raise feature_error(VERSION, "compute_capabilities")
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


def compute_capabilities() -> dict[str, Any]:
    """Compute capability ("8.6") -> the library's build target; empty where targets cannot be chosen.

    TensorRT-RTX compiles ahead of time for these targets and runs only on them, so this is also the list of
    GPUs its engines run on.
    """
    if supports(VERSION, "compute_capabilities"):
        return {
            "7.5": trt.ComputeCapability.SM75,
            "8.0": trt.ComputeCapability.SM80,
            "8.6": trt.ComputeCapability.SM86,
            "8.9": trt.ComputeCapability.SM89,
            "12.0": trt.ComputeCapability.SM120,
            "12.1": trt.ComputeCapability.SM121,
        }
    return {}


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
            log.warning("timing cache: the saved cache does not fit %s on this GPU; starting empty", VERSION.label)
        cache = config.create_timing_cache(b"")
        if not config.set_timing_cache(cache, False):
            raise EngineBuildError(f"{VERSION.label} refused an empty timing cache")
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


def build_plan(onnx_path: Path, options: BuildOptions, saved_cache: bytes | None, logger: Logger) -> BuiltPlan:
    """Parse ``onnx_path`` and build a serialized engine (no GPU needed where the library builds ahead of time)."""
    logged_before = len(logger.errors)  # report this build's errors, not an earlier rejected cache entry's
    warned_before = len(logger.warnings)
    builder: trt.Builder = trt.Builder(logger)
    network: trt.INetworkDefinition = builder.create_network(_network_flags(options))
    parser: trt.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        issues = [_parser_issue(parser.get_error(index)) for index in range(parser.num_errors)]
        raise OnnxParseError(format_parser_errors(onnx_path, issues, VERSION.label))
    config: trt.IBuilderConfig = builder.create_builder_config()
    configure(config, options)
    cache: trt.ITimingCache | None = _attach_timing_cache(config, saved_cache) if options.timing_cache else None
    progress = _Progress()
    config.progress_monitor = progress
    plan: trt.IHostMemory | None = builder.build_serialized_network(network, config)
    if progress.cancelled:
        raise KeyboardInterrupt
    if plan is None:
        raise EngineBuildError(format_build_failure(onnx_path, logger.errors[logged_before:], VERSION.label))
    return BuiltPlan(
        plan=bytes(plan),
        timing_cache=None if cache is None else bytes(cache.serialize()),
        network_layers=network.num_layers,
        warnings=tuple(dict.fromkeys(logger.warnings[warned_before:])),
    )


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

    def __init__(self, runtime: trt.Runtime, engine: trt.ICudaEngine, logger: Logger, options: RuntimeOptions) -> None:
        # TensorRT keeps raw pointers to the logger and runtime: both must outlive the engine and its context.
        self.logger = logger
        self.runtime: trt.Runtime = runtime
        self.engine: trt.ICudaEngine = engine
        self.builtin_cuda_graph = False
        self.runtime_cache_status = "off"
        self._runtime_cache: Any = None
        if supports(VERSION, "runtime_cache"):
            self.context: trt.IExecutionContext = engine.create_execution_context(self._runtime_config(options))
        else:
            self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineRuntimeError(format_runtime_failure("create_execution_context", logger.errors))
        self._execute = self.context.execute_async_v3
        self._profiler: _LayerProfiler | None = None

    def _runtime_config(self, options: RuntimeOptions) -> Any:
        """TensorRT-RTX: its own CUDA graphs and the cache of kernels it compiles just in time, for the context."""
        if supports(VERSION, "runtime_cache"):
            runtime_config: trt.IRuntimeConfig = self.engine.create_runtime_config()
            if options.cuda_graph:
                runtime_config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
                self.builtin_cuda_graph = True
            else:
                runtime_config.cuda_graph_strategy = trt.CudaGraphStrategy.DISABLED
            if options.runtime_cache is not None:
                kernels: trt.IRuntimeCache = runtime_config.create_runtime_cache()
                loaded = bool(options.runtime_cache) and kernels.deserialize(options.runtime_cache)
                if options.runtime_cache and not loaded:
                    log.warning(
                        "runtime cache: %s rejects the saved cache (other release or GPU); starting empty",
                        VERSION.label,
                    )
                if not runtime_config.set_runtime_cache(kernels):
                    raise EngineRuntimeError(format_runtime_failure("set_runtime_cache", self.logger.errors))
                self._runtime_cache = kernels
                self.runtime_cache_status = "hit" if loaded else "miss"
            return runtime_config
        raise feature_error(VERSION, "runtime_cache")

    def runtime_cache_bytes(self) -> bytes | None:
        """The runtime cache's contents (kernels compiled so far), to persist; None when no cache is in use."""
        if supports(VERSION, "runtime_cache"):
            kernels: trt.IRuntimeCache | None = self._runtime_cache
            return None if kernels is None else bytes(kernels.serialize())
        return None

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
        self._runtime_cache = None
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


def deserialize(plan: bytes, logger: Logger, options: RuntimeOptions | None = None) -> Engine | None:
    """The engine, or None when TensorRT rejects the plan (another version, another GPU, damaged bytes)."""
    runtime: trt.Runtime = trt.Runtime(logger)
    engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        return None
    return Engine(runtime, engine, logger, options or RuntimeOptions())
