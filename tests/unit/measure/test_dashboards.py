"""measure.dashboards: panels drawn from range queries (a stand-in Prometheus answering query_range)."""
import math

import matplotlib

matplotlib.use("Agg")

from llmserve.measure.dashboards import plot_panels, range_series  # noqa: E402
from llmserve.ops.dashboards import DashboardPanel  # noqa: E402


class FakePrometheus:
    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def query_range(self, expr, start, end, step):
        self.asked.append((expr, start, end, step))
        return self.answers.get(expr, [])


ANSWERS = {
    "job:ttft:p95_10s": [{"metric": {"job": "vllm"}, "values": [[100, "0.25"], [101, "NaN"], [102, "0.5"]]}],
    "rate_by_code": [{"metric": {"code": "200"}, "values": [[100, "2"], [102, "3"]]},
                     {"metric": {"code": "503"}, "values": [[100, "0"], [102, "1"]]}],
}


def test_range_series_names_curves_by_legend_and_keeps_nan():
    curves = range_series(FakePrometheus(ANSWERS), "job:ttft:p95_10s", 100, 102, legend="p95 {{job}}")
    times, values = curves["p95 vllm"]
    assert times == [100, 101, 102] and values[0] == 0.25 and math.isnan(values[1])


def test_plot_panels_runs_every_query_and_returns_the_numbers():
    prometheus = FakePrometheus(ANSWERS)
    panels = [DashboardPanel("Latency", "TTFT", "s", (("job:ttft:p95_10s", "p95"),)),
              DashboardPanel("Traffic", "Answers", "reqps", (("rate_by_code", "HTTP {{code}}"),)),
              DashboardPanel("Traffic", "Empty", "short", (("nothing", "x"),))]
    fig, series = plot_panels(prometheus, panels, 100, 102, step=1, columns=2)
    assert [expr for expr, *_ in prometheus.asked] == ["job:ttft:p95_10s", "rate_by_code", "nothing"]
    assert series["Answers"]["HTTP 503"] == ([0, 2], [0.0, 1.0])   # seconds from the start, raw values
    assert series["Empty"] == {}
    ttft_axis = fig.axes[0]
    assert ttft_axis.get_ylabel() == "ms" and list(ttft_axis.lines[0].get_ydata())[2] == 500  # seconds drawn as ms
    assert sum(ax.get_visible() for ax in fig.axes) == 3
