"""What the latency harness needs to know, as the config's ``benchmark`` section declares it (a leaf)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BenchmarkSettings:
    """What the harness needs; the config's ``benchmark`` section extends it (so it cannot be frozen)."""

    warmup_iters: int
    warmup_s: float
    min_iters: int
    min_s: float
    max_s: float
    batch_size: int = 1
    progress: bool = True  # the parent process reports a long stage's elapsed time (never the measuring process)
    timing: str = "per_request"  # per_request | pipelined | both
    cache: str = "warm"  # warm | flushed
    target_precision: float = 0.0  # > 0: stop once the median's 95 % interval is within ± this fraction of it
