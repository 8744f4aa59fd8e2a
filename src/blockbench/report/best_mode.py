"""``python -m blockbench.report best-mode``: the fastest torch mode per configuration across MLflow stores
(``docs/gpu/best_mode.md``, ``docs/gpu/speed.md``).

A *variant* is how a configuration was run: ``backend.mode`` plus, for compiled modes, the inductor mode,
channels-last and freezing. The newest run of each variant counts (a re-run supersedes an older one); the fastest
variant is reported with its median and the runner-up's.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from blockbench.report.data import AXES, newest_per_config, sort_rows
from blockbench.report.store import load_runs
from blockbench.report.tables import displayed, to_markdown

CONFIG = list(AXES)
METRIC = "latency_ms_median"
PRECISIONS = ("fp32", "tf32", "fp16")


def torch_variant(run: pd.Series) -> str:
    """``compile+max-autotune+channels-last+freezing``-style name of how a torch run was compiled and laid out."""
    mode = run.get("params.backend.mode")
    if mode not in ("compile", "aoti"):
        return str(mode)
    parts = [str(mode)]
    compile_mode = run.get("params.backend.compile_mode")
    if compile_mode not in (None, "default") and not pd.isna(compile_mode):
        parts.append(str(compile_mode))
    if str(run.get("params.backend.channels_last")) == "True":
        parts.append("channels-last")
    if str(run.get("params.backend.freezing")) == "True":
        parts.append("freezing")
    return "+".join(parts)


def torch_variants(stores: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Every run of every (store, experiment) with a latency: the newest run of each configuration and variant."""
    frames = []
    for uri, experiment in stores:
        frame = load_runs(uri, experiment, None).frame
        frame = frame[(frame["backend"] == "torch") & frame[METRIC].notna()].copy()
        frame["variant"] = frame.apply(torch_variant, axis=1)
        frames.append(frame)
    return newest_per_config(pd.concat(frames, ignore_index=True), ["variant"])


def best_per_config(variants: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: the fastest variant, its median and commit, the runner-up and how many were measured."""
    rows = []
    for config, group in variants.groupby(CONFIG):
        ranked = group.sort_values(METRIC)
        best = ranked.iloc[0]
        row = dict(zip(CONFIG, config, strict=True))
        row.update(best_mode=best["variant"], best_ms=best[METRIC], commit=str(best["git_commit"])[:8])
        if len(ranked) > 1:
            row.update(runner_up=ranked.iloc[1]["variant"], runner_up_ms=ranked.iloc[1][METRIC])
        row["variants"] = len(ranked)
        rows.append(row)
    by = ["precision", "resolution", "norm", "act", "block"]
    return sort_rows(pd.DataFrame(rows), by, paper_order=("precision", "block"))


def wide_table(best: pd.DataFrame) -> pd.DataFrame:
    """One row per network and resolution; per precision the best median and its mode (of how many measured)."""
    network = ["block", "norm", "act", "resolution"]
    rows = []
    for config, group in best.groupby(network, sort=False):
        row: dict[str, object] = dict(zip(network, config, strict=True))
        for precision in PRECISIONS:
            match = group[group.precision == precision]
            if len(match):
                hit = match.iloc[0]
                row[f"{precision} ms"] = hit["best_ms"]
                row[f"{precision} best of"] = f"{hit['best_mode']} ({hit['variants']})"
            else:
                row[f"{precision} ms"], row[f"{precision} best of"] = float("nan"), "—"
        rows.append(row)
    return pd.DataFrame(rows)


def best_mode_markdown(best: pd.DataFrame) -> str:
    return "\n\n".join(
        [
            f"### Per-config best ({len(best)} configs; mode (number of variants measured))",
            to_markdown(displayed(wide_table(best))),
        ]
    )
