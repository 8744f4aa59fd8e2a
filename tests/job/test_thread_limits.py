"""A thread count beyond the CPUs this process may use is refused before any work: one message, exit 2, no run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from blockbench.config import preflight
from blockbench.errors import ConfigError
from tests.helpers import TINY, run_main, store_runs


@pytest.mark.parametrize("key", ["hardware.cpu_threads", "backend.intra_op_threads", "backend.inter_op_threads"])
def test_more_threads_than_usable_cpus_are_refused_naming_the_limit(
    compose_cfg: Callable[..., DictConfig], key: str
) -> None:
    limit = preflight.usable_cpus()
    extra = ["backend.execution_mode=parallel"] if key == "backend.inter_op_threads" else []
    with pytest.raises(ConfigError) as refused:
        preflight.check_job(compose_cfg(f"{key}={limit + 1}", *extra))
    assert str(refused.value) == (
        f"{key}={limit + 1} is not allowed; this machine lets the process run on {limit} CPU(s): choose 0 "
        f"(the library's default) or 1..{limit}"
    )
    preflight.check_job(compose_cfg(f"{key}={limit}", *extra))  # every usable CPU is fine


def test_a_huge_cpu_thread_count_exits_2_and_leaves_no_run(tmp_path: Path) -> None:
    proc = run_main(*TINY, "hardware.cpu_threads=100000", tmp_path=tmp_path, timeout=300, forked=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert "hardware.cpu_threads=100000 is not allowed" in output and "Traceback" not in output
    assert store_runs(tmp_path / "mlflow.db") == []
