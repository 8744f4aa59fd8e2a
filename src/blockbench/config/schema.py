"""Typed schema of a run's config, registered in Hydra's ConfigStore, with each field's allowed values.

The YAML tree in ``conf/`` supplies values; these dataclasses supply types, so a typo'd key or a value of the
wrong type fails at composition with the key's full name. The value rules (choices, ranges, multiples of 32) are
declared on the fields (:mod:`blockbench.config.rules`); :func:`typed_config` turns the composed config into these
objects and enforces them, before any work or MLflow run starts. ``backend`` is the chosen backend's own
settings class, typed the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from blockbench.axes.blocks import ACTIVATIONS, BLOCKS, NORMS
from blockbench.axes.precisions import NAMES as PRECISIONS
from blockbench.axes.precisions import PRECISIONS as PRECISION_RECORDS
from blockbench.backends.onnxruntime.settings import OnnxRuntimeSettings
from blockbench.backends.settings import BackendSettings
from blockbench.backends.tensorrt.settings import TensorRTSettings
from blockbench.backends.torch.settings import TorchSettings
from blockbench.config import rules
from blockbench.config.paths import project_root
from blockbench.config.rules import at_least, choice, refuse
from blockbench.errors import ConfigError
from blockbench.measure.settings import BenchmarkSettings

BENCHMARK_MODES = ("compute", "end_to_end")
COMPLEXITY_COUNTERS = ("thop", "ptflops")
TIMINGS = ("per_request", "pipelined", "both")
CACHE_STATES = ("warm", "flushed")
PARITY_POLICIES = ("warn", "fail")
TRIAL_BUILDS = ("fresh", "shared")
THROTTLE_POLICIES = ("tag", "discard")
KEEP_MODEL_FILES = ("all", "first_per_content", "none")


if not OmegaConf.has_resolver("bb"):
    OmegaConf.register_new_resolver("bb", lambda key: {"root": str(project_root())}[key])


@dataclass
class BlockConfig:
    name: str = choice(BLOCKS)
    default_blocks_per_stage: int = at_least(1)


@dataclass
class NormConfig:
    name: str = choice(NORMS)


@dataclass
class ActConfig:
    name: str = choice(ACTIVATIONS)


@dataclass
class ResolutionConfig:
    size: int = MISSING

    def check_rules(self, prefix: str) -> None:
        if self.size < 32 or self.size % 32:
            raise refuse(f"{prefix}size", self.size, "it must be a multiple of 32 and >= 32")


@dataclass
class PrecisionConfig:
    name: str = choice(PRECISIONS)
    # int8: calibration inputs drawn from the seed (other precisions ignore it)
    calibration_samples: int = at_least(1, 32)


@dataclass
class ModelConfig:
    channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1024])
    blocks_per_stage: int = at_least(1)
    num_classes: int = at_least(1, 10)

    def check_rules(self, prefix: str) -> None:
        if len(self.channels) != 5 or any(c < 1 for c in self.channels):
            raise refuse(f"{prefix}channels", list(self.channels), "it needs 5 positive widths (stem + 4 stages)")


@dataclass
class HardwareConfig:
    device: str = "cpu"  # cpu | cuda | cuda:N, resolved against this machine by hardware.resolve_device
    cpu_threads: int = at_least(0, 0)  # 0 = leave the library default (all cores)


@dataclass
class BenchmarkConfig(BenchmarkSettings):
    """``benchmark.*``: the harness's own settings (:class:`BenchmarkSettings`) plus what the job does around it."""

    warmup_iters: int = at_least(0, 10)
    warmup_s: float = at_least(0, 1.0)
    min_iters: int = at_least(1, 50)
    min_s: float = at_least(0, 3.0)
    max_s: float = 600.0
    batch_size: int = at_least(1, 1)
    progress: bool = True
    timing: str = choice(TIMINGS, "per_request")  # benchmark.py says what each measures
    cache: str = choice(CACHE_STATES, "warm")  # flushed: last-level cache flushed before each timed inference
    mode: str = choice(BENCHMARK_MODES, "compute")
    pinned_memory: bool = True
    # warn | fail: a run beyond its precision's tolerance keeps its latency either way
    parity: str = choice(PARITY_POLICIES, "warn")
    attribution: bool = False  # a profiled pass after timing: time per block and operator class (attribution.py)
    target_precision: float = 0.0  # > 0: stop once the median's 95 % interval is within ± this fraction
    trials: int = at_least(1, 1)  # independent trials: each a fresh worker process and a fresh engine build
    trial_builds: str = choice(TRIAL_BUILDS, "fresh")  # fresh: each trial's engine cache starts empty
    throttle: str = choice(THROTTLE_POLICIES, "tag")  # discard: drop the samples taken while the GPU throttled
    throttle_clock_fraction: float = 0.75  # an SM clock below this fraction of its maximum counts as throttled

    def check_rules(self, prefix: str) -> None:
        if self.max_s < self.min_s:
            raise refuse(f"{prefix}max_s", self.max_s, f"it must be >= {prefix}min_s ({self.min_s!r})")
        if not 0.0 <= self.target_precision < 1.0:
            raise refuse(
                f"{prefix}target_precision", self.target_precision, "it must be a fraction in [0, 1), e.g. 0.005"
            )
        if not 0.0 < self.throttle_clock_fraction <= 1.0:
            raise refuse(f"{prefix}throttle_clock_fraction", self.throttle_clock_fraction, "it must be in (0, 1]")


@dataclass
class ComplexityConfig:
    counter: str = choice(COMPLEXITY_COUNTERS, "thop")


