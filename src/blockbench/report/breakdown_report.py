"""The breakdown as a section of the report: the tables and figures of :mod:`blockbench.report.breakdown` and
:mod:`blockbench.report.breakdown_figures` written into the report's folder, and their Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from blockbench.measure.metric_names import ENERGY_MEAN_W, ENERGY_PER_INFERENCE
from blockbench.report.breakdown import (
    ATTR_TOTAL,
    ENERGY_COLUMNS,
    MAX_ROWS,
    config_names,
    configs,
    share_table,
)
from blockbench.report.breakdown_figures import latency_vs_energy, where_time_goes
from blockbench.report.data import (
    RunSet,
    ordered,
)
from blockbench.report.tables import to_markdown

# --- the report's sections ----------------------------------------------------------------------------------


@dataclass
class Breakdown:
    """What :func:`build_breakdown` found and wrote."""

    configs: pd.DataFrame
    display: pd.DataFrame
    files: list[Path] = field(default_factory=list)

    @property
    def profiled(self) -> bool:
        return bool(self.configs[ATTR_TOTAL].notna().any())

    @property
    def energy(self) -> bool:
        return bool(self.configs[ENERGY_PER_INFERENCE].notna().any())


def build_breakdown(runs: RunSet, out_dir: Path) -> Breakdown:
    """The figures and ``attribution.csv`` where runs logged attribution / energy; nothing is written otherwise."""
    conf = configs(runs)
    display, raw = share_table(conf)
    result = Breakdown(conf, display)
    if result.profiled:
        result.files += where_time_goes(conf, out_dir)
        csv = out_dir / "attribution.csv"
        raw.to_csv(csv, index=False)
        result.files.append(csv)
    if result.energy:
        result.files += latency_vs_energy(conf, out_dir)
    return result


WHERE_TEXT = (
    "Kernel (node, layer) time per inference from a profiled pass after timing, by operator class "
    "(`attr_<class>_frac` × `attr_total_ms`; `fused` = kernels running several classes, e.g. inductor's "
    "conv+norm+act). ◆ = measured latency median; `cov` = attributed / measured (below 1: the device idles between "
    "kernels; above 1: profiling inflated them). One figure per resolution, one panel per precision; bars grouped by "
    "architecture, then engine, BN next to LN within each activation."
)
TABLE_TEXT = (
    "Shares are of attributed time: *Norm share* counts kernels that run normalization alone or fused; *Norm fused* "
    "the part of it in kernels fusing it with other classes (likewise *Act*). *Norm kernels* count normalization-only "
    "kernels per inference, and per block = / (4 × blocks_per_stage), stem included. Energy: the whole device over "
    "the timed window, per inference. `—` = not measured (never 0)."
)
ENERGY_TEXT = (
    "Energy per inference: the device's energy counter (NVML on GPUs, RAPL on CPUs) over the timed window, divided "
    "by the inferences in it; the whole device, idle time within the window included."
)


def breakdown_markdown(b: Breakdown) -> list[str]:
    """``## Where the time goes`` and ``## Energy`` for report.md, each only where runs logged its metrics."""
    lines: list[str] = []
    if b.profiled:
        lines += ["## Where the time goes", "", WHERE_TEXT, ""]
        for r in ordered("resolution", list(b.configs.loc[b.configs[ATTR_TOTAL].notna(), "resolution"])):
            lines += [f"![Where the time goes at {r}×{r}](figures/where_time_goes_{r}.png)", ""]
        lines += ["**Norm and activation share of latency per config** (all rows in attribution.csv)", ""]
        lines += [to_markdown(b.display.head(MAX_ROWS)), "", TABLE_TEXT, ""]
        if len(b.display) > MAX_ROWS:
            lines += [f"({len(b.display) - MAX_ROWS} more rows in attribution.csv)", ""]
    if not b.energy:
        return [*lines, "Energy: no run logged energy (no NVML/RAPL counter readable), so no energy figure.", ""]
    values = b.configs[ENERGY_PER_INFERENCE].dropna()
    power = b.configs[ENERGY_MEAN_W].dropna()
    watts = f"; mean power {power.min():.1f}–{power.max():.1f} W" if len(power) else ""
    lines += ["## Energy", "", ENERGY_TEXT, ""]
    lines += [f"{len(values)} configurations: {values.min():.4g}–{values.max():.4g} mJ per inference{watts}.", ""]
    lines += ["![Latency vs energy per inference](figures/latency_vs_energy.png)", ""]
    if not b.profiled:  # otherwise the energy columns are in the table above
        shown = b.display[b.configs[ENERGY_PER_INFERENCE].notna()]
        keep = [*list(config_names(b.configs)), *ENERGY_COLUMNS]
        lines += [to_markdown(shown[keep].head(MAX_ROWS)), ""]
    return lines
