"""The command-line checks refuse what Hydra would take wrongly, and nothing that the docs show as valid."""

from __future__ import annotations

import pytest

from blockbench.config.argv import check_arguments, quote_numeric_group_choices

VALID = [
    "",
    "--cfg job",
    "-m block=vgg,mobilenet norm=bn,ln",
    "-m resolution=64,256,1024",
    "resolution.size=96",
    "backend=onnxruntime backend.providers=[CUDAExecutionProvider] hardware.device=cuda",
    "backend=torch backend.mode=compile backend.channels_last=true backend.freezing=true",
    "-m backend=onnxruntime,torch,tensorrt,tensorrt_rtx",
    "-m backend=tensorrt backend.library=tensorrt,tensorrt_rtx backend.workspace_gb=4",
    "-m +experiment=paper_gpu backend.mode=cuda_graph hardware.device=cuda:1",  # the preset chooses torch
    "-m hydra/launcher=submitit_slurm hydra.launcher.partition=gpu backend=tensorrt precision=fp16",
    "model.channels=[8,8,16,16,32] model.blocks_per_stage=1 benchmark=sweep",
    "~tracking.run_name ++model.num_classes=5 seed=3",
]


@pytest.mark.parametrize("args", VALID)
def test_valid_commands_pass(args: str) -> None:
    assert check_arguments(quote_numeric_group_choices(["main.py", *args.split()])) is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ("-m +experiment=paper_gpu backend.moed=x", "no such setting of backend=torch; did you mean 'mode'?"),
        ("backend=tensorrt_rtx backend.compute_capability=[8.6]", "did you mean 'compute_capabilities'?"),
        ("-m backend=onnxruntime,torch backend.mode=compile", "backend.mode: no such setting of backend=onnxruntime"),
        ("-m norm=[bn,ln]", "python main.py -m norm=bn,ln"),
    ],
)
def test_refusals_name_the_key_and_the_way_out(args: str, fragment: str) -> None:
    problem = check_arguments(quote_numeric_group_choices(["main.py", *args.split()]))
    assert problem is not None and fragment in problem, problem
