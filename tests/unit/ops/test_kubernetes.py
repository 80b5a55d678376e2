"""llmserve.ops.kubernetes against small charts and manifests made in the test (helm and kubernetes-validate run)."""
import textwrap

import pytest

from llmserve.ops.kubernetes import (
    KubernetesArtefactError,
    _set_flags,
    container_spec,
    find_object,
    helm_lint,
    helm_template,
    startup_failure_threshold,
    validate_manifests,
)

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{
                              "name": "web", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
                              "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                              "startupProbe": {"httpGet": {"path": "/", "port": 80}, "failureThreshold": 3},
                              "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
                              "volumes": [{"name": "cfg", "emptyDir": {}}]}}}}


@pytest.fixture
def chart(tmp_path):
    root = tmp_path / "tiny"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (root / "values.yaml").write_text("replicas: 2\nname: web\n")
    (root / "values.schema.json").write_text(
        '{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}')
    (root / "templates" / "cm.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Values.name }}
        data:
          replicas: {{ .Values.replicas | quote }}
        """))
    return root


def test_startup_threshold_covers_margin_times_measured_start():
    assert startup_failure_threshold(54.0, period_s=5, margin=2.0) == 22      # 108 s -> 22 periods (110 s)
    assert startup_failure_threshold(140, period_s=10, margin=1.5) == 21     # exactly 210 s
    assert startup_failure_threshold(0.1, period_s=10, margin=1.0) == 1
    with pytest.raises(ValueError):
        startup_failure_threshold(10, period_s=5, margin=0.5)


def test_set_flags_keep_strings_as_strings():
    assert _set_flags({"a": "1", "b": 2, "c": True}) == ["--set-string", "a=1", "--set", "b=2", "--set", "c=true"]


def test_helm_renders_and_the_schema_refuses(chart):
    assert "0 chart(s) failed" in helm_lint(chart)
    docs = helm_template(chart, set_values={"replicas": 3})
    assert find_object(docs, "ConfigMap")["data"] == {"replicas": "3"}
    with pytest.raises(KubernetesArtefactError, match="replicas"):
        helm_template(chart, set_values={"replicas": 0})
    with pytest.raises(KubernetesArtefactError, match="helm lint failed"):
        helm_lint(chart, set_values={"replicas": 0})


def test_strict_validation_rejects_an_unknown_field_that_lenient_accepts():
    assert validate_manifests([DEPLOYMENT]) == ["Deployment/web"]
    typo = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replica": 2}}
    assert validate_manifests([typo], strict=False) == ["Deployment/web"]
    with pytest.raises(KubernetesArtefactError, match="'replica' was unexpected"):
        validate_manifests([typo])
    wrong_type = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": "two"}}
    with pytest.raises(KubernetesArtefactError, match="Deployment/web: spec.replicas: .two. is not of type .integer."):
        validate_manifests([wrong_type], strict=False)


def test_container_spec_reads_what_the_pod_would_run():
    spec = container_spec(DEPLOYMENT)
    assert spec.argv == ["nginx", "-g", "daemon off;"]
    assert spec.env == {"A": "1"}  # a value from the downward API has no literal value
    assert spec.probes["startupProbe"]["failureThreshold"] == 3
    assert spec.mounts == {"/etc/cfg": "cfg"}
    with pytest.raises(KubernetesArtefactError, match="expected one Service"):
        find_object([DEPLOYMENT], "Service")


def test_hpa_algorithm_scales_by_the_ratio_outside_the_tolerance():
    from llmserve.ops.kubernetes import hpa_desired_replicas
    assert hpa_desired_replicas(2, 50_000, 20_000, min_replicas=2, max_replicas=6) == 5   # ceil(2 x 2.5)
    assert hpa_desired_replicas(2, 21_000, 20_000, min_replicas=2, max_replicas=6) == 2   # within 10 %
    assert hpa_desired_replicas(2, 500_000, 20_000, min_replicas=2, max_replicas=6) == 6  # clamped
    assert hpa_desired_replicas(4, 0, 20_000, min_replicas=2, max_replicas=6) == 2        # idle: back to min


def test_adapter_query_placeholders_are_all_filled():
    from llmserve.ops.kubernetes import adapter_metrics_query
    query = adapter_metrics_query("sum by (<<.GroupBy>>) (rate(x{<<.LabelMatchers>>}[1m]))",
                                  group_by="pod", label_matchers='namespace="a"')
    assert query == 'sum by (pod) (rate(x{namespace="a"}[1m]))'
    with pytest.raises(KubernetesArtefactError, match="placeholders"):
        adapter_metrics_query("x{<<.Series>>}", group_by="pod", label_matchers="")
