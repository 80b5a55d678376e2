"""vLLM Lab 2.4 · 04's autoscaling files: the Prometheus-adapter rule serves the metric the chart's HPA reads, its
query parses (promtool) and, on a real Prometheus scraping a stand-in vLLM /metrics page, returns the page's queue
length per pod, from which the HPA's replica count follows; the scrape config passes promtool. The adapter itself
(and a cluster) does not run here: its rule file is not a Kubernetes object, so its structure is checked here.
One test runs vLLM's batch runner for real (marker `model`)."""
import http.server
import threading

import pytest
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.ops.alerting import AlertingArtefactError, check_rules
from llmserve.ops.kubernetes import adapter_metrics_query, find_object, helm_template, hpa_desired_replicas
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import PrometheusServer, VLLMBatchJob, find_server_processes

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.4-Production_Deployment"
CHART = LAB / "deploy" / "helm" / "vllm-server"
RULES = LAB / "deploy" / "prometheus-adapter" / "rules.yaml"
SCRAPE = LAB / "monitoring" / "prometheus-autoscaling.yml"
MATCHERS = 'namespace="course",pod=~"vllm-server-.*"'


def adapter_rule() -> dict:
    rules = yaml.safe_load(RULES.read_text())["rules"]
    assert len(rules) == 1
    return rules[0]


def test_adapter_rule_serves_the_metric_the_hpa_reads():
    rule = adapter_rule()
    hpa = find_object(helm_template(CHART), "HorizontalPodAutoscaler")
    pods = next(m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
    assert pods["metric"]["name"] == rule["name"]["as"]
    assert pods["target"]["type"] == "AverageValue"
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    assert rule["seriesQuery"].startswith("vllm:num_requests_waiting{")
    assert "<<.GroupBy>>" in rule["metricsQuery"] and "<<.LabelMatchers>>" in rule["metricsQuery"]


def test_filled_adapter_query_is_valid_promql(tmp_path):
    query = adapter_metrics_query(adapter_rule()["metricsQuery"], group_by="pod", label_matchers=MATCHERS)
    assert "<<" not in query and "vllm:num_requests_waiting" in query
    rules = tmp_path / "adapter.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "adapter", "rules": [
        {"record": "pod:vllm_num_requests_waiting", "expr": query}]}]}))
    assert "SUCCESS" in check_rules(rules)


def test_a_broken_query_is_refused_by_promtool(tmp_path):
    rules = tmp_path / "broken.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "adapter", "rules": [
        {"record": "x", "expr": "sum by (pod) (vllm:num_requests_waiting{pod=})"}]}]}))
    with pytest.raises(AlertingArtefactError, match="promtool check rules"):
        check_rules(rules)


def test_scrape_config_labels_the_target_like_kubernetes_discovery():
    text = prometheus_config(SCRAPE, vllm_metrics="127.0.0.1:8000")
    assert "SUCCESS" in check_prometheus_config(text)
    labels = yaml.safe_load(text)["scrape_configs"][0]["static_configs"][0]["labels"]
    assert set(labels) == set(adapter_rule()["resources"]["overrides"])
    with pytest.raises(KeyError, match="vllm_metrics"):
        prometheus_config(SCRAPE)


class FakeVLLMMetrics(http.server.BaseHTTPRequestHandler):
    """A /metrics page with vLLM's queue gauge (two model names in one pod: the rule sums them)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = (b"# TYPE vllm:num_requests_waiting gauge\n"
                b'vllm:num_requests_waiting{model_name="a"} 5\n'
                b'vllm:num_requests_waiting{model_name="b"} 2\n')
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.server
def test_adapter_query_on_a_live_prometheus_gives_the_hpa_its_replicas():
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeVLLMMetrics)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    try:
        text = prometheus_config(SCRAPE, vllm_metrics=f"127.0.0.1:{target.server_address[1]}")
        with PrometheusServer(text) as prometheus:
            prometheus.wait_for_value('up{job="vllm"}', 1.0)
            query = adapter_metrics_query(adapter_rule()["metricsQuery"], group_by="pod", label_matchers=MATCHERS)
            prometheus.wait_for_value(query, 7.0)
            result = prometheus.query(query)
            assert [r["metric"] for r in result] == [{"pod": "vllm-server-0"}]
        hpa = find_object(helm_template(CHART), "HorizontalPodAutoscaler")
        target_per_pod = float(next(m for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
                               ["pods"]["target"]["averageValue"])
        desired = hpa_desired_replicas(hpa["spec"]["minReplicas"], 7.0, target_per_pod,
                                       min_replicas=hpa["spec"]["minReplicas"], max_replicas=hpa["spec"]["maxReplicas"])
        assert desired == min(hpa["spec"]["maxReplicas"], -(-hpa["spec"]["minReplicas"] * 7 // int(target_per_pod)))
    finally:
        target.shutdown()
        target.server_close()


@pytest.mark.server
@pytest.mark.model
def test_vllm_batch_runner_runs_a_held_batch_and_leaves_nothing():
    bodies = [{"model": "course-model", "messages": [{"role": "user", "content": f"Count to {n}."}],
               "max_tokens": 4, "min_tokens": 4, "temperature": 0} for n in (2, 3)]
    with VLLMBatchJob(bodies, served_model_name="course-model", extra_args=["--max-num-seqs", "2"]) as job:
        assert job.startup_cpu_seconds > 1  # it imported vLLM and started an engine before asking for input
        result = job.run()
    assert result.exit_code == 0 and result.ok == 2 and not result.errors
    assert result.output_tokens == 8 and set(result.texts()) == {"request-0", "request-1"}
    assert 0 < result.batch_cpu_seconds and 0 < result.batch_seconds < result.startup_seconds
    assert not any(f"{job.store.port}" in line for line in find_server_processes())
