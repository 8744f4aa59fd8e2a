"""An analytic latency floor per configuration and how far each run is above it.

floor = max(FLOPs / peak matrix rate, DRAM bytes / DRAM bandwidth), with the device's *measured* peaks
(:mod:`blockbench.report.peaks`; INT8's is an integer matrix product, and where this torch has none on the device
INT8 runs get no floor and a note saying why) and the work of one timed inference (the whole batch):

* FLOPs: 2 × the MACs each run logged (metric ``macs``: its complexity counter, thop or ptflops, on one image)
  × the batch size. The same count the tables show, so the report has one MAC counter; a run that logged none
  gets no FLOPs and no floor, and the roofline's notes say which.
* bytes: every weight read once (the logged ``params_count`` × the precision's bytes per weight), plus for every
  convolution, linear layer and pool its input read and its output written once. Norms, activations and
  residual adds are assumed fused into their producer, which is what a perfect engine would do, so the floor
  is a lower bound for every engine; the hand-written LN and the unfused ops show up as distance from it. The
  runs do not log these activation sizes, so they are counted with forward hooks on the model built from the
  run's params on PyTorch's ``meta`` device (shapes without memory: a 1024×1024 VGG costs nothing).
* DRAM bytes: the runs are timed with warm caches, so a working set that fits in the device's last-level cache
  (a GPU's L2) need not come from DRAM at all; only the bytes beyond the cache's size must. The memory bound is
  therefore ``max(0, bytes - cache) / bandwidth`` -- a true lower bound at any cache state -- and each row says
  which level its working set lives in. Where the cache size is unknown, every byte is counted from DRAM and the
  row says the floor holds for cold caches only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, as figures.py

import matplotlib.pyplot as plt
import pandas as pd

from blockbench.axes.blocks import BLOCK_RECORDS
from blockbench.axes.precisions import PRECISIONS
from blockbench.report.data import (
    ACT_NAMES,
    AXES,
    BLOCK_NAMES,
    NORM_NAMES,
    PRECISION_SHOWN,
    RunSet,
    order_key,
)
from blockbench.report.figures import save
from blockbench.report.footprint import (
    LOGGED_MACS,
    WorkUnknown,
    roofline_floor,
    run_footprint,
)
from blockbench.report.peaks import DevicePeaks, get_peaks


@dataclass
class Roofline:
    """Per-cell floors and measured latencies, the peaks they used, and why any device has none."""

    table: pd.DataFrame
    peaks: dict[str, DevicePeaks]
    notes: list[str]


COLUMNS = [
    *AXES,
    "label",
    "device_name",
    "gflop",
    "weights_mb",
    "activations_mb",
    "compute_floor_ms",
    "memory_floor_ms",
    "floor_ms",
    "bound",
    "memory_level",
    "measured_ms",
    "x_floor",
    "achieved_tflops",
    "intensity",
]


def compute_roofline(
    runs: RunSet,
    metric: str,
    cache_dir: Path,
    allow_measure: bool = True,
    extra_peaks: Sequence[DevicePeaks] = (),
) -> Roofline:
    """One row per (configuration, engine, device): floor, measured latency and latency / floor."""
    finished = runs.finished
    peaks: dict[str, DevicePeaks] = {p.device_name: p for p in extra_peaks}
    notes: list[str] = []
    for device in sorted(finished["device_name"].dropna().unique()):
        precisions = sorted(set(finished[finished["device_name"] == device]["precision"]))
        if device in peaks:
            notes.append(f"{device}: peaks from --peaks file")
            continue
        found, why = get_peaks(device, precisions, cache_dir, allow_measure)
        notes.append(f"{device}: {why}")
        if found is not None:
            peaks[device] = found
    records = []
    unknown: dict[str, list[str]] = {}  # why the work is unknown -> the configurations it is unknown for
    no_peak: dict[tuple[str, str], str] = {}  # (device, precision) without a matrix peak -> why
    for key, group in finished.groupby([*AXES, "label", "device_name"]):
        # Repeats of a configuration log the same counts; the first run that logged its MACs stands for all.
        logged = group[group[LOGGED_MACS].notna()] if LOGGED_MACS in group else group.iloc[:0]
        row = logged.iloc[0] if len(logged) else group.iloc[0]
        measured = float(group[metric].median()) if metric in group else math.nan
        record = dict(zip([*AXES, "label", "device_name"], key, strict=True))
        record["measured_ms"] = measured
        records.append(record)
        try:
            fp = run_footprint(row)
        except WorkUnknown as why:
            unknown.setdefault(str(why), []).append(f"{row['run_name']} ({row['label']})")
            continue
        record.update(gflop=fp.flops / 1e9, weights_mb=fp.weight_bytes / 1e6, activations_mb=fp.activation_bytes / 1e6)
        record["intensity"] = fp.flops / fp.total_bytes
        record["achieved_tflops"] = fp.flops / (measured / 1e3) / 1e12 if measured > 0 else math.nan
        device_peaks = peaks.get(str(key[-1]))
        rate = device_peaks.matmul_for(str(row["precision"])) if device_peaks else None
        if device_peaks is not None and not rate:
            no_peak[(str(key[-1]), str(row["precision"]))] = device_peaks.missing_reason(str(row["precision"]))
        if device_peaks is not None and rate:
            cache = device_peaks.cache_bytes
            dram_bytes = max(0, fp.total_bytes - cache) if cache else fp.total_bytes
            floor = roofline_floor(fp.flops, dram_bytes, rate, device_peaks.copy_gbps)
            record["memory_level"] = memory_level(fp.total_bytes, cache)
            record.update(
                compute_floor_ms=floor.compute_s * 1e3,
                memory_floor_ms=floor.memory_s * 1e3,
                floor_ms=floor.floor_s * 1e3,
                bound=floor.bound,
                x_floor=measured / (floor.floor_s * 1e3) if floor.floor_s > 0 else math.nan,
            )
    for why, names in unknown.items():
        notes.append(f"no FLOPs and no floor for {len(names)} configuration(s), {why}: {', '.join(names)}")
    for (device, precision), why in sorted(no_peak.items()):
        notes.append(f"{device}: no {PRECISION_SHOWN.get(precision, precision)} floor: {why}")
    table = pd.DataFrame(records, columns=COLUMNS)
    if not table.empty:
        table = table.sort_values(
            ["device_name", "resolution", "precision", "label", "act", "norm", "block"],
            key=lambda s: s.map(lambda v: order_key(str(s.name), v)),
        ).reset_index(drop=True)
    return Roofline(table, peaks, notes)


def memory_level(working_set: float, cache: int) -> str:
    """Where a warm working set lives, and so which bytes the memory floor counts."""
    if not cache:
        return "DRAM (cache size unknown: floor for cold caches)"
    if working_set <= cache:
        return f"cache ({cache / 2**20:.3g} MiB): no DRAM bound"
    return f"DRAM beyond the {cache / 2**20:.3g} MiB cache"


def _fmt(value: object, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pattern.format(value)


def display_table(roofline: Roofline) -> pd.DataFrame:
    """The roofline table for people; missing floors (no peaks for the device) show as ``—``."""
    t = roofline.table
    return pd.DataFrame(
        {
            "Architecture": t["block"].map(lambda v: BLOCK_NAMES.get(v, v)),
            "Resolution": t["resolution"].map(lambda v: f"{v}×{v}"),
            "Norm": t["norm"].map(lambda v: NORM_NAMES.get(v, v)),
            "Act": t["act"].map(lambda v: ACT_NAMES.get(v, v)),
            "Precision": t["precision"].map(lambda v: PRECISION_SHOWN.get(v, v)),
            "Engine": t["label"],
            "GFLOP": t["gflop"].map(lambda v: _fmt(v, "{:.3g}")),
            "Weights (MB)": t["weights_mb"].map(lambda v: _fmt(v, "{:.3g}")),
            "Activations (MB)": t["activations_mb"].map(lambda v: _fmt(v, "{:.3g}")),
            "Compute floor (ms)": t["compute_floor_ms"].map(lambda v: _fmt(v, "{:.4f}")),
            "Memory floor (ms)": t["memory_floor_ms"].map(lambda v: _fmt(v, "{:.4f}")),
            "Floor (ms)": t["floor_ms"].map(lambda v: _fmt(v, "{:.4f}")),
            "Bound": t["bound"].fillna("—"),
            "Memory level": t["memory_level"].fillna("—"),
            "Measured (ms)": t["measured_ms"].map(lambda v: _fmt(v, "{:.3f}")),
            "× floor": t["x_floor"].map(lambda v: _fmt(v, "{:.1f}×")),
        }
    )


def summary_table(roofline: Roofline) -> pd.DataFrame:
    """Median distance from the floor per device, engine, precision and resolution: the headline numbers."""
    t = roofline.table.dropna(subset=["x_floor"])
    rows = []
    keys = ["device_name", "label", "precision", "resolution"]
    for key, group in t.groupby(keys):
        device, label, precision, resolution = key
        rows.append(
            {
                "Device": device,
                "Engine": label,
                "Precision": PRECISION_SHOWN.get(str(precision), precision),
                "Resolution": f"{resolution}×{resolution}",
                "configs": str(len(group)),
                "median × floor": f"{group['x_floor'].median():.1f}×",
                "best × floor": f"{group['x_floor'].min():.1f}×",
                "memory-bound floors": f"{int((group['bound'] == 'memory').sum())} of {len(group)}",
            }
        )
    return pd.DataFrame(rows)


def peaks_markdown(roofline: Roofline) -> str:
    lines = []
    for name, p in sorted(roofline.peaks.items()):
        rates = ", ".join(
            f"{PRECISION_SHOWN.get(k, k)} {v:.3g} {'TOP/s (integer)' if PRECISIONS[k].quantized else 'TFLOP/s'}"
            for k, v in sorted(p.matmul_tflops.items())
            if p.matmul_for(k) is not None
        )
        lines.append(f"- **{name}** ({p.kind}): matrix product {rates}; copy {p.copy_gbps:.1f} GB/s")
    lines += [f"- {note}" for note in roofline.notes]
    return "\n".join(lines)


def roofline_figures(roofline: Roofline, out_dir: Path) -> list[Path]:
    """Classic roofline per device: achieved TFLOP/s against arithmetic intensity, under the measured roofs."""
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    markers = {b.name: b.marker for b in BLOCK_RECORDS.values()}
    colours = {"fp32": "#1f77b4", "tf32": "#17becf", "fp16": "#d62728", "bf16": "#ff7f0e"}
    for device, p in sorted(roofline.peaks.items()):
        data = roofline.table[(roofline.table["device_name"] == device) & roofline.table["intensity"].notna()]
        if data.empty:
            continue
        fig, ax = plt.subplots(figsize=(8.5, 5.5))
        lo = max(float(data["intensity"].min()) / 4, 1e-2)
        hi = float(data["intensity"].max()) * 4
        xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        for precision in sorted(set(data["precision"]), key=lambda v: order_key("precision", v)):
            rate = p.matmul_for(precision)
            if not rate:
                continue
            ax.plot(
                xs,
                [min(rate, p.copy_gbps * 1e9 * v / 1e12) for v in xs],
                color=colours.get(precision, "#555555"),
                lw=1.5,
                label=f"roof {PRECISION_SHOWN.get(precision, precision)}: {rate:.3g} TFLOP/s, {p.copy_gbps:.0f} GB/s",
            )
        groups = sorted(
            data.groupby(["block", "precision"]),
            key=lambda item: (order_key("block", item[0][0]), order_key("precision", item[0][1])),
        )
        for (block, precision), group in groups:
            ax.scatter(
                group["intensity"],
                group["achieved_tflops"],
                marker=markers.get(str(block), "x"),
                color=colours.get(str(precision), "#555555"),
                s=36,
                alpha=0.8,
                edgecolor="black",
                linewidth=0.4,
                label=f"{BLOCK_NAMES.get(str(block), block)} {PRECISION_SHOWN.get(str(precision), precision)}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte of weights + activations)")
        ax.set_ylabel("achieved matrix throughput (TFLOP/s)")
        ax.set_title(f"Roofline: {device} (measured peaks; each point is one configuration and engine)", fontsize=11)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        fig.tight_layout()
        stem = f"roofline_{re.sub(r'[^A-Za-z0-9]+', '_', device).strip('_')}"
        written += save(fig, folder / stem)
    return written


def write_roofline(roofline: Roofline, out_dir: Path) -> list[Path]:
    """``roofline.csv`` (raw numbers) and ``peaks.json`` (the peaks used) plus the figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / "roofline.csv"
    roofline.table.to_csv(csv, index=False)
    peaks = out_dir / "peaks.json"
    peaks.write_text(json.dumps({k: asdict(v) for k, v in roofline.peaks.items()}, indent=2) + "\n")
    return [csv, peaks, *roofline_figures(roofline, out_dir)]
