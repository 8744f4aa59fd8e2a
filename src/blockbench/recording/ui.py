"""What the MLflow UI needs to show a sweep the way a user compares runs, written from the runs themselves.

* Each job's run gets a description (``mlflow.note.content``, the run page's Description): its axes, its
  latency with the interval, its size and parity, and its engine's LoggedModel (:func:`describe_run`).
* Each sweep (:func:`describe_sweep`, as its parent run ends) gets a saved view of the experiment's runs page: the
  experiment tag ``mlflow.sharedViewState.<key>`` that the page loads from ``?viewStateShareKey=<key>`` (the
  sweep's jobs only, block/norm/act/resolution/precision/backend, latency, size and engine as the first columns,
  fastest first, the charts filtered to the latency); ``blockbench`` is the view of the latest sweep, ``sweep-<parent
  run id>`` each sweep's own. The parent run's description is a table of its jobs with links to that view and to
  the run-comparison page, and the parent keeps ``sweep_latency.svg``, the jobs' medians with their intervals.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from blockbench.measure import metric_names as names
from blockbench.tracking import PARENT_TAG, Tracker
from blockbench.tracking.logged_models import ModelRef

log = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"  # MLflow's own: the run's Markdown description
VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # MLflow's own: a saved runs-page view, loaded by viewStateShareKey
LATEST_VIEW = "blockbench"
CHART_FILE = "sweep_latency.svg"
AXES = ("block", "norm", "act", "resolution", "precision", "backend")  # run tags, one column each
FIRST_METRICS = (
    names.LATENCY_MEDIAN,
    names.LATENCY_MEDIAN_CI_LOW,
    names.LATENCY_MEDIAN_CI_HIGH,
    names.PARAMS,
    names.MACS,
)
WORKFLOW = "workflowType=machine_learning"  # the UI's model-training side (its GenAI side names models "agents")


def column(kind: str, key: str) -> str:
    """A runs-table column as the MLflow UI names it (``tags.`block```, ``metrics.`latency_ms_median```)."""
    return f"{kind}.`{key}`"


def run_view(search_filter: str) -> dict[str, Any]:
    """The runs page's state (search facets and columns) that shows a sweep first as a user compares it."""
    columns = [
        *(column("tags", axis) for axis in AXES),
        *(column("metrics", metric) for metric in FIRST_METRICS),
        column("attributes", "Models"),
    ]
    return {
        "searchFilter": search_filter,
        "orderByKey": column("metrics", names.LATENCY_MEDIAN),
        "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": columns,
        "chartsSearchFilter": names.LATENCY_MEDIAN,
        "hideEmptyCharts": True,
    }


def runs_page(experiment_id: str, key: str) -> str:
    """The UI's address (after its host) of a saved view."""
    return f"#/experiments/{experiment_id}/runs?{WORKFLOW}&viewStateShareKey={key}"


def compare_page(experiment_id: str, run_ids: Sequence[str]) -> str:
    """The UI's address (after its host) of the run-comparison page of ``run_ids``."""
    return f"#/compare-runs?runs={quote(json.dumps(list(run_ids)))}&experiments={quote(json.dumps([experiment_id]))}"


def _finite(metrics: Mapping[str, float], key: str) -> float | None:
    """A metric, or None where it is missing or not a number (an interval of too few samples)."""
    value = metrics.get(key)
    return value if value is not None and math.isfinite(value) else None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g} ms"


def _count(value: float | None) -> str:
    if value is None:
        return "—"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f}"


def median_interval(metrics: Mapping[str, float]) -> tuple[float | None, float | None]:
    """The interval to show beside a run's median: the one covering its trials where it has several, else its own."""
    if metrics.get(names.TRIALS, 1) >= 2:
        low, high = names.LATENCY_MEDIAN_TRIALS_CI_LOW, names.LATENCY_MEDIAN_TRIALS_CI_HIGH
        return _finite(metrics, low), _finite(metrics, high)
    return _finite(metrics, names.LATENCY_MEDIAN_CI_LOW), _finite(metrics, names.LATENCY_MEDIAN_CI_HIGH)


