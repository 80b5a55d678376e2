"""Triton Lab 2.5 · 03's monitoring files: the alert rules (promtool check and test), Alertmanager's config
(amtool check and routing), the Prometheus config, the admission-limited repository, and, on the real servers,
the two facts the notebook teaches: queue timeouts are counted as REJECTED, full-queue refusals are not; and
Alertmanager delivers a page to the webhook receiver."""
import concurrent.futures
import re
import time

import pytest
import requests
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.ops.alerting import (
    check_alertmanager_config,
    check_rules,
    metric_names_in_rules,
    route_receivers,
    run_rule_tests,
)
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import AlertmanagerServer, AlertWebhookReceiver, TritonServer
from llmserve.triton.model_config import lint_repository, parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.5-Production_Operations"
MONITORING = LAB / "monitoring"
RULES = MONITORING / "rules" / "triton-alerts.yml"
REPOSITORY = LAB / "repositories" / "alerting"


def alert_rules():
    return {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}


def test_rules_pass_promtool_and_their_tests():
    assert "SUCCESS: 6 rules found" in check_rules(RULES)
    assert "SUCCESS" in run_rule_tests(MONITORING / "rules" / "triton-alerts.test.yml")


def test_every_alert_has_a_severity_a_summary_a_for_and_a_test_case():
    tests = yaml.safe_load((MONITORING / "rules" / "triton-alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"] and rule["for"], name
        assert name in tested, f"{name} has no test case in which it fires"


def alertmanager_file(tmp_path):
    path = tmp_path / "alertmanager.yml"
    path.write_text(prometheus_config(MONITORING / "alertmanager.yml", webhook="127.0.0.1:9"))
    return path


def test_alertmanager_config_routes_critical_to_the_page_and_the_rest_to_chat(tmp_path):
    config = alertmanager_file(tmp_path)
    assert "SUCCESS" in check_alertmanager_config(config)
    for name, rule in alert_rules().items():
        expected = "oncall-page" if rule["labels"]["severity"] == "critical" else "team-chat"
        assert route_receivers(config, {"alertname": name, **rule["labels"]}) == [expected], name


def test_the_inhibition_rules_name_alerts_that_exist():
    names = set(alert_rules())
    inhibit = yaml.safe_load(prometheus_config(MONITORING / "alertmanager.yml", webhook="h:1"))["inhibit_rules"]
    for rule in inhibit:
        source = re.search(r'alertname="([^"]+)"', rule["source_matchers"][0]).group(1)
        assert source in names
        assert set(rule["equal"]) <= {"instance", "model"}  # labels the recorded series keep


def test_prometheus_config_is_valid_with_the_rules():
    text = prometheus_config(MONITORING / "prometheus-alerting.yml", triton_metrics="127.0.0.1:8002",
                             alertmanager="127.0.0.1:9093")
    assert "SUCCESS" in check_prometheus_config(text.replace("triton-alerts.yml", str(RULES)))


def test_the_repository_sheds_load_by_a_queue_timeout_and_bounds_the_queue():
    assert lint_repository(REPOSITORY) == {"ranker": [], "scorer": []}
    for model in ("scorer", "ranker"):
        policy = parse_model_config((REPOSITORY / model / "config.pbtxt").read_text()).dynamic_batching.default_queue_policy
        assert type(policy).TimeoutAction.Name(policy.timeout_action) == "REJECT"
        assert policy.default_timeout_microseconds == 100_000
        assert policy.max_queue_size == 32


REQUEST = {"inputs": [{"name": "X", "shape": [1, 16], "datatype": "FP32", "data": [0.1] * 16}]}


@pytest.mark.server
def test_timeouts_are_counted_as_rejected_and_full_queue_refusals_are_not():
    with TritonServer(REPOSITORY) as triton:
        metrics = triton.metrics_text()
        names = set(re.findall(r"^(\w+)", metrics, flags=re.M)) | {"up"}
        assert metric_names_in_rules(RULES) <= names
        url = f"http://{triton.http_url}/v2/models/scorer/infer"
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            replies = list(pool.map(lambda _: requests.post(url, json=REQUEST, timeout=30), range(256)))
        errors = [r.json()["error"] for r in replies if r.status_code != 200]
        assert all(r.status_code in (200, 503) for r in replies)
        timed_out = sum("Request timeout expired" in e for e in errors)
        full = sum("Exceeds maximum queue size" in e for e in errors)
        assert timed_out + full == len(errors) and full > 0
        counted = re.search(r'nv_inference_request_failure\{model="scorer",reason="REJECTED",version="1"\} (\d+)',
                            triton.metrics_text())
        assert int(counted.group(1)) == timed_out


@pytest.mark.server
def test_alertmanager_delivers_a_page_to_the_receiver_after_group_wait():
    with AlertWebhookReceiver() as receiver, AlertmanagerServer(
            prometheus_config(MONITORING / "alertmanager.yml", webhook=f"127.0.0.1:{receiver.port}")) as manager:
        labels = {"alertname": "TritonModelRejectingRequests", "severity": "critical", "instance": "t", "model": "m"}
        sent = time.time()
        requests.post(f"{manager.base_url}/api/v2/alerts", json=[{"labels": labels}], timeout=5).raise_for_status()
        page = receiver.wait_for("/page", "firing", timeout_s=20)
        assert page.alertnames == ["TritonModelRejectingRequests"]
        assert page.received_at - sent >= 2.5  # group_wait: 3s
        assert receiver.received("/chat") == []
        assert manager.alerts(alertname="TritonModelRejectingRequests")[0]["status"]["state"] == "active"
