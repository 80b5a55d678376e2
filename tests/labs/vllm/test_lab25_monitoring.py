"""vLLM Lab 2.5 · 01/02's monitoring files: the Prometheus config (promtool check config), the recording rules
(promtool check rules and their own promtool tests, naming), the process-exporter grouping, and the dashboard as code
(the JSON is what the source builds, no layout or query problems). On live servers, once: every metric name the rules
and the dashboard read exists on the /metrics of vLLM 0.32, the gateway and the exporters; every recording rule
produces a series; vLLM's request spans carry the attributes notebook 02 reads; Chromium renders Prometheus's graph page.
"""
import contextlib
import importlib.util
import re
import time

import pytest
import requests
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.measure.openai_stream import stream_load
from llmserve.measure.prometheus_text import exposed_metric_names, parse_prometheus_text
from llmserve.measure.screenshot import png_size, prometheus_graph_url, screenshot
from llmserve.ops.alerting import check_rules, metric_names_in_rules, run_rule_tests
from llmserve.ops.dashboards import dashboard_panels, dashboard_problems, metric_names_in_dashboard
from llmserve.ops.faults import wait_until
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import (
    GatewayServer,
    NodeExporter,
    OTLPTraceReceiver,
    ProcessExporter,
    PrometheusServer,
    VLLMServer,
    free_port,
    start_together,
)

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.5-Performance_Monitoring"
MONITORING = LAB / "monitoring"
RULES = MONITORING / "rules" / "vllm-recording.yml"
DASHBOARD_SOURCE = MONITORING / "dashboards" / "vllm_overview.py"
DASHBOARD_JSON = MONITORING / "dashboards" / "vllm-overview.json"
# series Prometheus writes itself for every target, not found on any /metrics page
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
             "scrape_samples_post_metric_relabeling"}


def config_text(**targets):
    targets = {"vllm_target": "127.0.0.1:8000", "gateway_target": "127.0.0.1:8001", "node_target": "127.0.0.1:9100",
               "process_target": "127.0.0.1:9256", "prometheus_target": "127.0.0.1:9090", **targets}
    return prometheus_config(MONITORING / "prometheus.yml", rules_dir=MONITORING / "rules", **targets)


def recording_rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_module():
    spec = importlib.util.spec_from_file_location("vllm_overview", DASHBOARD_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the files, with the real tools; no server -------------------------------------------------------------------

def test_prometheus_config_is_valid_with_the_recording_rules():
    text = config_text()
    assert "${" not in text
    output = check_prometheus_config(text)
    assert "SUCCESS" in output and f"SUCCESS: {len(recording_rules())} rules found" in output


def test_prometheus_config_scrapes_the_five_jobs_every_second():
    config = yaml.safe_load(config_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"vllm", "llm-gateway", "node", "process", "prometheus"}
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "1s"
    assert config["rule_files"] == [str(MONITORING / "rules" / "vllm-recording.yml")]


def test_recording_rules_pass_promtool_and_their_tests():
    assert f"SUCCESS: {len(recording_rules())} rules found" in check_rules(RULES)
    assert "SUCCESS" in run_rule_tests(MONITORING / "rules" / "vllm-recording.test.yml")


def test_recording_rule_names_follow_level_metric_operations_and_their_window():
    for rule in recording_rules():
        name, expr = rule["record"], rule["expr"]
        level, metric, operation = name.split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level) and metric and operation, name
        kept = set(level.split("_"))
        for labels in re.findall(r"\bby \(([^)]*)\)", expr):
            assert kept <= {label.strip() for label in labels.split(",")}, f"{name}: level {level} but `by ({labels})`"
        window = re.search(r"(\d+[smh])$", operation)
        if window:  # rate10s, p95_10s, max_10s: the window in the name is the window in the expression
            assert re.findall(r"\[(\d+[smh])\]", expr) and set(re.findall(r"\[(\d+[smh])\]", expr)) == {window.group(1)}, name
        quantile = re.match(r"p(\d+)_", operation)
        if quantile:
            assert f"histogram_quantile(0.{quantile.group(1)}," in expr, name


