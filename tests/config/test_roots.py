"""Where the config groups are (the project's own ``conf/``) is kept apart from where results go (``BLOCKBENCH_ROOT``,
which a cluster sets to a shared results folder that holds no code)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from blockbench.config import argv as cli
from blockbench.config.paths import conf_dir, project_root
from tests.helpers import CONF, ROOT, TINY, main_py


def test_a_results_root_without_conf_moves_results_not_config_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOCKBENCH_ROOT", str(tmp_path))
    assert project_root() == tmp_path.resolve()
    assert conf_dir() == CONF and (conf_dir() / "config.yaml").is_file()
    assert cli.check_arguments(["main.py", "block=mobilenet", "backend.intra_op_threads=1"]) is None


def test_a_run_with_blockbench_root_set_to_an_empty_results_folder_puts_its_results_there(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    env = {**os.environ, "BLOCKBENCH_ROOT": str(results)}
    proc = main_py([sys.executable, str(ROOT / "main.py"), *TINY, "tracking.enabled=false"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert list((results / "outputs").glob("*/*/run.json"))  # the run, kept where results go
    assert (results / ".cache" / "blockbench").is_dir() and not (results / "conf").exists()
