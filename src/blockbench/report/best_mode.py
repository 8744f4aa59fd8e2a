"""``python -m blockbench.report best-mode``: the fastest torch mode per configuration across MLflow stores, and the
external FP16 reference latencies beside it (``docs/gpu/best_mode.md``, ``docs/gpu/speed.md``).

A *variant* is how a configuration was run: ``backend.mode`` plus, for compiled modes, the inductor mode,
channels-last and freezing. The newest run of each variant counts (a re-run supersedes an older one); the fastest
variant is reported with its median and the runner-up's.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from blockbench.report.data import AXES, load_runs, newest_per_config, sort_rows
from blockbench.report.tables import displayed, to_markdown

CONFIG = list(AXES)
METRIC = "latency_ms_median"
# External reference latencies (not measured here): FP16, batch 1, plain PyTorch 2.11 on an H100,
# torch.compile (default) + CUDA graph.
REFERENCE_MS = {
    ("vgg", "bn", "relu", 64): 0.63,
    ("vgg", "ln", "gelu", 64): 0.64,
    ("vgg", "bn", "relu", 1024): 1.55,
    ("mobilenet", "bn", "relu", 1024): 0.90,
    ("convnext", "bn", "relu", 1024): 4.97,
}
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


def reference_table(best: pd.DataFrame) -> pd.DataFrame:
    """The FP16 reference configurations: its latency, our best and whether ours is at least as fast."""
    rows = []
    for (block, norm, act, size), reference in REFERENCE_MS.items():
        match = best[
            (best.block == block)
            & (best.norm == norm)
            & (best.act == act)
            & (best.resolution == size)
            & (best.precision == "fp16")
        ]
        ours = float(match["best_ms"].iloc[0]) if len(match) else float("nan")
        if pd.isna(ours):
            verdict = "—"
        else:
            verdict = "at least as fast" if ours <= reference else f"{100 * (ours / reference - 1):.1f} % slower"
        rows.append(
            {
                "config": f"{block} {norm} {act} {size}",
                "reference ms": reference,
                "best ms": ours,
                "best mode": match["best_mode"].iloc[0] if len(match) else "—",
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


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
            "### FP16 reference configs (external reference latencies)",
            to_markdown(displayed(reference_table(best))),
            f"### Per-config best ({len(best)} configs; mode (number of variants measured))",
            to_markdown(displayed(wide_table(best))),
        ]
    )