def test_the_signals_that_matter_are_all_recorded():
    recorded = {rule["record"] for rule in recording_rules()}
    for metric in ("vllm_time_to_first_token_seconds:p95", "vllm_inter_token_latency_seconds:p95",
                   "vllm_request_time_per_output_token_seconds:p95", "vllm_e2e_request_latency_seconds:p95",
                   "vllm_request_success:rate", "vllm_num_requests_waiting:", "vllm_num_requests_running:",
                   "vllm_kv_cache_usage_perc:", "vllm_num_preemptions:rate"):
        assert any(metric in name for name in recorded), metric


def test_process_exporter_groups_are_unique_and_name_the_serving_and_watching_processes():
    groups = [group["name"] for group in yaml.safe_load((MONITORING / "process-exporter.yml").read_text())["process_names"]]
    assert len(groups) == len(set(groups))
    assert {"vllm-engine-core", "vllm-api-server", "llm-gateway", "prometheus", "node-exporter",
            "process-exporter"} <= set(groups)


def test_dashboard_json_is_what_the_source_builds():
    assert dashboard_module().dashboard_json() == DASHBOARD_JSON.read_text(), \
        "regenerate it: .venv/bin/python " + str(DASHBOARD_SOURCE.relative_to(REPO_ROOT))


def test_dashboard_has_no_problems_and_reads_recorded_series():
    assert dashboard_problems(DASHBOARD_JSON) == []
    panels = dashboard_panels(DASHBOARD_JSON)
    assert len(panels) == len(dashboard_module().PANELS) >= 8
    recorded = {rule["record"] for rule in recording_rules()}
    used = metric_names_in_dashboard(DASHBOARD_JSON)
    colon_names = {name for name in used if name.count(":") == 2}  # level:metric:operations = recorded series
    assert colon_names <= recorded, colon_names - recorded
    assert len(colon_names) >= 15  # dashboards read the recorded signals, not raw buckets
    latency = [p for p in panels if p.row == "Latency"]
    assert latency and all(expr.startswith("job:") for p in latency for expr, _ in p.targets)


# -- once, against live servers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    with (OTLPTraceReceiver() as traces, NodeExporter() as node,
          ProcessExporter(MONITORING / "process-exporter.yml") as processes,
          contextlib.ExitStack() as servers):
        vllm = VLLMServer(served_model_name="course-model",
                          extra_args=["--max-num-seqs", "4", "--otlp-traces-endpoint", traces.traces_url],
                          env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "500"})
        gateway = GatewayServer({"backend": "upstream", "upstream_url": vllm.base_url})
        for server in start_together([vllm, gateway]):
            servers.callback(server.stop)
        port = free_port()
        with PrometheusServer(config_text(vllm_target=f"127.0.0.1:{vllm.port}",
                                          gateway_target=f"127.0.0.1:{gateway.port}", node_target=node.target,
                                          process_target=processes.target, prometheus_target=f"127.0.0.1:{port}"),
                              port=port) as prometheus:
            payload = {"model": "course-model", "messages": [{"role": "user", "content": "Name a colour."}],
                       "max_tokens": 8, "ignore_eos": True}
            run = stream_load(gateway.base_url, [payload] * 4, concurrency=4)
            assert not run.errors, run.error_messages()
            prometheus.wait_for_value("sum(vllm:request_success_total)", 4, timeout_s=30)
            time.sleep(2)  # two more scrapes and rule evaluations
            yield {"vllm": vllm, "gateway": gateway, "node": node, "processes": processes, "prometheus": prometheus,
                   "traces": traces}


def sample_names(text):
    return {name for name, _ in parse_prometheus_text(text)}


