"""``backend=tensorrt`` configuration: ``backend.*`` knobs, both libraries, value rules, version and device gating."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from blockbench.backends.registry import backend_class
from blockbench.backends.tensorrt.backend import TensorRTBackend
from blockbench.backends.tensorrt.options import BuildOptions, check_device, onnx_dtype
from blockbench.backends.tensorrt.settings import BUILD_FIELDS, RUN_FIELDS, TensorRTSettings, validate_settings
from blockbench.backends.tensorrt.versions import FEATURES, TrtVersion, check_release, check_settings, supports
from blockbench.config.schema import typed_config
from blockbench.errors import BackendUnavailableError, ConfigError
from blockbench.job.plan import plan_job

V10_7, V10_16, V11_4 = TrtVersion.parse("10.7.0.post1"), TrtVersion.parse("10.16.1.11"), TrtVersion.parse("11.4.0.106")
RTX_1_7 = TrtVersion.parse("1.7.1.116", "tensorrt_rtx")
RTX = TensorRTSettings(library="tensorrt_rtx")


def test_the_briefs_overrides_compose_into_typed_settings(compose_cfg) -> None:
    cfg = compose_cfg(
        "backend=tensorrt", "backend.builder_optimization_level=5", "hardware.device=cuda:1", "backend.workspace_gb=4"
    )
    assert cfg.backend.name == "tensorrt" and cfg.hardware.device == "cuda:1"
    settings = typed_config(cfg).backend
    assert backend_class(settings.name) is TensorRTBackend
    assert settings == TensorRTSettings(builder_optimization_level=5, workspace_gb=4.0)


def test_the_rtx_knobs_compose(compose_cfg) -> None:
    cfg = compose_cfg("backend=tensorrt", "backend.library=tensorrt_rtx", "backend.compute_capabilities=[8.6,'12.0']")
    settings = typed_config(cfg).backend
    assert settings.library == "tensorrt_rtx" and settings.compute_capabilities == ["8.6", "12.0"]
    assert settings.uses_runtime_cache and not TensorRTSettings().uses_runtime_cache


def test_yaml_defaults_equal_the_schema_defaults(compose_cfg) -> None:
    cfg = compose_cfg("backend=tensorrt")
    assert OmegaConf.to_object(cfg.backend) == TensorRTSettings()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["backend=tensorrt", "backend.workspce_gb=4"], "workspce_gb"),  # typo
        (["backend=tensorrt", "backend.builder_optimization_level=high"], "builder_optimization_level"),  # type
        (["trt.workspace_gb=4"], "trt"),  # the old top-level node is gone
        (["backend=tensorrt", "trt.workspace_gb=4"], "trt"),
        (["backend.workspace_gb=4"], "backend.workspace_gb"),  # another backend has no such knob
    ],
)
def test_composition_refuses_typos_and_foreign_keys(compose_cfg, overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(*overrides)
    assert fragment in str(info.value) + str(info.value.__cause__)


def test_one_sweep_spans_backends_with_tensorrt_knobs_set_per_job(compose_cfg) -> None:
    """Knobs under backend.* travel with the backend choice, so a multi-backend sweep composes every job."""
    for backend in ("onnxruntime", "torch"):
        assert "library" not in compose_cfg(f"backend={backend}").backend
    assert compose_cfg("backend=tensorrt", "backend.library=tensorrt_rtx").backend.library == "tensorrt_rtx"
    assert "trt" not in compose_cfg("backend=tensorrt")


def test_build_and_run_fields_cover_every_setting_once() -> None:
    names = [f.name for f in fields(TensorRTSettings)]
    assert sorted([*BUILD_FIELDS, *RUN_FIELDS]) == sorted(names)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"library": "tensorrt_llm"},
            "backend.library='tensorrt_llm' is not allowed; choose one of: tensorrt, tensorrt_rtx",
        ),
        ({"typing": "loose"}, "backend.typing='loose' is not allowed; choose one of: strong, weak"),
        ({"builder_optimization_level": 6}, "backend.builder_optimization_level=6"),
        ({"workspace_gb": 0.0}, "backend.workspace_gb=0.0"),
        ({"avg_timing_iterations": 0}, "backend.avg_timing_iterations=0"),
        ({"max_aux_streams": -1}, "backend.max_aux_streams=-1"),
        ({"tiling_optimization_level": "max"}, "none, fast, moderate, full"),
        ({"hardware_compatibility_level": "any"}, "backend.hardware_compatibility_level='any'"),
        ({"compute_capabilities": ["sm86"]}, "backend.compute_capabilities=['sm86'] is not allowed"),
        ({"compute_capabilities": ["8.6", "8.6"]}, "give distinct capabilities"),
        ({"profiling_verbosity": "verbose"}, "detailed, layer_names_only, none"),
        ({"log_level": "debug"}, "error, warning, info, verbose"),
    ],
)
def test_value_rules_name_the_backend_key(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings(replace(TensorRTSettings(), **change))
    assert fragment in str(info.value)


def test_versions_parse_the_forms_wheels_use() -> None:
    assert (V10_7.major, V10_7.minor, V10_7.patch, str(V10_7)) == (10, 7, 0, "10.7.0.post1")
    assert (RTX_1_7.library, RTX_1_7.label) == ("tensorrt_rtx", "TensorRT-RTX 1.7.1.116")
    assert V11_4.label == "TensorRT 11.4.0.106"
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
    ("feature", "rtx", "standard"),
    [
        ("weak_typing", False, False),
        ("hardware_compatibility", False, True),
        ("tiling_optimization", True, True),
        ("compute_capabilities", True, False),
        ("runtime_cache", True, False),
    ],
)
def test_features_per_library(feature: str, rtx: bool, standard: bool) -> None:
    assert (supports(RTX_1_7, feature), supports(V11_4, feature)) == (rtx, standard)


@pytest.mark.parametrize(
    ("settings", "version", "fragment"),
    [
        (replace(RTX, typing="weak"), RTX_1_7, "backend.typing=weak needs TensorRT < 11.0; chosen: TensorRT-RTX 1.7"),
        (replace(RTX, hardware_compatibility_level="ampere_plus"), RTX_1_7, "chosen: TensorRT-RTX 1.7.1.116"),
        (TensorRTSettings(compute_capabilities=["8.6"]), V11_4, "needs TensorRT-RTX >= 1.7; chosen: TensorRT 11.4"),
        (TensorRTSettings(runtime_cache=True), V10_16, "backend.runtime_cache=true needs TensorRT-RTX >= 1.7"),
    ],
)
def test_a_knob_the_chosen_library_lacks_names_knob_and_library(
    settings: TensorRTSettings, version: TrtVersion, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_settings(settings, version)
    assert fragment in str(info.value) and f"backend.library={version.library}" in str(info.value)


def test_the_rtx_defaults_pass_its_checks() -> None:
    check_settings(RTX, RTX_1_7)
    check_settings(replace(RTX, compute_capabilities=["8.9"], runtime_cache=False, cuda_graph=True), RTX_1_7)


@pytest.mark.parametrize(
    ("change", "version", "fragment"),
    [
        ({"typing": "weak"}, V11_4, "backend.typing=weak needs TensorRT < 11.0; chosen: TensorRT 11.4.0.106"),
        (
            {"tiling_optimization_level": "fast"},
            V10_7,
            "needs TensorRT >= 10.8 or TensorRT-RTX >= 1.7; chosen: TensorRT 10.7.0.post1",
        ),
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
    assert "use backend.typing=strong" in str(info.value) and FEATURES["weak_typing"].advice in str(info.value)


def test_releases_before_10_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        check_release(TrtVersion.parse("8.6.1"))
    assert "needs TensorRT >= 10.0" in str(info.value) and "installed: TensorRT 8.6.1" in str(info.value)
    with pytest.raises(ConfigError, match=re.escape("needs TensorRT-RTX >= 1.7; installed: TensorRT-RTX 1.3.0")):
        check_release(TrtVersion.parse("1.3.0", "tensorrt_rtx"))


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
        check_device(settings, precision, (7, 5), "Tesla T4", None, "TensorRT 10.16.1.11")
    assert "Tesla T4 is sm_75" in str(info.value)
    check_device(settings, precision, (9, 0), "NVIDIA H100", None, "TensorRT 10.16.1.11")


RTX_RUNS_ON = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


def test_a_gpu_tensorrt_rtx_cannot_run_is_named_with_the_list_and_the_ways_out() -> None:
    with pytest.raises(ConfigError) as info:
        check_device(RTX, "fp16", (9, 0), "NVIDIA H200", RTX_RUNS_ON, "TensorRT-RTX 1.7.1.116")
    message = str(info.value)
    assert "NVIDIA H200 has compute capability 9.0" in message
    assert "TensorRT-RTX 1.7.1.116 runs on 7.5, 8.0, 8.6, 8.9, 12.0, 12.1" in message
    assert "backend.library=tensorrt" in message and "run.build_only=true" in message
    check_device(RTX, "fp16", (8, 6), "NVIDIA GeForce RTX 3090 Ti", RTX_RUNS_ON, "TensorRT-RTX 1.7.1.116")


def test_tensorrt_on_this_cpu_job_fails_at_once_with_install_command(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("backend=tensorrt")
    OmegaConf.update(cfg, "work_dir", str(tmp_path / "never"))
    with pytest.raises(BackendUnavailableError) as info:
        plan_job(cfg)
    message = str(info.value)
    assert "needs a CUDA device and this job has hardware.device=cpu" in message
    assert 'pip install -e ".[tensorrt]"' in message and "Found: tensorrt:" in message and "torch:" in message
    assert not (tmp_path / "never").exists()


def test_tensorrt_rtx_on_a_cpu_job_is_build_only_with_the_reason(compose_cfg) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras")
    plan = plan_job(compose_cfg("backend=tensorrt", "backend.library=tensorrt_rtx", "precision=fp16"))
    assert plan.ctx.build_only and "TensorRT-RTX builds engines without a GPU" in plan.build_only_reason
    explicit = plan_job(compose_cfg("backend=onnxruntime", "run.build_only=true"))
    assert explicit.ctx.build_only and explicit.build_only_reason == "run.build_only=true"
    assert not plan_job(compose_cfg("backend=onnxruntime")).ctx.build_only


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, name: str, capability: tuple[int, int]) -> None:
    """torch's device queries answer as on a machine with this GPU (nothing else of CUDA is touched)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


