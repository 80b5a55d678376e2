"""Triton Lab 2.5's deployment artefacts: the Helm chart (helm lint, helm template with its schema,
kubernetes-validate in strict mode), the Prometheus-adapter rule and scrape config, and the model repository
on the real server (raw HTTP, bad input). No cluster runs here, and no image is pulled."""
from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer

from llmserve.course.config import REPO_ROOT, config
from llmserve.measure.memory import shared_memory_files
from llmserve.ops.kubernetes import (
    KubernetesArtefactError,
    adapter_metrics_query,
    container_spec,
    find_object,
    helm_lint,
    helm_template,
    validate_manifests,
)
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import TritonServer

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.5-Production_Operations"
CHART = LAB / "deploy" / "helm" / "triton-server"
RULES = LAB / "deploy" / "prometheus-adapter" / "rules.yaml"


def test_chart_lints_and_every_object_passes_strict_validation():
    assert "0 chart(s) failed" in helm_lint(CHART)
    docs = helm_template(CHART)
    for version in ("1.27.0", None):
        assert sorted(label.split("/")[0] for label in validate_manifests(docs, kubernetes_version=version)) == [
            "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("override, field", [
    ({"image.tag": "latest"}, "image.tag"),
    ({"probes.liveness.path": "/v2/health/ready"}, "probes.liveness.path"),
    ({"probes.startup.path": "/healthz"}, "probes.startup.path"),
    ({"sharedMemorySize": "lots"}, "sharedMemorySize"),
    ({"ports.grpc": 70000}, "ports.grpc"),
    ({"autoscaling.queueTimeMetric": "queue:time"}, "autoscaling.queueTimeMetric"),
])
def test_schema_refuses_bad_values(override, field):
    with pytest.raises(KubernetesArtefactError, match=field.replace(".", r"\.")):
        helm_template(CHART, set_values=override)


def test_deployment_probes_shared_memory_and_volumes():
    deployment = find_object(helm_template(CHART, set_values={"sharedMemorySize": "52Mi"}), "Deployment")
    spec = container_spec(deployment)
    assert spec.command == ["tritonserver"] and "--model-repository=/models/repository" in spec.args
    assert "--strict-readiness=true" in spec.args
    assert spec.probes["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert spec.probes["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert spec.mounts["/dev/shm"] == "dshm" and spec.env["COURSE_MODEL_DIR"] == "/models/llm"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "52Mi"}
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    exit_timeout = int(next(a for a in spec.args if a.startswith("--exit-timeout-secs=")).split("=")[1])
    assert grace > exit_timeout, "the kubelet must not SIGKILL Triton while it drains"


def test_hpa_reads_the_metric_the_adapter_serves():
    rule = yaml.safe_load(RULES.read_text())["rules"][0]
    hpa = find_object(helm_template(CHART), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == rule["name"]["as"]
    query = adapter_metrics_query(rule["metricsQuery"], group_by="pod", label_matchers='namespace="course"')
    assert "nv_inference_queue_duration_us" in query and "<<" not in query


def test_scrape_config_labels_the_target_like_kubernetes_discovery():
    text = prometheus_config(LAB / "monitoring" / "prometheus.yml", triton_metrics="127.0.0.1:8002")
    assert "SUCCESS" in check_prometheus_config(text)
    labels = yaml.safe_load(text)["scrape_configs"][0]["static_configs"][0]["labels"]
    assert set(labels) == {"namespace", "pod"}


@pytest.mark.server
def test_repository_tokenizes_and_refuses_bad_input(raw_http):
    with TritonServer(LAB / "repositories" / "production") as server:
        url, text = server.http_url, raw_http.strings
        status, body = raw_http.infer(url, "tokenizer", {"TEXT": text("Kubernetes restarts pods.")})
        expected = AutoTokenizer.from_pretrained(config().model_dir).encode("Kubernetes restarts pods.",
                                                                             add_special_tokens=False)
        assert status == 200 and raw_http.outputs(body)["TOKEN_IDS"] == expected
        raw_http.expect(url, "tokenizer", {"TEXT": text(b"\xff")}, 400, "TEXT is not valid UTF-8", binary=True)
        raw_http.expect(url, "tokenizer", {"TEXT": text("a", "b")}, 400, "shape")
        pools = [p for p in shared_memory_files(server.process.pid) if "triton_python_backend_shm_region_" in p]
    assert len(pools) == 1, pools  # one model instance, one stub, one pool
    assert not any(Path(p).exists() for p in pools), "TritonServer.stop must remove the pools the stubs leave"
