"""A run records the hash of the code that ran, and the report checks it against the commit the run names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from blockbench.build import sources
from blockbench.measure import environment
from blockbench.report import provenance


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project tree with a commit: package sources, config groups and files neither (docs, data)."""
    root = tmp_path / "project"
    for name, text in {
        "src/blockbench/models/blocks.py": "BLOCK = 1\n",
        "src/blockbench/report/figures.py": "FIGURE = 1\n",
        "src/blockbench/data.txt": "not code\n",
        "conf/config.yaml": "seed: 0\n",
        "conf/backend/torch.yaml": "name: torch\n",
        "README.md": "# readme\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "c")
    return root


def _checkout_hash(root: Path) -> str:
    return sources.tree_sha256(sources.checkout_files(root / "src" / "blockbench", root / "conf"))


def test_a_commits_tree_hashes_like_the_checkout_it_names(repo: Path) -> None:
    commit = _git(repo, "rev-parse", "HEAD")
    assert sources.commit_sha256(commit, repo) == _checkout_hash(repo)
    (repo / "README.md").write_text("# edited docs\n")  # not code: the same code still runs
    assert sources.commit_sha256(commit, repo) == _checkout_hash(repo)
    (repo / "conf" / "config.yaml").write_text("seed: 1\n")
    assert sources.commit_sha256(commit, repo) != _checkout_hash(repo)
    assert sources.commit_sha256("0" * 40, repo) is None


def test_the_environment_record_and_the_run_tags_carry_the_source_hash() -> None:
    expected = sources.tree_sha256(sources.checkout_files())
    assert environment.environment_record(torch.device("cpu"), Path.cwd())["source_sha256"] == expected
    assert environment.source_tags() == {"source_sha256": expected}


def test_the_report_flags_runs_whose_code_is_not_their_named_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_repo = sources.commit_sha256
    monkeypatch.setattr(sources, "commit_sha256", lambda commit: in_repo(commit, repo))  # the test's repository
    provenance._commit_hash.cache_clear()
    commit = _git(repo, "rev-parse", "HEAD")
    ran = _checkout_hash(repo)
    frame = pd.DataFrame(
        {
            "git_commit": [commit, commit, "abc1234-dirty", "f" * 40, commit],
            "source_sha256": [ran, "0" * 64, ran, ran, None],
        }
    )
    states = [provenance.source_state(c, h) for c, h in zip(frame["git_commit"], frame["source_sha256"], strict=True)]
    assert states == [
        provenance.MATCHES,
        provenance.DIFFERS,  # e.g. BLOCKBENCH_GIT_COMMIT naming a clean commit for modified code
        provenance.DIRTY,
        provenance.NOT_CHECKABLE,
        provenance.NO_HASH,
    ]
    line = provenance.source_check(frame)
    assert line.startswith("1 run DOES NOT match its commit; 1 run modified checkout")
    assert f"named commits whose tree differs from the code that ran: {commit}" in line
    provenance._commit_hash.cache_clear()
