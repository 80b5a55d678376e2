"""vLLM Lab 2.5's Grafana dashboard, as code: vLLM's server and the gateway in front of it.

Built with Grafana's own builder library, grafana-foundation-sdk. Run this file to regenerate the JSON that
Grafana imports (Dashboards > New > Import, or a provisioning folder):

    .venv/bin/python 02-Labs/vLLM_Track/Lab-2.5-Performance_Monitoring/monitoring/dashboards/vllm_overview.py

`PANELS` is the single source: each panel's title, unit and PromQL queries (mostly the recording rules of
../rules/vllm-recording.yml). `build()` turns it into a dashboard; tests/labs/vllm/test_lab25_monitoring.py
checks that vllm-overview.json is what `build()` makes today, and every metric name against a live /metrics.
Grafana is not installed on the course machines, so the notebooks draw the same queries from the JSON with
matplotlib (llmserve.measure.dashboards).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphDrawStyle
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

JSON_FILE = Path(__file__).with_name("vllm-overview.json")
UID = "llm-course-vllm-overview"


class Query(NamedTuple):
    expr: str
    legend: str  # Grafana's legend template: {{label}} is replaced by the series' label value


class PanelSpec(NamedTuple):
    row: str
    title: str
    unit: str  # Grafana's unit id: reqps, s, percentunit, short, ...
    queries: tuple[Query, ...]
    description: str = ""


PANELS: tuple[PanelSpec, ...] = (
    # -- traffic: how much is asked, how much is served ---------------------------------------------------
    PanelSpec("Traffic", "Requests per second", "reqps", (
        Query("job:vllm_request_success:rate10s", "vLLM finished"),
        Query("job_code:gateway_chat_requests:rate10s", "gateway chat, HTTP {{code}}"),
        Query("job:vllm_num_preemptions:rate10s", "vLLM preempted"),
    ), "Finished requests at vLLM, the gateway's chat answers by status code, and requests vLLM preempted "
       "(evicted from the batch for lack of KV cache), per second over 10 s."),
    PanelSpec("Traffic", "Tokens per second", "short", (
        Query("job:vllm_prompt_tokens:rate10s", "prompt (prefill)"),
        Query("job:vllm_generation_tokens:rate10s", "generated (decode)"),
    ), "Prompt and generated tokens per second at vLLM (10 s rate)."),
    PanelSpec("Traffic", "Requests in the engine", "short", (
        Query("job:vllm_num_requests_running:sum", "running (in the batch)"),
        Query("job:vllm_num_requests_waiting:sum", "waiting (queue)"),
        Query("job:gateway_in_flight_requests:sum", "in flight at the gateway"),
    ), "The batch, the queue behind it, and what the gateway holds open."),
    PanelSpec("Traffic", "KV-cache usage", "percentunit", (
        Query("job:vllm_kv_cache_usage_perc:max", "KV-cache blocks in use"),
    ), "Fraction of vLLM's KV-cache blocks in use (1 = full: new requests wait, running ones may be preempted)."),
    # -- latency: what a user feels ---------------------------------------------------------------------
    PanelSpec("Latency", "Time to first token", "s", (
        Query("job:vllm_time_to_first_token_seconds:p50_10s", "vLLM p50"),
        Query("job:vllm_time_to_first_token_seconds:p95_10s", "vLLM p95"),
        Query("job:vllm_time_to_first_token_seconds:p99_10s", "vLLM p99"),
        Query("job:gateway_time_to_first_token_seconds:p95_10s", "gateway p95"),
    ), "TTFT quantiles from the histograms (10 s window): queueing plus prefill."),
    PanelSpec("Latency", "Inter-token latency and TPOT", "s", (
        Query("job:vllm_inter_token_latency_seconds:p50_10s", "ITL p50"),
        Query("job:vllm_inter_token_latency_seconds:p95_10s", "ITL p95"),
        Query("job:vllm_request_time_per_output_token_seconds:p95_10s", "TPOT p95 (per request)"),
    ), "Gaps between streamed tokens, and each request's mean time per output token."),
    PanelSpec("Latency", "End-to-end latency", "s", (
        Query("job:vllm_e2e_request_latency_seconds:p50_10s", "vLLM p50"),
        Query("job:vllm_e2e_request_latency_seconds:p95_10s", "vLLM p95"),
        Query("job:gateway_e2e_request_latency_seconds:p95_10s", "gateway p95"),
    ), "Whole-request latency quantiles (10 s window)."),
    # -- cost: of serving, and of watching ---------------------------------------------------------------
    PanelSpec("Cost", "CPU by process", "short", (
        Query("sum by (groupname) (rate(namedprocess_namegroup_cpu_seconds_total[20s]))", "{{groupname}}"),
        Query('count(node_cpu_seconds_total{mode="idle"}) - sum(rate(node_cpu_seconds_total{mode="idle"}[10s]))',
              "machine (cores busy)"),
    ), "CPU cores used by each serving process (process-exporter, scraped every 5 s: a 20 s window) and by the whole "
       "machine (node-exporter)."),
    PanelSpec("Cost", "Scrape duration", "s", (
        Query("scrape_duration_seconds", "{{job}}"),
    ), "How long each target took to answer a scrape."),
    PanelSpec("Cost", "Samples per scrape", "short", (
        Query("scrape_samples_scraped", "{{job}}"),
    ), "Samples (one per series) each target returns per scrape: what Prometheus stores."),
)


def build() -> DashboardBuilder:
    """The dashboard builder: one row per `PanelSpec.row`, panels two per line, 30 s browser refresh."""
    datasource = DataSourceRef(type_val="prometheus", uid="${datasource}")
    dashboard = (DashboardBuilder("LLM course · vLLM server and gateway")
                 .uid(UID)
                 .tags(["llm-course", "vllm", "lab-2.5"])
                 .refresh("30s")
                 .time("now-15m", "now")
                 .tooltip(DashboardCursorSync.CROSSHAIR)
                 .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus")))
    row, panel_id = None, 0
    for spec in PANELS:
        if spec.row != row:
            row, panel_id = spec.row, panel_id + 1
            dashboard = dashboard.with_row(Row(row).id(panel_id))
        panel_id += 1  # Grafana links and alerts address a panel by its id: unique, and stable across builds
        panel = (Timeseries().id(panel_id).title(spec.title).description(spec.description).unit(spec.unit)
                 .datasource(datasource).height(8).span(12).draw_style(GraphDrawStyle.LINE).min(0))
        for ref_id, query in zip("ABCDEFGH", spec.queries, strict=False):
            panel = panel.with_target(PrometheusQuery().expr(query.expr).legend_format(query.legend).ref_id(ref_id)
                                      .range())
        dashboard = dashboard.with_panel(panel)
    return dashboard


def dashboard_json() -> str:
    """The dashboard as Grafana's JSON model (stable key order, so the file diffs cleanly)."""
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


if __name__ == "__main__":
    JSON_FILE.write_text(dashboard_json())
    panels = json.loads(JSON_FILE.read_text())["panels"]
    print(f"wrote {JSON_FILE.name}: {sum(p['type'] == 'timeseries' for p in panels)} panels, "
          f"{sum(p['type'] == 'row' for p in panels)} rows")
