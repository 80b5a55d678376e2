"""Grafana dashboards as checked artefacts: read a dashboard's JSON model, list its panels and PromQL, check it.

Grafana itself is not installed on the course machines. The dashboard JSON (built as code, e.g. with
grafana-foundation-sdk) is still the artefact a team deploys, so the course tests it:

- `dashboard_panels`: every time-series panel with its row, title, unit and (PromQL, legend) targets;
  `llmserve.measure.dashboards.plot_panels` draws exactly these queries from a live Prometheus.
- `metric_names_in_dashboard`: the metric names the queries select, to check against a live `/metrics`.
- `dashboard_problems`: what Grafana would import but show wrongly (duplicate ids, overlapping panels,
  queries without a datasource, duplicate refIds in a panel, a legend naming a label the query drops).

Used by vLLM Lab 2.5.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from llmserve.ops.alerting import metric_names_in_expr


@dataclass(frozen=True)
class DashboardPanel:
    row: str
    title: str
    unit: str
    targets: tuple[tuple[str, str], ...]  # (PromQL expression, legend template)


def load_dashboard(dashboard: dict | str | Path) -> dict:
    """A dashboard's JSON model from a dict, a JSON string or a file."""
    if isinstance(dashboard, dict):
        return dashboard
    if isinstance(dashboard, Path):
        return json.loads(dashboard.read_text())
    return json.loads(dashboard)


def _panels_in_order(model: dict) -> list[tuple[str, dict]]:
    """(row title, panel) for every non-row panel, rows expanded or collapsed alike."""
    found, row = [], ""
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title", "")
            found += [(row, inner) for inner in panel.get("panels", [])]  # a collapsed row holds its panels
            continue
        found.append((row, panel))
    return found


def dashboard_panels(dashboard: dict | str | Path) -> list[DashboardPanel]:
    """The time-series panels in dashboard order, with their PromQL targets."""
    panels = []
    for row, panel in _panels_in_order(load_dashboard(dashboard)):
        if panel.get("type") != "timeseries":
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        targets = tuple((t["expr"], t.get("legendFormat", "")) for t in panel.get("targets", []) if t.get("expr"))
        panels.append(DashboardPanel(row, panel.get("title", ""), unit, targets))
    return panels


def metric_names_in_dashboard(dashboard: dict | str | Path) -> set[str]:
    """Every metric name the dashboard's queries select (recorded series included)."""
    return {name for panel in dashboard_panels(dashboard) for expr, _ in panel.targets
            for name in metric_names_in_expr(expr)}


def legend_text(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend: `{{label}}` replaced by the series' value of that label (empty when it has none)."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def _kept_labels(expr: str) -> set[str] | None:
    """The labels an expression's outermost `sum/max/... by (...)` keeps; None when it is not aggregated so."""
    match = re.match(r"\s*(?:sum|max|min|avg|count)\s+by\s*\(([^)]*)\)", expr)
    return {label.strip() for label in match.group(1).split(",") if label.strip()} if match else None


def dashboard_problems(dashboard: dict | str | Path) -> list[str]:
    """What is wrong with a dashboard that Grafana would still import; [] when nothing is."""
    model = load_dashboard(dashboard)
    problems = []
    if not model.get("uid"):
        problems.append("the dashboard has no uid (each import would create a new copy)")
    all_panels = [panel for _, panel in _panels_in_order(model)] + [p for p in model.get("panels", [])
                                                                     if p.get("type") == "row"]
    ids = [panel.get("id") for panel in all_panels if panel.get("id") is not None]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate panel ids: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    boxes = []
    for _, panel in _panels_in_order(model):
        title = panel.get("title", "?")
        grid = panel.get("gridPos") or {}
        if not {"x", "y", "w", "h"} <= set(grid):
            problems.append(f"{title}: no complete gridPos")
        else:
            if grid["x"] + grid["w"] > 24:
                problems.append(f"{title}: wider than Grafana's 24-column grid")
            boxes.append((title, grid))
        if panel.get("type") != "timeseries":
            continue
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"{title}: no queries")
        if not panel.get("datasource") and not all(t.get("datasource") for t in targets):
            problems.append(f"{title}: no datasource")
        refs = [t.get("refId") for t in targets]
        if len(refs) != len(set(refs)):
            problems.append(f"{title}: duplicate refIds {refs}")
        for target in targets:
            kept = _kept_labels(target.get("expr", ""))
            named = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            if kept is not None and named - kept:
                problems.append(f"{title}: legend names {sorted(named - kept)}, which `{target['expr']}` drops")
    for i, (title_a, a) in enumerate(boxes):
        for title_b, b in boxes[i + 1:]:
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                problems.append(f"panels overlap: {title_a!r} and {title_b!r}")
    return problems
