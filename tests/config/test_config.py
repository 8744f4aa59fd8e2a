"""Config composition (every group option) and value validation."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from blockbench.backends.onnxruntime.settings import OnnxRuntimeSettings
from blockbench.backends.registry import backend_class
from blockbench.backends.torch.settings import TorchSettings
from blockbench.config.schema import typed_config
from blockbench.errors import ConfigError
from blockbench.job.plan import plan_job

GROUPS = {
    "block": ["vgg", "resnet", "mobilenet", "convnext"],
    "norm": ["bn", "ln", "ln_native"],
    "act": ["relu", "gelu"],
    "resolution": ["64", "256", "1024"],
    "precision": ["fp32", "tf32", "fp16", "bf16", "int8"],
    "backend": ["onnxruntime", "torch", "tensorrt", "tensorrt_rtx"],
}
CONF = Path(__file__).resolve().parents[2] / "conf"


def test_group_files_match_the_tested_options() -> None:
    for group, options in GROUPS.items():
        found = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert set(options) <= set(found), group


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes(compose_cfg, group: str, option: str) -> None:
    cfg = compose_cfg(f"{group}='{option}'" if group == "resolution" else f"{group}={option}")
    if group == "resolution":
        assert cfg.resolution.size == int(option)
    elif option == "tensorrt_rtx":  # a preset of the tensorrt backend
        assert (cfg.backend.name, cfg.backend.library) == ("tensorrt", "tensorrt_rtx")
    else:
        assert cfg[group].name == option


PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes_and_each_of_its_sweep_values_validates(compose_cfg, preset: str) -> None:
    base = f"+experiment={preset}"
    assert typed_config(compose_cfg(base)).tracking.experiment
    params = OmegaConf.load(CONF / "experiment" / f"{preset}.yaml").hydra.sweeper.params
    assert params, f"{preset} sweeps nothing"
    for key, values in params.items():
        for value in str(values).split(","):
            typed_config(compose_cfg(base, f"{key}={value}"))


def test_defaults_are_the_paper_baseline(compose_cfg) -> None:
    cfg = compose_cfg()
    assert (cfg.block.name, cfg.norm.name, cfg.act.name, cfg.resolution.size, cfg.precision.name) == (
        "vgg",
        "bn",
        "relu",
        64,
        "fp32",
    )
    assert cfg.backend.name == "onnxruntime" and cfg.hardware.device == "cpu"
    assert list(cfg.model.channels) == [64, 128, 256, 512, 1024]
    assert cfg.tracking.uri.startswith("sqlite:////") and cfg.tracking.uri.endswith("/mlflow.db")


@pytest.mark.parametrize(("block", "expected"), [("vgg", 4), ("resnet", 4), ("mobilenet", 8), ("convnext", 8)])
def test_blocks_per_stage_follows_the_block_unless_overridden(compose_cfg, block: str, expected: int) -> None:
    assert compose_cfg(f"block={block}").model.blocks_per_stage == expected
    assert compose_cfg(f"block={block}", "model.blocks_per_stage=2").model.blocks_per_stage == 2


def test_all_combinations_validate(compose_cfg) -> None:
    for block, norm, act in itertools.product(GROUPS["block"], GROUPS["norm"], GROUPS["act"]):
        typed_config(compose_cfg(f"block={block}", f"norm={norm}", f"act={act}", "resolution.size=512"))


def test_backend_settings_are_typed(compose_cfg) -> None:
    settings = typed_config(compose_cfg("backend=onnxruntime", "backend.intra_op_threads=2")).backend
    assert backend_class(settings.name).name == "onnxruntime" and settings.intra_op_threads == 2
    assert isinstance(settings, OnnxRuntimeSettings)
    settings = typed_config(compose_cfg("backend=torch", "backend.mode=compile")).backend
    assert backend_class(settings.name).name == "torch" and settings.mode == "compile"
    assert isinstance(settings, TorchSettings)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("backend.intra_op_thread=2", "intra_op_thread"),
        ("benchmark.min_iters=many", "min_iters"),
        ("block=foo", "Available options in 'block'"),
    ],
)
def test_composition_rejects_typos_and_types(compose_cfg, override: str, fragment: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(override)
    assert fragment in str(info.value) + str(info.value.__cause__)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["resolution.size=100"], "resolution.size=100"),
        (["resolution.size=0"], "multiple of 32"),
        (["model.channels=[8,8]"], "model.channels"),
        (["benchmark.min_iters=0"], "benchmark.min_iters=0"),
        (["benchmark.max_s=0.5", "benchmark.min_s=1"], "benchmark.max_s"),
        (["benchmark.mode=latency"], "compute, end_to_end"),
        (["complexity.counter=fvcore"], "thop, ptflops"),
        (["export.opset=13"], "export.opset=13"),
    ],
)
def test_value_rules_name_key_value_and_choices(compose_cfg, overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=r".") as info:
        typed_config(compose_cfg(*overrides))
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["precision=fp16"], "precision=fp16 is not supported by backend=onnxruntime"),
        (["precision=tf32", "backend=torch"], "needs a CUDA device"),
        (["backend=torch", "backend.mode=cuda_graph"], "cuda_graph needs a CUDA device"),
        (["backend=torch", "backend.mode=jit"], "backend.mode='jit'"),
        (["backend.providers=[FooExecutionProvider]"], "FooExecutionProvider"),
        (["backend.providers=[CUDAExecutionProvider]"], "CUDAExecutionProvider"),
        (["backend.graph_optimization_level=max"], "graph_optimization_level"),
        (["hardware.device=tpu"], "hardware.device='tpu'"),
        (["++backend.intra_op_thread=2"], "backend.intra_op_thread: no such setting of backend=onnxruntime"),
        (["hardware.device=cuda:99"], "hardware.device='cuda:99'"),
    ],
)
def test_impossible_jobs_are_refused_before_work(compose_cfg, overrides: list[str], fragment: str) -> None:
    cfg = compose_cfg(*overrides)
    OmegaConf.update(cfg, "work_dir", "/nonexistent-should-not-be-created")
    with pytest.raises(ConfigError) as info:
        plan_job(cfg)
    assert fragment in str(info.value)
    assert not Path("/nonexistent-should-not-be-created").exists()


def test_numeric_resolution_choices_are_quoted_for_hydra() -> None:
    from blockbench.config.argv import quote_numeric_group_choices

    assert quote_numeric_group_choices(["main.py", "-m", "resolution=64,256", "resolution.size=512", "block=vgg"]) == [
        "main.py",
        "-m",
        "resolution='64','256'",
        "resolution.size=512",
        "block=vgg",
    ]