@pytest.mark.server
def test_every_metric_name_exists_on_a_live_metrics_page(stack):
    pages = {"vllm": stack["vllm"].metrics_text(), "gateway": stack["gateway"].metrics_text()}
    for exporter in ("node", "processes"):
        pages[exporter] = requests.get(f"http://{stack[exporter].target}/metrics", timeout=30).text
    live = set().union(*(sample_names(text) for text in pages.values()))
    live |= {row["metric"]["__name__"] for row in stack["prometheus"].query('{job="prometheus"}')}
    recorded = {rule["record"] for rule in recording_rules()}
    needed = (metric_names_in_rules(RULES) | metric_names_in_dashboard(DASHBOARD_JSON)) - recorded - SYNTHETIC
    assert needed - live == set(), f"not exported by vLLM 0.32, the gateway or the exporters: {needed - live}"
    vllm_names = {name for name in needed if name.startswith("vllm:")}
    assert vllm_names and vllm_names <= sample_names(pages["vllm"])
    gateway_names = {name for name in needed if name.startswith("gateway_")}
    assert gateway_names and gateway_names <= sample_names(pages["gateway"])


@pytest.mark.server
def test_every_recording_rule_evaluates_to_a_series_and_the_targets_are_up(stack):
    prometheus = stack["prometheus"]
    expected_up = {job: "1" for job in ("vllm", "llm-gateway", "node", "process", "prometheus")}

    def targets_up():
        return {row["metric"]["job"]: row["value"][1] for row in prometheus.query("up")}

    def every_rule_recorded():
        return all(prometheus.query(rule["record"]) for rule in recording_rules())

    # The process job is scraped every 5 s and the rules evaluate every second: give both a few rounds.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: targets_up() == expected_up and every_rule_recorded(), timeout_s=20, interval_s=0.5)
    assert targets_up() == expected_up
    groups = requests.get(f"{prometheus.base_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(recording_rules()) and all(rule["health"] == "ok" for rule in rules), \
        [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    empty = [rule["record"] for rule in recording_rules() if not prometheus.query(rule["record"])]
    assert not empty, f"recorded no series (a label filter or metric name that matches nothing): {empty}"
    assert prometheus.value("job:vllm_num_requests_running:sum") is not None
    groups_seen = {row["metric"]["groupname"] for row in prometheus.query("namedprocess_namegroup_num_procs > 0")}
    assert {"vllm-engine-core", "vllm-api-server", "llm-gateway", "prometheus"} <= groups_seen


@pytest.mark.server
def test_vllm_request_spans_carry_the_breakdown_notebook_02_reads(stack):
    spans = stack["traces"].wait_for("llm_request", count=4, timeout_s=30)
    for span in spans:
        parts = [span.attributes[f"gen_ai.latency.time_in_{part}"] for part in ("queue", "model_prefill", "model_decode")]
        assert all(part >= 0 for part in parts)
        assert span.attributes["gen_ai.usage.completion_tokens"] == 8
        assert sum(parts) <= span.attributes["gen_ai.latency.e2e"] + 1e-3
        assert 0 < span.attributes["gen_ai.latency.time_to_first_token"] <= span.attributes["gen_ai.latency.e2e"]


@pytest.mark.server
def test_chromium_renders_prometheus_graph_page(stack, tmp_path):
    url = prometheus_graph_url(stack["prometheus"].base_url, ["job:vllm_num_requests_running:sum"], range_s=60)
    png = screenshot(url, tmp_path / "graph.png", window_size=(900, 700))
    assert png_size(png) == (900, 700) and png.stat().st_size > 10_000  # a rendered page, not a blank one


@pytest.mark.server
def test_every_metric_notebook_04s_alert_rules_read_is_on_the_live_vllm_and_gateway(stack):
    alert_rules = MONITORING / "rules" / "vllm-alerts.yml"
    gateway_text = stack["gateway"].metrics_text()
    live = exposed_metric_names(stack["vllm"].metrics_text()) | exposed_metric_names(gateway_text) | {"up"}
    assert metric_names_in_rules(alert_rules) <= live, sorted(metric_names_in_rules(alert_rules) - live)
    # the SLO rules read the chat route's counter and the 1 s bucket of the TTFT histogram
    assert 'route="/v1/chat/completions"' in gateway_text and 'le="1.0"' in gateway_text
