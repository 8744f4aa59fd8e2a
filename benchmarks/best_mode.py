"""Per-config best torch mode across MLflow stores, and the issue's FP16 reference table beside it.

A *variant* is how a config was run: ``backend.mode`` plus, for compiled modes, the inductor mode, channels-last
and freezing. For every config (block, norm, act, resolution, precision) the newest run of each variant counts,
and the fastest variant is reported with its median and the runner-up's.

    python benchmarks/best_mode.py --tracking-uri sqlite:///docs/gpu/h100_best_mlflow.db \
        --tracking-uri sqlite:///docs/gpu/h100_mlflow.db --experiment paper --experiment blockbench
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from runs_table import BLOCK_ORDER, KEYS, load_runs, to_markdown

# The table: FP16, batch 1, plain PyTorch 2.11 on an H100, torch.compile (default) + CUDA graph.
REFERENCE_MS = {
    ("vgg", "bn", "relu", 64): 0.63,
    ("vgg", "ln", "gelu", 64): 0.64,
    ("vgg", "bn", "relu", 1024): 1.55,
    ("mobilenet", "bn", "relu", 1024): 0.90,
    ("convnext", "bn", "relu", 1024): 4.97,
}
PRECISIONS = ("fp32", "tf32", "fp16")


def variant(run: pd.Series) -> str:
    mode = run.get("params.backend.mode")
    if mode not in ("compile", "aoti"):
        return str(mode)
    parts = [str(mode)]
    if run.get("params.backend.compile_mode") not in (None, "default") and not pd.isna(
        run.get("params.backend.compile_mode")
    ):
        parts.append(str(run["params.backend.compile_mode"]))
    if str(run.get("params.backend.channels_last")) == "True":
        parts.append("channels-last")
    if str(run.get("params.backend.freezing")) == "True":
        parts.append("freezing")
    return "+".join(parts)


def collect(stores: list[tuple[str, str]]) -> pd.DataFrame:
    frames = []
    for uri, experiment in stores:
        runs = load_runs(uri, experiment)
        runs = runs[runs["params.backend.name"] == "torch"] if "params.backend.name" in runs else runs
        frame = pd.DataFrame({key: runs[f"tags.{key}"] for key in KEYS})
        frame["variant"] = runs.apply(variant, axis=1)
        frame["median_ms"] = runs["metrics.latency_ms_median"]
        frame["start"] = runs["start_time"]
        frame["commit"] = runs["tags.git_commit"].str[:8]
        frames.append(frame.dropna(subset=["median_ms"]))
    frame = pd.concat(frames)
    frame["resolution"] = frame["resolution"].astype(int)
    # The newest run of each config and variant counts (a re-run supersedes an older one).
    return frame.sort_values("start").groupby([*KEYS, "variant"], as_index=False).last()


def best_table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for config, group in frame.groupby(KEYS):
        ordered = group.sort_values("median_ms")
        best = ordered.iloc[0]
        row = dict(zip(KEYS, config, strict=True))
        row.update(best_mode=best["variant"], best_ms=best["median_ms"], commit=best["commit"])
        if len(ordered) > 1:
            row.update(runner_up=ordered.iloc[1]["variant"], runner_up_ms=ordered.iloc[1]["median_ms"])
        row["variants"] = len(ordered)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["_order"] = table["block"].map(BLOCK_ORDER)
    table["_precision"] = table["precision"].map({p: i for i, p in enumerate(PRECISIONS)})
    table = table.sort_values(["_precision", "resolution", "norm", "act", "_order"])
    return table.drop(columns=["_order", "_precision"])


def reference_table(best: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (block, norm, act, size), ref in REFERENCE_MS.items():
        match = best[
            (best.block == block)
            & (best.norm == norm)
            & (best.act == act)
            & (best.resolution == size)
            & (best.precision == "fp16")
        ]
        ours = float(match["best_ms"].iloc[0]) if len(match) else float("nan")
        mode = match["best_mode"].iloc[0] if len(match) else "—"
        verdict = (
            "—" if pd.isna(ours) else "at least as fast" if ours <= ref else f"{100 * (ours / ref - 1):.1f} % slower"
        )
        rows.append(
            {
                "config": f"{block} {norm} {act} {size}",
                "reference ms": ref,
                "best ms": ours,
                "best mode": mode,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def wide_table(best: pd.DataFrame) -> pd.DataFrame:
    """One row per network and resolution; per precision the best median and its mode (of how many measured)."""
    rows = []
    for config, group in best.groupby(["block", "norm", "act", "resolution"], sort=False):
        row: dict[str, object] = dict(zip(["block", "norm", "act", "resolution"], config, strict=True))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", action="append", required=True, help="repeat for several stores")
    parser.add_argument("--experiment", action="append", help="one per --tracking-uri (default: blockbench)")
    parser.add_argument("--out", type=Path, help="write the Markdown tables here (and the long table as .csv)")
    args = parser.parse_args()
    experiments = args.experiment or ["blockbench"] * len(args.tracking_uri)
    if len(experiments) != len(args.tracking_uri):
        parser.error("give one --experiment per --tracking-uri")
    frame = collect(list(zip(args.tracking_uri, experiments, strict=True)))
    best = best_table(frame)
    text = "\n\n".join(
        [
            "### FP16 reference configs (the issue's table)",
            to_markdown(reference_table(best)),
            f"### Per-config best ({len(best)} configs; mode (number of variants measured))",
            to_markdown(wide_table(best)),
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        best.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
