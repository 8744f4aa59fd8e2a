"""``backend=tensorrt`` configuration: the ``trt.`` node, value rules, version and device gating, clear refusals."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from blockbench.backends import parse_settings
from blockbench.backends.tensorrt import TensorRTBackend
from blockbench.backends.tensorrt.options import BuildOptions, check_device, onnx_dtype
from blockbench.backends.tensorrt.settings import BUILD_FIELDS, RUN_FIELDS, TensorRTSettings, validate_settings
from blockbench.backends.tensorrt.versions import FEATURES, TrtVersion, check_release, check_settings, supports
from blockbench.config import validate_core
from blockbench.errors import BackendUnavailableError, ConfigError
from blockbench.pipeline import plan_job

V10_7, V10_16, V11_4 = TrtVersion.parse("10.7.0.post1"), TrtVersion.parse("10.16.1.11"), TrtVersion.parse("11.4.0.106")


def test_the_briefs_overrides_compose_into_typed_settings(compose_cfg) -> None:
    cfg = compose_cfg(
        "backend=tensorrt", "trt.builder_optimization_level=5", "hardware.device=cuda:1", "trt.workspace_gb=4"
    )
    assert cfg.backend.name == "tensorrt" and cfg.hardware.device == "cuda:1"
    validate_core(cfg)  # resolves backend.trt -> the trt node
    cls, settings = parse_settings(cfg.backend)
    assert cls is TensorRTBackend
    assert settings.trt == TensorRTSettings(builder_optimization_level=5, workspace_gb=4.0)


def test_yaml_defaults_equal_the_schema_defaults(compose_cfg) -> None:
    cfg = compose_cfg("backend=tensorrt")
    assert OmegaConf.to_object(cfg.trt) == TensorRTSettings()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["backend=tensorrt", "trt.workspce_gb=4"], "workspce_gb"),  # typo
        (["backend=tensorrt", "trt.builder_optimization_level=high"], "builder_optimization_level"),  # type
        (["trt.workspace_gb=4"], "trt.workspace_gb"),  # trt.* without backend=tensorrt
        (["backend=tensorrt", "backend.workspace_gb=4"], "backend.workspace_gb"),  # one spelling: trt.*
        (["backend=tensorrt", "backend.trt.workspace_gb=4"], "backend.trt.workspace_gb"),
    ],
)
def test_composition_refuses_typos_and_second_spellings(compose_cfg, overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(*overrides)
    assert fragment in str(info.value) + str(info.value.__cause__)


def test_other_backends_have_no_trt_node(compose_cfg) -> None:
    assert compose_cfg("backend=torch").trt is None


def test_build_and_run_fields_cover_every_setting_once() -> None:
    names = [f.name for f in fields(TensorRTSettings)]
    assert sorted([*BUILD_FIELDS, *RUN_FIELDS]) == sorted(names)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"typing": "loose"}, "trt.typing='loose' is not allowed; choose one of: strong, weak"),
        ({"builder_optimization_level": 6}, "trt.builder_optimization_level=6"),
        ({"workspace_gb": 0.0}, "trt.workspace_gb=0.0"),
        ({"avg_timing_iterations": 0}, "trt.avg_timing_iterations=0"),
        ({"max_aux_streams": -1}, "trt.max_aux_streams=-1"),
        ({"tiling_optimization_level": "max"}, "none, fast, moderate, full"),
        ({"hardware_compatibility_level": "any"}, "trt.hardware_compatibility_level='any'"),
        ({"profiling_verbosity": "verbose"}, "detailed, layer_names_only, none"),
        ({"log_level": "debug"}, "error, warning, info, verbose"),
    ],
)
def test_value_rules_name_the_trt_key(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings(replace(TensorRTSettings(), **change))
    assert fragment in str(info.value)


def test_versions_parse_the_forms_wheels_use() -> None:
    assert (V10_7.major, V10_7.minor, V10_7.patch, str(V10_7)) == (10, 7, 0, "10.7.0.post1")
    assert TrtVersion.parse("10.0.1").release == (10, 0)
    with pytest.raises(ValueError):
        TrtVersion.parse("ten")


@pytest.mark.parametrize(
    ("feature", "absent_in", "present_in"),
    [
        ("weak_typing", "11.0.0.114", "10.16.1.11"),
        ("tiling_optimization", "10.7.0", "10.8.0.43"),
        ("same_compute_capability", "10.8.0.43", "10.9.0.34"),
    ],
)
def test_feature_boundaries(feature: str, absent_in: str, present_in: str) -> None:
    assert not supports(TrtVersion.parse(absent_in), feature)
    assert supports(TrtVersion.parse(present_in), feature)


@pytest.mark.parametrize(
    ("change", "version", "fragment"),
    [
        ({"typing": "weak"}, V11_4, "trt.typing=weak needs TensorRT < 11.0; installed: TensorRT 11.4.0.106"),
        ({"tiling_optimization_level": "fast"}, V10_7, "needs TensorRT >= 10.8; installed: TensorRT 10.7.0.post1"),
        ({"hardware_compatibility_level": "same_compute_capability"}, V10_7, "needs TensorRT >= 10.9"),
    ],
)
def test_a_setting_the_release_lacks_names_the_release(
    change: dict[str, object], version: TrtVersion, fragment: str
) -> None:
    settings = replace(TensorRTSettings(), **change)
    with pytest.raises(ConfigError) as info:
        check_settings(settings, version)
    assert fragment in str(info.value)
    check_settings(settings, V10_16)  # the newest 10.x has all three


def test_weak_typing_refusal_says_what_to_do_instead() -> None:
    with pytest.raises(ConfigError) as info:
        check_settings(TensorRTSettings(typing="weak"), V11_4)
    assert "use trt.typing=strong" in str(info.value) and FEATURES["weak_typing"].advice in str(info.value)


def test_releases_before_10_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        check_release(TrtVersion.parse("8.6.1"))
    assert "needs TensorRT >= 10.0" in str(info.value) and "installed: TensorRT 8.6.1" in str(info.value)


@pytest.mark.parametrize(
    ("precision", "typing", "strongly_typed", "weak_precision", "tf32", "graph"),
    [
        ("fp32", "strong", True, None, False, torch.float32),
        ("tf32", "strong", True, None, True, torch.float32),
        ("fp16", "strong", True, None, True, torch.float16),
        ("bf16", "strong", True, None, True, torch.bfloat16),
        ("fp16", "weak", False, "fp16", True, torch.float32),
        ("bf16", "weak", False, "bf16", True, torch.float32),
        ("fp32", "weak", False, None, False, torch.float32),
    ],
)
def test_precision_and_typing_to_builder_options(
    precision: str, typing: str, strongly_typed: bool, weak_precision: str | None, tf32: bool, graph: torch.dtype
) -> None:
    settings = TensorRTSettings(typing=typing)
    options = BuildOptions.resolve(settings, precision)
    assert (options.strongly_typed, options.weak_precision, options.tf32) == (strongly_typed, weak_precision, tf32)
    run_dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    assert onnx_dtype(settings, run_dtype) == graph


def test_workspace_is_passed_in_bytes() -> None:
    assert BuildOptions.resolve(TensorRTSettings(workspace_gb=1.5), "fp32").workspace_bytes == 3 * 2**29
    assert BuildOptions.resolve(TensorRTSettings(), "fp32").workspace_bytes is None


@pytest.mark.parametrize(
    ("precision", "level", "fragment"),
    [("bf16", "none", "precision=bf16"), ("fp16", "ampere_plus", "ampere_plus needs an Ampere")],
)
def test_device_limits(precision: str, level: str, fragment: str) -> None:
    settings = TensorRTSettings(hardware_compatibility_level=level)
    with pytest.raises(ConfigError, match=fragment) as info:
        check_device(settings, precision, (7, 5), "Tesla T4")
    assert "Tesla T4 is sm_75" in str(info.value)
    check_device(settings, precision, (9, 0), "NVIDIA H100")


def test_tensorrt_on_this_cpu_job_fails_at_once_with_install_command(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("backend=tensorrt")
    OmegaConf.update(cfg, "work_dir", str(tmp_path / "never"))
    with pytest.raises(BackendUnavailableError) as info:
        plan_job(cfg)
    message = str(info.value)
    assert "needs a CUDA device and this job has hardware.device=cpu" in message
    assert 'pip install -e ".[tensorrt]"' in message and "Found: tensorrt:" in message and "torch:" in message
    assert not (tmp_path / "never").exists()


def test_a_bad_value_is_reported_before_availability(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=re.escape("trt.typing='loose'")):
        plan_job(compose_cfg("backend=tensorrt", "trt.typing=loose"))


def test_missing_tensorrt_names_the_import_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from blockbench.backends import tensorrt as package

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    monkeypatch.delattr(package, "bindings", raising=False)
    monkeypatch.delitem(sys.modules, "blockbench.backends.tensorrt.bindings", raising=False)
    with pytest.raises(BackendUnavailableError) as info:
        package._bindings()
    assert "import tensorrt failed" in str(info.value) and 'pip install -e ".[tensorrt]"' in str(info.value)
