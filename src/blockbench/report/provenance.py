"""Whether each run's code is the code its commit names: the run's recorded source hash against the commit's tree.

A run's ``git_commit`` tag may come from ``BLOCKBENCH_GIT_COMMIT`` (a copy without ``.git``), which nothing checks
when the run is made; its ``source_sha256`` tag is the hash of the code that actually ran
(:func:`blockbench.measure.environment.source_sha256`). Where the named commit exists in this checkout's repository, the
same hash of that commit's tree (:func:`blockbench.build.sources.commit_sha256`) says whether they agree.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import pandas as pd

from blockbench.build import sources

MATCHES, DIFFERS, DIRTY, NOT_CHECKABLE, NO_HASH = (
    "matches its commit",
    "DOES NOT match its commit",
    "modified checkout (commit -dirty)",
    "not checkable (commit not in this repository)",
    "no source hash recorded",
)


@lru_cache(maxsize=256)
def _commit_hash(commit: str) -> str | None:
    return sources.commit_sha256(commit)


def source_state(commit: object, source_hash: object) -> str:
    """One run's verdict: its source hash against the tree of the commit it names."""
    if not isinstance(source_hash, str) or not source_hash:
        return NO_HASH
    if not isinstance(commit, str) or not commit or commit == "unknown":
        return NOT_CHECKABLE
    if commit.endswith("-dirty"):
        return DIRTY
    expected = _commit_hash(commit)
    if expected is None:
        return NOT_CHECKABLE
    return MATCHES if expected == source_hash else DIFFERS


def source_check(frame: pd.DataFrame) -> str:
    """The report's line: how many runs' code matches their named commit, and which commits do not."""
    if frame.empty:
        return "no runs"
    hashes = frame["source_sha256"] if "source_sha256" in frame else pd.Series([None] * len(frame), index=frame.index)
    states = [source_state(c, h) for c, h in zip(frame["git_commit"], hashes, strict=True)]
    counts = Counter(states)
    order = (DIFFERS, DIRTY, MATCHES, NOT_CHECKABLE, NO_HASH)
    text = "; ".join(f"{counts[s]} {'run' if counts[s] == 1 else 'runs'} {s}" for s in order if counts[s])
    differing = sorted({str(c) for c, s in zip(frame["git_commit"], states, strict=True) if s == DIFFERS})
    if differing:
        text += f" (named commits whose tree differs from the code that ran: {', '.join(differing)})"
    return text
