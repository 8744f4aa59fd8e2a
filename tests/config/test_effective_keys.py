"""Every config key either changes what a job runs or is refused: a key nothing reads would enter the config hash and
make a sweep over it repeat one measurement under several names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from blockbench.backends.base import JobContext
from blockbench.backends.onnxruntime.backend import OnnxRuntimeBackend
from blockbench.config.schema import typed_config
from blockbench.errors import ConfigError
from blockbench.recording import resume


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["backend.inter_op_threads=4"],
            "backend.inter_op_threads=4 is not allowed; ONNX Runtime ignores it with backend.execution_mode=sequential "
            "(choices: sequential, parallel)",
        ),
        (["benchmark.mode=end_to_end", "backend.io_binding=false"], "backend.io_binding=False is not allowed"),
        (["precision.calibration_samples=16"], "precision.calibration_samples=16 is not allowed; only a quantized"),
        (["benchmark.pinned_memory=false"], "benchmark.pinned_memory=False is not allowed; page-locked"),
        (["backend=torch", "export.opset=19"], "export.opset=19 is not allowed; backend=torch runs the PyTorch"),
        (["backend=torch", "backend.compile_mode=max-autotune"], "backend.compile_mode='max-autotune' is not allowed"),
        (["backend=torch", "backend.freezing=true"], "backend.freezing=True is not allowed; only backend.mode=compile"),
        (["backend=torch", "backend.mode=compile", "backend.compile_cuda_graph=false"], "backend.compile_cuda_graph"),
        (["backend=torch", "backend.cudnn_benchmark=false"], "backend.cudnn_benchmark=False is not allowed; cuDNN"),
        (["backend.prefer_nhwc=true"], "backend.prefer_nhwc=True is not allowed; only ONNX Runtime's CUDA provider"),
        (["backend.cudnn_conv_algo_search=heuristic"], "backend.cudnn_conv_algo_search='heuristic' is not allowed"),
        (["backend.cuda_graph=true"], "backend.cuda_graph=True is not allowed; only ONNX Runtime's CUDA provider"),
        (
            ["hardware.device=cuda", "backend.cuda_graph=true", "benchmark.mode=end_to_end"],
            "replays a graph only on inputs and outputs bound to fixed device buffers",
        ),
    ],
)
def test_a_key_this_job_would_not_read_is_refused(
    compose_cfg: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        typed_config(compose_cfg(*overrides))
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["backend.execution_mode=parallel", "backend.inter_op_threads=4"],
        ["precision=int8", "precision.calibration_samples=16"],
        ["backend.io_binding=false"],  # compute mode: runs session.run on host arrays instead of bound buffers
        ["backend=torch", "backend.mode=compile", "backend.freezing=true"],
    ],
)
def test_the_same_keys_where_a_job_reads_them_pass(
    compose_cfg: Callable[..., DictConfig], overrides: list[str]
) -> None:
    typed_config(compose_cfg(*overrides))


def test_parallel_execution_reaches_onnx_runtime_with_its_inter_op_threads(
    compose_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    import onnxruntime as ort

    config = typed_config(compose_cfg("backend.execution_mode=parallel", "backend.inter_op_threads=3"))
    ctx = JobContext(torch.device("cpu"), "fp32", 1, 64, tmp_path, tmp_path, cpu_threads=0)
    options = OnnxRuntimeBackend(config.backend, ctx)._session_options()
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.inter_op_num_threads == 3


def test_tensorrts_log_level_is_not_part_of_the_config_hash(compose_cfg: Callable[..., DictConfig]) -> None:
    """It changes what TensorRT prints, not what is built or timed."""
    device = torch.device("cpu")
    quiet, chatty = (compose_cfg("backend=tensorrt", f"backend.log_level={level}") for level in ("warning", "verbose"))
    hashes = {resume.config_hash(resume.fingerprint(cfg, device)) for cfg in (quiet, chatty)}
    assert len(hashes) == 1


def test_the_cuda_provider_gets_the_conv_and_graph_settings_as_provider_options(tmp_path) -> None:
    import torch

    from blockbench.backends.base import JobContext
    from blockbench.backends.onnxruntime.backend import CUDA_EP, OnnxRuntimeBackend
    from blockbench.backends.onnxruntime.settings import OnnxRuntimeSettings

    settings = OnnxRuntimeSettings(cuda_graph=True, cudnn_conv_algo_search="heuristic", prefer_nhwc=True)
    ctx = JobContext(torch.device("cuda", 1), "fp16", 1, 64, tmp_path, tmp_path, 0)
    ((provider, options),) = OnnxRuntimeBackend(settings, ctx)._provider_options([CUDA_EP])
    assert provider == CUDA_EP and options["device_id"] == "1"
    assert options["enable_cuda_graph"] == "1" and options["cudnn_conv_algo_search"] == "HEURISTIC"
    assert options["prefer_nhwc"] == "1" and options["cudnn_conv_use_max_workspace"] == "1"