@dataclass
class ExportConfig:
    opset: int = 18

    def check_rules(self, prefix: str) -> None:
        if self.opset < 18:
            raise refuse(f"{prefix}opset", self.opset, "the dynamo exporter needs >= 18")


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
    keep_model_files: str = choice(KEEP_MODEL_FILES, "first_per_content")
    large_file_mb: float = at_least(0, 16.0)

    def check_rules(self, prefix: str) -> None:
        if self.enabled and not str(self.experiment or "").strip():
            raise refuse(
                f"{prefix}experiment",
                self.experiment,
                "name the MLflow experiment, e.g. tracking.experiment=blockbench",
            )


@dataclass
class RunOptions:
    """How a sweep treats configs already measured and runs left RUNNING by dead processes (docs/reliability.md)."""

    force: bool = False  # run every config, even one the experiment already has a FINISHED run of
    heartbeat_s: float = at_least(0, 30.0, strict=True)  # how often a job's run records that its process is alive
    stale_after_s: float = 600.0  # a RUNNING run from another host silent this long is taken as dead
    # sweeps: build engines in this many parallel processes before timing jobs in turn
    prebuild_workers: int = at_least(0, 0)
    build_only: bool = False  # build and log each engine without running or timing it (automatic where it cannot run)
    # process: each job builds and measures in a fresh worker process (nothing of an earlier job carries over);
    # inline: in this process (debugging)
    isolation: str = choice(("process", "inline"), default="process")
    hang_margin_s: float = at_least(0, 120.0, strict=True)  # a worker silent in its benchmark stage this long past
    # its stopping rule's max_s is taken as hung, killed and its run ended FAILED

    def check_rules(self, prefix: str) -> None:
        if not self.stale_after_s >= 2 * self.heartbeat_s:
            raise refuse(
                f"{prefix}stale_after_s",
                self.stale_after_s,
                f"it must be >= 2 x {prefix}heartbeat_s ({2 * self.heartbeat_s!r}), or live runs on other hosts "
                "would be taken for dead",
            )


@dataclass
class RunConfig:
    """The whole composed config; ``backend`` holds the chosen backend's own settings class (a subclass)."""

    block: BlockConfig = MISSING
    norm: NormConfig = MISSING
    act: ActConfig = MISSING
    resolution: ResolutionConfig = MISSING
    precision: PrecisionConfig = MISSING
    backend: BackendSettings = MISSING
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

    def check_rules(self, prefix: str) -> None:
        """Settings that only some jobs read are refused where nothing would read them: they enter the config hash,
        so a sweep over one would repeat a measurement under several names. The backend's own such rules are its
        settings' ``check_run_rules(run)``."""
        if not PRECISION_RECORDS[self.precision.name].quantized and self.precision.calibration_samples != _default(
            PrecisionConfig, "calibration_samples"
        ):
            raise refuse(
                f"{prefix}precision.calibration_samples",
                self.precision.calibration_samples,
                f"only a quantized precision calibrates (int8); precision={self.precision.name} reads no calibration "
                "inputs, so leave it at its default",
            )
        if not self.benchmark.pinned_memory and not str(self.hardware.device).startswith("cuda"):
            raise refuse(
                f"{prefix}benchmark.pinned_memory",
                False,
                f"page-locked host buffers exist for CUDA copies only; hardware.device={self.hardware.device} "
                "copies nothing, so leave it true",
            )
        if self.benchmark.trials > 1 and self.run.isolation == "inline":
            raise refuse(
                f"{prefix}benchmark.trials",
                self.benchmark.trials,
                "each trial is a fresh worker process, and run.isolation=inline runs in this one (its state would "
                "carry from trial to trial); use run.isolation=process or benchmark.trials=1",
            )
        if self.benchmark.trial_builds != "fresh" and self.benchmark.trials == 1:
            raise refuse(
                f"{prefix}benchmark.trial_builds",
                self.benchmark.trial_builds,
                "it says how trials after the first build their engines, and benchmark.trials=1 has none",
            )
        if self.benchmark.throttle == "discard" and self.run.isolation == "inline":
            raise refuse(
                f"{prefix}benchmark.throttle",
                "discard",
                "the GPU is watched from the parent of a worker process, and run.isolation=inline has none; use "
                "run.isolation=process or benchmark.throttle=tag",
            )
        if self.benchmark.throttle == "discard" and not str(self.hardware.device).startswith("cuda"):
            raise refuse(
                f"{prefix}benchmark.throttle",
                "discard",
                f"throttling is observed through NVML on CUDA GPUs; hardware.device={self.hardware.device} is not one",
            )
        run_rules = getattr(self.backend, "check_run_rules", None)
        if run_rules is not None:
            run_rules(self)


def _default(schema_class: type, name: str) -> object:
    """The declared default of one field of a config dataclass."""
    return next(f.default for f in dataclasses.fields(schema_class) if f.name == name)


def register_configs() -> None:
    """Register the schemas ``conf/`` builds on: the run's and each backend's (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="blockbench_schema", node=RunConfig)
    store.store(group="backend", name="onnxruntime_schema", node=OnnxRuntimeSettings)
    store.store(group="backend", name="torch_schema", node=TorchSettings)
    store.store(group="backend", name="tensorrt_schema", node=TensorRTSettings)


register_configs()


def typed_config(cfg: DictConfig) -> RunConfig:
    """The composed config as typed objects, every declared value rule enforced (:mod:`blockbench.config.rules`).

    Raises :class:`ConfigError` naming the key, the value and what is allowed.
    """
    try:
        OmegaConf.resolve(cfg)
        typed = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config does not resolve: {exc}") from exc
    rules.check(typed)
    return typed  # type: ignore[return-value]