def describe_run(tags: Mapping[str, str], metrics: Mapping[str, float], model: ModelRef | None) -> dict[str, str]:
    """The run's description: what it is, what it measured, which engine (a tag to set on the run)."""
    axes = " · ".join(tags.get(axis, "?") for axis in AXES)
    lines = [f"**{axes}** on {tags.get('device_name', 'an unknown device')}", ""]
    median = _finite(metrics, names.LATENCY_MEDIAN)
    if median is not None:
        low, high = median_interval(metrics)
        trials = metrics.get(names.TRIALS, 1)
        what = f"95 % interval over {trials:.0f} trials" if trials >= 2 else "95 % CI"
        interval = f" ({what} {low:.4g}–{high:.4g})" if low is not None and high is not None else ""
        lines.append(f"- median latency {_ms(median)}{interval}, p99 {_ms(metrics.get(names.LATENCY_P99))}")
    else:
        lines.append("- not timed (build only)")
    lines.append(f"- {_count(metrics.get(names.PARAMS))} parameters, {_count(metrics.get(names.MACS))} MACs")
    if names.PARITY_REL_L2 in metrics:
        lines.append(
            f"- parity with PyTorch FP32: relative L2 {metrics[names.PARITY_REL_L2]:.3g} ({tags.get('parity')})"
        )
    if model is not None:
        how = "built by this run" if model.created else "built by an earlier run, measured again here"
        lines.append(f"- engine: LoggedModel `{model.model_id}` ({how}; the experiment's Models tab)")
    return {NOTE_TAG: "\n".join(lines)}


def latency_chart_svg(rows: Sequence[tuple[str, float, float | None, float | None]]) -> str:
    """Horizontal bars of each run's median latency (``(name, median, ci_low, ci_high)``) with its interval."""
    bar_h, left, width = 22, 330, 420
    top = max((high or median for _, median, _, high in rows), default=1.0) or 1.0
    height = 40 + bar_h * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="16" font-weight="bold">median latency (ms), 95 % interval</text>',
    ]
    for i, (name, median, low, high) in enumerate(rows):
        y = 28 + i * bar_h

        def x(value: float) -> float:
            return left + width * value / top

        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(name)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{x(median) - left:.1f}" height="{bar_h - 8}" fill="#4c78a8"/>'
        )
        if low is not None and high is not None:
            mid = y + bar_h / 2
            parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{mid}" y2="{mid}" stroke="black"/>')
        parts.append(f'<text x="{x(high or median) + 4:.1f}" y="{y + 14}">{median:.4g}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def sweep_note(experiment_id: str, parent_run_id: str, runs: Sequence[Any]) -> str:
    """The parent run's description: its jobs fastest first, with links to the sweep's views."""
    lines = [
        f"**{len(runs)} jobs.** [The sweep's runs]({runs_page(experiment_id, f'sweep-{parent_run_id}')}) · "
        f"[side by side]({compare_page(experiment_id, [r.info.run_id for r in runs])}) · chart: `{CHART_FILE}`",
        "",
        f"| run | {' | '.join(AXES)} | median | parameters | engine |",
        f"|---|{'---|' * len(AXES)}---|---|---|",
    ]
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        models = ", ".join(f"`{o.model_id}`" for o in (run.outputs.model_outputs if run.outputs else [])) or "—"
        lines.append(
            f"| {run.info.run_name} | {' | '.join(tags.get(axis, '') for axis in AXES)} | "
            f"{_ms(metrics.get(names.LATENCY_MEDIAN))} | {_count(metrics.get(names.PARAMS))} | {models} |"
        )
    return "\n".join(lines)


def describe_sweep(tracker: Tracker, parent_run_id: str) -> str | None:
    """The sweep's saved views, description and chart (:mod:`this module <blockbench.recording.ui>`); the address
    of its view, or None where it could not be written (the sweep ends regardless)."""
    try:
        with tracker.lock:
            runs = list(
                tracker.client.search_runs(
                    [tracker.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'", max_results=1000
                )
            )
        runs.sort(key=lambda r: r.data.metrics.get(names.LATENCY_MEDIAN, float("inf")))
        view = json.dumps(run_view(f"tags.`{PARENT_TAG}` = '{parent_run_id}'"))
        with tracker.lock:
            for key in (LATEST_VIEW, f"sweep-{parent_run_id}"):
                tracker.client.set_experiment_tag(tracker.experiment_id, f"{VIEW_TAG_PREFIX}{key}", view)
        tracker.set_tags(parent_run_id, {NOTE_TAG: sweep_note(tracker.experiment_id, parent_run_id, runs)})
        rows = [
            (
                r.info.run_name,
                r.data.metrics[names.LATENCY_MEDIAN],
                *median_interval(r.data.metrics),
            )
            for r in runs
            if _finite(r.data.metrics, names.LATENCY_MEDIAN) is not None
        ]
        if rows:
            tracker.log_text(parent_run_id, latency_chart_svg(rows), CHART_FILE)
    except Exception:  # help for the UI never fails the sweep it describes
        log.exception("tracking: could not write the sweep's views into %s", tracker.display_uri)
        return None
    page = runs_page(tracker.experiment_id, f"sweep-{parent_run_id}")
    log.info("tracking: the sweep's runs in the MLflow UI: /%s", page)
    return page
