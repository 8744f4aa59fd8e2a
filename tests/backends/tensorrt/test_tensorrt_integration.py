"""Real TensorRT on a real GPU: tiny network built, serialized, cached, run, checked against PyTorch.

Runs for each library that imports and can run on this machine's GPU (standard TensorRT; TensorRT-RTX on compute
capability 7.5, 8.x or 12.x) and skips, with the reason, otherwise; on a machine with TensorRT and such a GPU run
them unchanged with ``python -m pytest -m gpu``. What needs no GPU is tested for real in
``tests/backends/tensorrt/test_tensorrt_rtx_builds.py``.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from blockbench.axes.precisions import TOLERANCE as PARITY_TOLERANCE
from blockbench.backends.tensorrt.cache import PLAN_FILE
from blockbench.backends.tensorrt.library import LIBRARIES, load_bindings
from blockbench.errors import ConfigError
from blockbench.job.plan import plan_job
from blockbench.job.run import JobResult, run_job
from blockbench.measure import metric_names as names
from tests.helpers import TINY

pytestmark = [pytest.mark.gpu, pytest.mark.tensorrt]


def _usable(library: str) -> str | None:
    """Why ``library`` cannot be tested for real here, or None."""
    try:
        importlib.import_module(LIBRARIES[library].module)
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but its libraries are not
        return f"import {LIBRARIES[library].module} failed ({exc})"
    if not torch.cuda.is_available():
        return "needs a CUDA device; torch sees none"
    if LIBRARIES[library].builds_without_gpu:
        major, minor = torch.cuda.get_device_capability()
        runs_on = load_bindings(library).compute_capabilities()
        if f"{major}.{minor}" not in runs_on:
            return f"{LIBRARIES[library].label} does not run on compute capability {major}.{minor}"
    return None


@pytest.fixture(params=list(LIBRARIES))
def library(request: pytest.FixtureRequest) -> str:
    reason = _usable(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def base(library: str) -> list[str]:
    return [*TINY, "backend=tensorrt", f"backend.library={library}", "hardware.device=cuda", "tracking.enabled=false"]


def run(compose_cfg, library: str, *overrides: str) -> tuple[JobResult, DictConfig]:
    cfg = compose_cfg(*base(library), *overrides)
    return run_job(cfg), cfg


def engines(cfg: DictConfig) -> list[Path]:
    return sorted((Path(cfg.cache_dir) / "tensorrt" / "engines").glob(f"*/{PLAN_FILE}"))


def major(library: str) -> int:
    return int(importlib.import_module(LIBRARIES[library].module).__version__.split(".")[0])


def test_build_run_parity_then_cache_hit(compose_cfg, library: str) -> None:
    first, cfg = run(compose_cfg, library, "precision=fp32")
    module = importlib.import_module(LIBRARIES[library].module)
    assert first.tags["engine_cache"] == "miss" and first.tags["tensorrt_version"] == module.__version__
    assert first.tags["tensorrt_library"] == library and "build_only" not in first.tags
    assert first.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE["fp32"]
    assert first.metrics[names.LATENCY_MEDIAN] > 0 and first.metrics[names.BUILDER_S] > 0
    assert first.metrics[names.ENGINE_LAYERS] > 0 and first.metrics[names.NETWORK_LAYERS] > 0
    assert len(engines(cfg)) == 1 and (Path(cfg.work_dir) / "engine_layers.json").stat().st_size > 0
    second, _ = run(compose_cfg, library, "precision=fp32")
    assert second.tags["engine_cache"] == "hit" and names.BUILDER_S not in second.metrics
    assert second.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE["fp32"]


def test_a_corrupt_cached_engine_is_rebuilt(compose_cfg, library: str) -> None:
    _, cfg = run(compose_cfg, library, "precision=tf32")
    (plan,) = engines(cfg)
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))
    again, _ = run(compose_cfg, library, "precision=tf32")
    assert again.tags["engine_cache"] == "miss"
    assert again.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE["tf32"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_strongly_typed_reduced_precision(compose_cfg, library: str, precision: str) -> None:
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 needs sm_80+")
    result, _ = run(compose_cfg, library, f"precision={precision}")
    assert result.tags["trt_typing"] == "strong"
    assert result.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE[precision]


def test_weak_typing_where_the_release_has_it(compose_cfg, library: str) -> None:
    if library == "tensorrt" and major(library) < 11:
        result, _ = run(compose_cfg, library, "precision=fp16", "backend.typing=weak")
        assert result.tags["trt_typing"] == "weak"
        assert result.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE["fp16"]
        return
    with pytest.raises(ConfigError, match=re.escape("backend.typing=weak needs TensorRT < 11.0")):
        plan_job(compose_cfg(*base(library), "precision=fp16", "backend.typing=weak"))


@pytest.mark.parametrize("mode", ["compute", "end_to_end"])
def test_cuda_graph_replay(compose_cfg, library: str, mode: str) -> None:
    result, _ = run(compose_cfg, library, "precision=fp16", "backend.cuda_graph=true", f"benchmark.mode={mode}")
    assert result.tags["cuda_graph"] == "on"
    expected = "library" if LIBRARIES[library].builds_without_gpu else "torch_capture"
    assert result.tags["cuda_graph_mechanism"] == expected
    assert result.metrics[names.PARITY_REL_L2] <= PARITY_TOLERANCE["fp16"]
    assert result.tags["bound_by"] and result.metrics[names.ENQUEUE_MEDIAN] > 0
    split = [names.H2D_MEDIAN, names.COMPUTE_MEDIAN, names.D2H_MEDIAN]
    if mode == "end_to_end":
        assert result.tags["end_to_end_split"] == "h2d/compute/d2h"
        parts = sum(result.metrics[name] for name in split)
        assert parts == pytest.approx(result.metrics[names.LATENCY_MEDIAN], rel=0.2)  # medians of parts, roughly
    else:
        assert not set(split) & set(result.metrics)


def test_tensorrt_rtx_keeps_its_runtime_cache(compose_cfg) -> None:
    reason = _usable("tensorrt_rtx")
    if reason:
        pytest.skip(reason)
    first, cfg = run(compose_cfg, "tensorrt_rtx", "precision=fp16")
    assert first.tags["runtime_cache"] == "miss"
    saved = list((Path(cfg.cache_dir) / "tensorrt" / "runtime").glob("*.cache"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    second, _ = run(compose_cfg, "tensorrt_rtx", "precision=fp16")
    assert second.tags["runtime_cache"] == "hit"


def test_per_layer_profile_artifact(compose_cfg, library: str) -> None:
    result, cfg = run(
        compose_cfg, library, "precision=fp16", "backend.layer_profile=true", "backend.engine_cache=false"
    )
    assert result.tags["engine_cache"] == "off"
    report = json.loads((Path(cfg.work_dir) / "layer_profile.json").read_text())
    assert report["layers"] and report["sum_ms"] > 0