def test_tensorrt_rtx_refuses_a_gpu_it_cannot_run_before_any_work(monkeypatch, compose_cfg, tmp_path) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is installed by the test extras")
    from blockbench.backends.base import JobContext

    _fake_gpu(monkeypatch, "NVIDIA H200", (9, 0))
    ctx = JobContext(torch.device("cuda", 0), "fp16", 1, 64, tmp_path / "never", tmp_path / "cache", 0)
    with pytest.raises(ConfigError) as info:
        TensorRTBackend.check(RTX, ctx)
    assert "compute capability 9.0" in str(info.value) and "8.6" in str(info.value)
    assert "run.build_only=true" in str(info.value)
    TensorRTBackend.check(RTX, replace(ctx, build_only=True))  # build-only: the GPU need not run it
    _fake_gpu(monkeypatch, "NVIDIA GeForce RTX 3090 Ti", (8, 6))
    TensorRTBackend.check(RTX, ctx)
    with pytest.raises(ConfigError, match=re.escape("leaves out this GPU's compute capability 8.6")):
        TensorRTBackend.check(replace(RTX, compute_capabilities=["8.9"]), ctx)
    with pytest.raises(ConfigError, match=re.escape("choose from: 7.5, 8.0, 8.6, 8.9, 12.0, 12.1")):
        TensorRTBackend.check(replace(RTX, compute_capabilities=["9.0"]), ctx)
    assert not (tmp_path / "never").exists()


def test_a_bad_value_is_reported_before_availability(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=re.escape("backend.typing='loose'")):
        plan_job(compose_cfg("backend=tensorrt", "backend.typing=loose"))


@pytest.mark.parametrize(
    ("name", "module", "install"),
    [("tensorrt", "tensorrt", ".[tensorrt]"), ("tensorrt_rtx", "tensorrt_rtx", ".[tensorrt-rtx]")],
)
def test_a_missing_library_names_the_import_failure(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, install: str
) -> None:
    import sys

    from blockbench.backends.tensorrt import backend as package
    from blockbench.backends.tensorrt import library

    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    monkeypatch.setattr(library, "_loaded", {})
    with pytest.raises(BackendUnavailableError) as info:
        package.bindings_for(name)
    assert f"import {module} failed" in str(info.value) and f'pip install -e "{install}"' in str(info.value)
