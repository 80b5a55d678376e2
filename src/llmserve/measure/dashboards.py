"""A dashboard's panels drawn with matplotlib from a live Prometheus (Grafana is not installed here).

Each panel's PromQL runs through Prometheus's `query_range` API, exactly as Grafana would run it, and
its series are drawn as lines with Grafana's legend templates. The panels come from the dashboard JSON
(`llmserve.ops.dashboards.dashboard_panels`), so the picture and the deployed dashboard cannot drift.

    panels = dashboard_panels(LAB / "monitoring" / "dashboards" / "vllm-overview.json")
    fig, series = plot_panels(prometheus, panels, start, end)

`series` holds every curve as numbers ({panel title: {legend: (seconds from start, values)}}), so a
notebook can print what a panel shows instead of describing the picture.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from llmserve.ops.dashboards import DashboardPanel, legend_text

# Grafana unit id -> (multiplier, axis label) for the matplotlib axes
UNITS = {"s": (1000.0, "ms"), "ms": (1.0, "ms"), "percentunit": (100.0, "%"), "percent": (1.0, "%"),
         "reqps": (1.0, "requests/s"), "short": (1.0, "")}

Series = dict[str, dict[str, tuple[list[float], list[float]]]]


def range_series(prometheus, expr: str, start: float, end: float, step: float = 1.0,
                 legend: str = "") -> dict[str, tuple[list[float], list[float]]]:
    """{legend text: (Unix times, values)} of one range query; NaN where Prometheus returned NaN."""
    curves = {}
    for item in prometheus.query_range(expr, start, end, step):
        name = legend_text(legend, item["metric"]) if legend else str(item["metric"] or expr)
        times = [float(t) for t, _ in item["values"]]
        values = [float(v) for _, v in item["values"]]  # "NaN" parses as nan: a quantile with no traffic
        curves[name] = (times, values)
    return curves


def plot_panels(prometheus, panels: Sequence[DashboardPanel], start: float, end: float, step: float = 1.0,
                columns: int = 2, panel_size: tuple[float, float] = (6.5, 2.8), title: str | None = None):
    """Draw `panels` in a grid from `start` to `end` (Unix seconds); returns (figure, series)."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size[0] * columns, panel_size[1] * rows),
                             squeeze=False)
    series: Series = {}
    for ax, panel in zip(axes.flat, panels, strict=False):
        scale, label = UNITS.get(panel.unit, (1.0, panel.unit))
        series[panel.title] = {}
        for expr, legend in panel.targets:
            for name, (times, values) in range_series(prometheus, expr, start, end, step, legend).items():
                offsets = [t - start for t in times]
                series[panel.title][name] = (offsets, values)
                ax.plot(offsets, [scale * v for v in values], label=name, linewidth=1.5)
        ax.set_title(f"{panel.row} · {panel.title}" if panel.row else panel.title, fontsize=10)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if series[panel.title]:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="grey")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes.flat[max(0, len(panels) - columns):len(panels)]:  # the lowest panel of each column
        ax.set_xlabel("seconds since start")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, series
