"""vLLM Lab 2.5 · 04's monitoring files: the SLO and saturation alert rules (promtool check and test), their burn-rate
windows against the SRE Workbook's, Alertmanager's config (amtool check and routing), the Prometheus config; and, on
real servers, every metric the rules read on a live vLLM and gateway /metrics, and Alertmanager paging, chatting and
inhibiting as configured."""
import re
import time

import pytest
import requests
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.ops.alerting import (
    check_alertmanager_config,
    check_rules,
    route_receivers,
    run_rule_tests,
)
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import AlertmanagerServer, AlertWebhookReceiver
from llmserve.teach.formulas import burn_rate_threshold

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.5-Performance_Monitoring"
MONITORING = LAB / "monitoring"
RULES = MONITORING / "rules" / "vllm-alerts.yml"
RULE_TESTS = MONITORING / "rules" / "vllm-alerts.test.yml"
MONTH_S = 30 * 24 * 3600


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alert_rules():
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def alert_cases():
    return [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]


def test_rules_pass_promtool_and_their_tests():
    assert f"SUCCESS: {len(rules())} rules found" in check_rules(RULES)
    assert "SUCCESS" in run_rule_tests(RULE_TESTS)


def test_every_alert_is_complete_and_tested_firing_and_quiet():
    cases = alert_cases()
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["for"] and all(rule["annotations"].get(k) for k in ("summary", "description", "runbook")), name
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} has no test case in which it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{name} has no test case in which it stays quiet"
    for case in cases:  # a firing case's eval time is followed by a later quiet one: it resolves
        if case["exp_alerts"]:
            later = [c for c in cases if c["alertname"] == case["alertname"] and not c["exp_alerts"]
                     and int(c["eval_time"].rstrip("s")) > int(case["eval_time"].rstrip("s"))]
            assert later, f"{case['alertname']} is never shown to resolve"


def burn_alert(name):
    expr = " ".join(str(alert_rules()[name]["expr"]).split())
    windows = sorted(int(w) for w in re.findall(r"ratio_rate(\d+)s", expr))
    thresholds = {float(a) * float(b) for a, b in re.findall(r"> ([0-9.]+) \* ([0-9.]+)", expr)}
    return windows, thresholds


@pytest.mark.parametrize("slo", ["Latency", "Error"])
def test_burn_rate_alerts_are_the_workbook_pairs_scaled_by_60(slo):
    fast_windows, fast = burn_alert(f"{slo}SLOFastBurn")
    slow_windows, slow = burn_alert(f"{slo}SLOSlowBurn")
    budget = 0.01  # both SLOs are 99 %
    assert fast_windows == [5, 60] and slow_windows == [30, 360]
    assert len(fast) == len(slow) == 1  # both windows of a pair compare with the same threshold
    assert fast.pop() == pytest.approx(burn_rate_threshold(0.02, 3600, MONTH_S) * budget)
    assert slow.pop() == pytest.approx(burn_rate_threshold(0.05, 6 * 3600, MONTH_S) * budget)
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in (alert_rules()[f"{slo}SLOFastBurn"], alert_rules()[f"{slo}SLOSlowBurn"]):
        for name in re.findall(r"gateway:[a-z_0-9]+:ratio_rate\d+s", str(rule["expr"])):
            assert name in recorded, f"{name} is read but never recorded"
    assert alert_rules()[f"{slo}SLOFastBurn"]["labels"]["severity"] == "critical"


def test_the_latency_sli_reads_a_bucket_the_histograms_have():
    # prometheus_client and vLLM print the 1 s bucket edge as le="1.0"; a selector for le="1" would match nothing
    from gateway.metrics import TTFT_BUCKETS

    assert 1.0 in TTFT_BUCKETS
    assert all('le="1.0"' in str(rule["expr"]) for rule in rules() if "ttft_over_1s" in rule.get("record", ""))


def alertmanager_file(tmp_path, webhook="127.0.0.1:9"):
    path = tmp_path / "alertmanager.yml"
    path.write_text(prometheus_config(MONITORING / "alertmanager.yml", webhook=webhook))
    return path


def test_alertmanager_config_pages_for_critical_and_chats_the_rest(tmp_path):
    config = alertmanager_file(tmp_path)
    assert "SUCCESS" in check_alertmanager_config(config)
    for name, rule in alert_rules().items():
        expected = "oncall-page" if rule["labels"]["severity"] == "critical" else "team-chat"
        assert route_receivers(config, {"alertname": name, **rule["labels"]}) == [expected], name


def test_inhibition_rules_match_alerts_that_exist_and_labels_they_carry():
    names = set(alert_rules())
    inhibit = yaml.safe_load(prometheus_config(MONITORING / "alertmanager.yml", webhook="h:1"))["inhibit_rules"]
    for rule in inhibit:
        for side in ("source_matchers", "target_matchers"):
            matcher = rule[side][0]
            if "alertname" in matcher:
                pattern = re.search(r'alertname=~?"([^"]+)"', matcher).group(1)
                assert any(re.fullmatch(pattern, name) for name in names), matcher
    # the labels the rules compare are on the alerts they compare
    for case in alert_cases():
        for alert in case["exp_alerts"]:
            labels = alert["exp_labels"]
            if case["alertname"].endswith(("FastBurn", "SlowBurn")):
                assert "slo" in labels
            if labels["severity"] == "warning" or case["alertname"] == "LLMServiceTargetDown":
                assert "job" in labels, case["alertname"]


def test_prometheus_config_is_valid_with_the_rules():
    text = prometheus_config(MONITORING / "prometheus-alerting.yml", vllm_target="127.0.0.1:8000",
                             gateway_target="127.0.0.1:8080", gateway_limited_target="127.0.0.1:8081",
                             alertmanager="127.0.0.1:9093")
    assert "SUCCESS" in check_prometheus_config(text.replace("vllm-alerts.yml", str(RULES)))
    jobs = {job["job_name"] for job in yaml.safe_load(text)["scrape_configs"]}
    assert jobs == {"vllm", "gateway"}  # the names LLMServiceTargetDown and the SLO rules' `by (job)` expect


@pytest.mark.server
def test_alertmanager_pages_chats_and_inhibits_the_slow_burn(tmp_path):
    with AlertWebhookReceiver() as receiver, AlertmanagerServer(
            prometheus_config(MONITORING / "alertmanager.yml", webhook=f"127.0.0.1:{receiver.port}")) as manager:
        def alert(name):
            return {"labels": {"alertname": name, **alert_rules()[name]["labels"], "job": "gateway"}}

        sent = time.time()
        requests.post(f"{manager.base_url}/api/v2/alerts", timeout=5, json=[
            alert("LatencySLOFastBurn"), alert("LatencySLOSlowBurn"), alert("VLLMRequestsQueueing")]).raise_for_status()
        page = receiver.wait_for("/page", "firing", timeout_s=20)
        chat = receiver.wait_for("/chat", "firing", timeout_s=20)
        assert page.alertnames == ["LatencySLOFastBurn"] and chat.alertnames == ["VLLMRequestsQueueing"]
        assert page.received_at - sent >= 1.5  # group_wait: 2s
        slow = manager.alerts(alertname="LatencySLOSlowBurn")[0]["status"]
        assert slow["state"] == "suppressed" and slow["inhibitedBy"]
        assert not [n for n in receiver.notifications if "LatencySLOSlowBurn" in n.alertnames]
