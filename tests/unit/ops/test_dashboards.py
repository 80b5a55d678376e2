"""ops.dashboards: panels and PromQL read from a Grafana JSON model, metric names, and the problems Grafana would
import silently; alerting.metric_names_in_expr, which both use."""
import copy
import json

from llmserve.ops.alerting import metric_names_in_expr
from llmserve.ops.dashboards import (
    dashboard_panels,
    dashboard_problems,
    legend_text,
    metric_names_in_dashboard,
)


def panel(pid, title, x, y, targets, unit="s", **extra):
    return {"id": pid, "type": "timeseries", "title": title, "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
            "datasource": {"type": "prometheus", "uid": "${datasource}"}, "fieldConfig": {"defaults": {"unit": unit}},
            "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(targets)],
            **extra}


DASHBOARD = {"uid": "u", "panels": [
    {"id": 1, "type": "row", "title": "Latency", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}},
    panel(2, "TTFT", 0, 1, [("job:ttft:p95_10s", "p95"), ("sum by (code) (rate(http_requests_total[1m]))", "{{code}}")]),
    panel(3, "Queue", 12, 1, [("vllm:num_requests_waiting", "{{instance}}")], unit="short"),
    {"id": 4, "type": "row", "title": "Collapsed", "collapsed": True, "gridPos": {"x": 0, "y": 9, "w": 24, "h": 1},
     "panels": [panel(5, "Hidden", 0, 10, [('up{job="vllm"}', "")])]},
]}


def test_panels_in_order_with_rows_units_and_targets():
    panels = dashboard_panels(json.dumps(DASHBOARD))
    assert [(p.row, p.title, p.unit) for p in panels] == [("Latency", "TTFT", "s"), ("Latency", "Queue", "short"),
                                                          ("Collapsed", "Hidden", "s")]
    assert panels[0].targets[1] == ("sum by (code) (rate(http_requests_total[1m]))", "{{code}}")


def test_metric_names_leave_out_functions_labels_and_windows():
    assert metric_names_in_dashboard(DASHBOARD) == {"job:ttft:p95_10s", "http_requests_total",
                                                    "vllm:num_requests_waiting", "up"}
    assert metric_names_in_expr('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="b c"}[5m] offset 1m)))') \
        == {"a_bucket"}


def test_a_clean_dashboard_has_no_problems():
    assert dashboard_problems(DASHBOARD) == []


def test_the_problems_grafana_would_import_silently():
    broken = copy.deepcopy(DASHBOARD)
    broken["uid"] = ""
    broken["panels"][2]["id"] = 2                       # duplicate id
    broken["panels"][2]["gridPos"]["x"] = 6             # overlaps TTFT
    del broken["panels"][2]["datasource"]               # no datasource
    broken["panels"][1]["targets"][1]["refId"] = "A"    # duplicate refId
    broken["panels"][1]["targets"][1]["legendFormat"] = "{{route}}"  # a label the query's `by (code)` drops
    problems = "\n".join(dashboard_problems(broken))
    for expected in ("no uid", "duplicate panel ids: [2]", "panels overlap: 'TTFT' and 'Queue'", "Queue: no datasource",
                     "TTFT: duplicate refIds", "legend names ['route']"):
        assert expected in problems, expected


def test_legend_templates_take_the_series_labels():
    assert legend_text("gateway {{ code }} {{route}}", {"code": "200"}) == "gateway 200 "
