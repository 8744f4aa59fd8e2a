"""Typed schema of a run's config, registered in Hydra's ConfigStore, plus the checks types cannot express.

The YAML tree in ``conf/`` supplies values; these dataclasses supply types, so a typo'd key or a value of the
wrong type fails at composition with the key's full name. :func:`validate` adds the value-level rules
(choices, ranges, multiples of 32) and backend-specific settings, before any work or MLflow run starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench.errors import ConfigError
from blockbench.models.blocks import ACTIVATIONS, BLOCKS, NORMS
from blockbench.precisions import NAMES as PRECISIONS

BENCHMARK_MODES = ("compute", "end_to_end")
COMPLEXITY_COUNTERS = ("thop", "ptflops")
TIMINGS = ("per_request", "pipelined", "both")
CACHE_STATES = ("warm", "flushed")
PARITY_POLICIES = ("warn", "fail")
KEEP_MODEL_FILES = ("all", "first_per_content", "none")


def project_root() -> Path:
    """Directory holding ``main.py`` and ``conf/`` (source checkout), else the working directory."""
    env = os.environ.get("BLOCKBENCH_ROOT")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "conf").is_dir() and (checkout / "main.py").is_file():
        return checkout
    return Path.cwd().resolve()


def default_tracking_uri() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"


if not OmegaConf.has_resolver("bb"):
    OmegaConf.register_new_resolver("bb", lambda key: {"root": str(project_root())}[key])


@dataclass
class BlockConfig:
    name: str = MISSING
    default_blocks_per_stage: int = MISSING


@dataclass
class NormConfig:
    name: str = MISSING


@dataclass
class ActConfig:
    name: str = MISSING


@dataclass
class ResolutionConfig:
    size: int = MISSING


@dataclass
class PrecisionConfig:
    name: str = MISSING
    calibration_samples: int = 32  # int8: calibration inputs drawn from the seed (other precisions ignore it)


@dataclass
class ModelConfig:
    channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1024])
    blocks_per_stage: int = MISSING
    num_classes: int = 10


@dataclass
class HardwareConfig:
    device: str = "cpu"
    cpu_threads: int = 0  # 0 = leave the library default (all cores)


@dataclass
class BenchmarkConfig:
    mode: str = "compute"
    batch_size: int = 1
    warmup_iters: int = 10
    warmup_s: float = 1.0
    min_iters: int = 50
    min_s: float = 3.0
    max_s: float = 600.0
    pinned_memory: bool = True
    parity: str = "warn"  # warn | fail: a run beyond its precision's tolerance keeps its latency either way
    progress: bool = True
    timing: str = "per_request"  # per_request | pipelined | both (benchmark.py says what each measures)
    cache: str = "warm"  # warm | flushed: last-level cache flushed before each timed inference
    attribution: bool = False  # a profiled pass after timing: time per block and operator class (attribution.py)


@dataclass
class ComplexityConfig:
    counter: str = "thop"


@dataclass
class ExportConfig:
    opset: int = 18


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = MISSING
    experiment: str = "blockbench"
    run_name: str | None = None
    log_onnx: bool = True
    log_engine: bool = True
    # ONNX and engine files of at least large_file_mb MiB: all (every run stores its copy), first_per_content (a
    # run whose bytes an earlier FINISHED run stored logs a reference to it instead), none (only SHA-256 tags)
    keep_model_files: str = "first_per_content"
    large_file_mb: float = 16.0


@dataclass
class RunOptions:
    """How a sweep treats configs already measured and runs left RUNNING by dead processes (docs/reliability.md)."""

    force: bool = False  # run every config, even one the experiment already has a FINISHED run of
    heartbeat_s: float = 30.0  # how often a job's run records that its process is alive
    stale_after_s: float = 600.0  # a RUNNING run from another host silent this long is taken as dead
    prebuild_workers: int = 0  # sweeps: build engines in this many parallel processes before timing jobs in turn
    build_only: bool = False  # build and log each engine without running or timing it (automatic where it cannot run)


@dataclass
class RunConfig:
    """The whole composed config; ``backend`` is typed per backend by :func:`validate`."""

    block: BlockConfig = MISSING
    norm: NormConfig = MISSING
    act: ActConfig = MISSING
    resolution: ResolutionConfig = MISSING
    precision: PrecisionConfig = MISSING
    backend: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    complexity: ComplexityConfig = field(default_factory=ComplexityConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    run: RunOptions = field(default_factory=RunOptions)
    seed: int = 0
    cache_dir: str = MISSING
    work_dir: str = MISSING


def register_configs() -> None:
    """Register the schemas ``conf/`` builds on: the run's and each backend's (idempotent)."""
    from blockbench.backends.onnxruntime.settings import OnnxRuntimeSettings
    from blockbench.backends.tensorrt.settings import TensorRTSettings
    from blockbench.backends.torch.settings import TorchSettings

    store = ConfigStore.instance()
    store.store(name="blockbench_schema", node=RunConfig)
    store.store(group="backend", name="onnxruntime_schema", node=OnnxRuntimeSettings)
    store.store(group="backend", name="torch_schema", node=TorchSettings)
    store.store(group="backend", name="tensorrt_schema", node=TensorRTSettings)


register_configs()


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(choices)}")


def _at_least(key: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ConfigError(f"{key}={value!r} is not allowed; it must be >= {minimum}")


def validate_core(cfg: DictConfig) -> None:
    """Check value-level rules the types cannot express; raise :class:`ConfigError` naming key and choices."""
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config does not resolve: {exc}") from exc
    _choice("block.name", cfg.block.name, BLOCKS)
    _choice("norm.name", cfg.norm.name, NORMS)
    _choice("act.name", cfg.act.name, ACTIVATIONS)
    _choice("precision.name", cfg.precision.name, PRECISIONS)
    _choice("benchmark.mode", cfg.benchmark.mode, BENCHMARK_MODES)
    _choice("benchmark.timing", cfg.benchmark.timing, TIMINGS)
    _choice("benchmark.cache", cfg.benchmark.cache, CACHE_STATES)
    _choice("benchmark.parity", cfg.benchmark.parity, PARITY_POLICIES)
    _choice("complexity.counter", cfg.complexity.counter, COMPLEXITY_COUNTERS)
    _choice("tracking.keep_model_files", cfg.tracking.keep_model_files, KEEP_MODEL_FILES)
    _at_least("tracking.large_file_mb", cfg.tracking.large_file_mb, 0)
    size = cfg.resolution.size
    if size < 32 or size % 32:
        raise ConfigError(f"resolution.size={size!r} is not allowed; it must be a multiple of 32 and >= 32")
    channels = list(cfg.model.channels)
    if len(channels) != 5 or any(c < 1 for c in channels):
        raise ConfigError(f"model.channels={channels} is not allowed; it needs 5 positive widths (stem + 4 stages)")
    _at_least("model.blocks_per_stage", cfg.model.blocks_per_stage, 1)
    _at_least("model.num_classes", cfg.model.num_classes, 1)
    _at_least("benchmark.batch_size", cfg.benchmark.batch_size, 1)
    _at_least("benchmark.warmup_iters", cfg.benchmark.warmup_iters, 0)
    _at_least("benchmark.warmup_s", cfg.benchmark.warmup_s, 0)
    _at_least("benchmark.min_iters", cfg.benchmark.min_iters, 1)
    _at_least("benchmark.min_s", cfg.benchmark.min_s, 0)
    if cfg.benchmark.max_s < cfg.benchmark.min_s:
        raise ConfigError(
            f"benchmark.max_s={cfg.benchmark.max_s!r} is not allowed; it must be >= benchmark.min_s "
            f"({cfg.benchmark.min_s!r})"
        )
    _at_least("hardware.cpu_threads", cfg.hardware.cpu_threads, 0)
    if cfg.tracking.enabled and not str(cfg.tracking.experiment or "").strip():
        raise ConfigError(
            f"tracking.experiment={cfg.tracking.experiment!r} is not allowed; name the MLflow experiment, e.g. "
            "tracking.experiment=blockbench"
        )
    _at_least("run.prebuild_workers", cfg.run.prebuild_workers, 0)
    _at_least("precision.calibration_samples", cfg.precision.calibration_samples, 1)
    if cfg.export.opset < 18:
        raise ConfigError(f"export.opset={cfg.export.opset!r} is not allowed; the dynamo exporter needs >= 18")
