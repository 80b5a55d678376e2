"""ops.alerting with the real promtool and amtool: refusals carry the tool's message; rule metric names."""
import textwrap

import pytest

from llmserve.ops.alerting import (
    AlertingArtefactError,
    check_alertmanager_config,
    check_rules,
    metric_names_in_rules,
    route_receivers,
    run_rule_tests,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


RULES = """
groups:
  - name: g
    rules:
      - record: job:errors:rate5m
        expr: sum by (job) (rate(http_errors_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))
      - alert: ManyErrors
        expr: job:errors:rate5m > 0.05 and on (job) up == 1
        for: 1m
        labels: {severity: critical}
"""


def test_metric_names_are_the_scraped_series_only(tmp_path):
    rules = write(tmp_path, "r.yml", RULES)
    # functions, keywords, labels, strings, windows and the recorded name itself are not metrics
    assert metric_names_in_rules(rules) == {"http_errors_total", "http_requests_total", "up"}


def test_rule_tests_fire_and_a_wrong_expectation_is_reported(tmp_path):
    write(tmp_path, "r.yml", RULES)
    case = """
    rule_files: [r.yml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          - series: 'http_errors_total{job="api",code="500"}'
            values: '0+10x10'
          - series: 'http_requests_total{job="api"}'
            values: '0+100x10'
          - series: 'up{job="api"}'
            values: '1x10'
        alert_rule_test:
          - eval_time: 10m
            alertname: ManyErrors
            exp_alerts: [{exp_labels: {severity: critical, job: api}}]
    """
    assert "SUCCESS" in run_rule_tests(write(tmp_path, "ok.test.yml", case))
    wrong = case.replace("exp_alerts: [{exp_labels: {severity: critical, job: api}}]", "exp_alerts: []")
    with pytest.raises(AlertingArtefactError, match="ManyErrors"):
        run_rule_tests(write(tmp_path, "wrong.test.yml", wrong))


def test_bad_promql_is_refused_with_promtools_message(tmp_path):
    with pytest.raises(AlertingArtefactError, match="parse error"):
        check_rules(write(tmp_path, "bad.yml", RULES.replace("sum by (job) (rate(", "sum by (job) (rate((", 1)))


AM = """
route:
  receiver: chat
  routes:
    - matchers: ['severity="critical"']
      receiver: page
receivers:
  - name: chat
  - name: page
"""


def test_alertmanager_routing(tmp_path):
    config = write(tmp_path, "am.yml", AM)
    assert "SUCCESS" in check_alertmanager_config(config)
    assert route_receivers(config, {"alertname": "X", "severity": "critical"}) == ["page"]
    assert route_receivers(config, {"alertname": "X", "severity": "warning"}) == ["chat"]


def test_alertmanager_config_with_an_unknown_receiver_is_refused():
    with pytest.raises(AlertingArtefactError, match="undefined receiver"):
        check_alertmanager_config(AM.replace("receiver: page", "receiver: pager"))
