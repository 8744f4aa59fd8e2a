"""docs/precision.md's CPU table quotes no more digits than its unstable runs support (docs/cpu/precision_cpu.csv)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from blockbench.measure.statistics import UNSTABLE_COV

DOCS = Path(__file__).resolve().parents[2] / "docs"
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _speed_ups() -> dict[tuple[str, str, str, str], str]:
    """(block, norm, engine, precision) -> the speed-up cell of the CPU table."""
    found = {}
    for line in (DOCS / "precision.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[3] in ("fp32", "bf16", "int8"):
            found[tuple(cells[:4])] = cells[6]
    return found


def _significant_digits(number: str) -> int:
    return len(number.replace(".", "").lstrip("0"))


def test_unstable_rows_quote_speed_ups_as_ranges_of_two_significant_figures() -> None:
    runs = pd.read_csv(DOCS / "cpu" / "precision_cpu.csv")
    quoted = _speed_ups()
    assert len(quoted) == len(runs)
    for _, run in runs[runs["precision"] != "fp32"].iterrows():
        cell = quoted[(run["block"], run["norm"], run["engine"], run["precision"])]
        if cell == "no clear difference":
            continue
        numbers = NUMBER.findall(cell)
        assert numbers, cell
        if run["latency_cov"] > UNSTABLE_COV:
            assert all(_significant_digits(n) <= 2 for n in numbers), (cell, run["latency_cov"])
        base = runs[
            (runs["block"] == run["block"])
            & (runs["norm"] == run["norm"])
            & (runs["engine"] == run["engine"])
            & (runs["precision"] == "fp32")
        ].iloc[0]
        point = base["latency_ms_median"] / run["latency_ms_median"]
        low, high = float(numbers[0]), float(numbers[-1])
        assert low / 1.05 <= point <= high * 1.05, (cell, point)  # the quoted range holds the CSV's ratio


def test_the_instability_paragraph_states_the_projects_threshold() -> None:
    text = " ".join((DOCS / "precision.md").read_text().split())
    assert f"instability threshold, {100 * UNSTABLE_COV:.1f} % (`blockbench.measure.statistics.UNSTABLE_COV`" in text
    assert f"`latency_cov` at most {UNSTABLE_COV:g} (" in text
