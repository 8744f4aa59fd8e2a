"""``backend.mode=aoti`` end to end on the CPU: the network exported, AOT-compiled by inductor into a ``.pt2``
package (the torch world's engine file), loaded back, timed and checked against PyTorch FP32."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from blockbench.axes.precisions import TOLERANCE
from blockbench.job.run import run_job
from blockbench.measure import metric_names as names
from blockbench.recording.layout import RUN_FILE
from tests.helpers import TINY

# AOTInductor compiles the generated C++ with the compiler inductor's cpp.cxx names: $CXX, else g++ on Linux.
CXX = os.environ.get("CXX", "g++")

pytestmark = [
    pytest.mark.slow,  # about 30 s: inductor's C++ compile of even a one-layer network
    pytest.mark.skipif(shutil.which(CXX) is None, reason=f"AOTInductor compiles C++ with {CXX}, not found on PATH"),
]


def test_aoti_package_is_built_logged_timed_and_matches_pytorch(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, "backend=torch", "backend.mode=aoti", "tracking.enabled=false")
    result = run_job(cfg)
    work = Path(cfg.work_dir)
    package = work / "model.pt2"
    assert result.engine_files == [package] and zipfile.is_zipfile(package)
    assert result.tags["torch_mode"] == "aoti" and result.tags["cuda_graph"] == "false"
    assert result.tags["timer"] == "host_clock" and "compile_cache" in result.tags
    assert result.tags["parity"] == "pass" and result.metrics[names.PARITY_REL_L2] <= TOLERANCE["fp32"]
    assert result.metrics[names.LATENCY_MEDIAN] > 0 and result.metrics["iterations"] >= 5
    run = json.loads((work / RUN_FILE).read_text())
    assert run["status"] == "FINISHED" and run["engine_files"] == [str(package)]
    assert run["metrics"][names.LATENCY_MEDIAN] == result.metrics[names.LATENCY_MEDIAN]
    # the logged package stands alone: loaded in this process, it runs on an input of the job's shape
    runner = torch._inductor.aoti_load_package(str(package))
    with torch.no_grad():
        out = runner(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 10) and bool(torch.isfinite(out).all())
