"""vLLM Lab 2.4's Helm chart, checked by the real tools: helm lint, helm template with values.schema.json,
kubernetes-validate in strict mode; and its container command parsed by vLLM's own argument parser.
No cluster runs here, and no image is pulled."""
import tempfile
from pathlib import Path

import pytest
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.ops.kubernetes import (
    KubernetesArtefactError,
    container_spec,
    find_object,
    helm_lint,
    helm_template,
    validate_manifests,
)

CHART = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.4-Production_Deployment" / "deploy" / "helm" / "vllm-server"


def test_chart_lints_strictly():
    assert "0 chart(s) failed" in helm_lint(CHART)


@pytest.mark.parametrize("kubernetes_version", ["1.27.0", None])  # the chart's kubeVersion floor and the newest
def test_rendered_objects_pass_strict_validation(kubernetes_version):
    docs = helm_template(CHART)
    checked = validate_manifests(docs, kubernetes_version=kubernetes_version)
    assert sorted(label.split("/")[0] for label in checked) == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


def test_without_autoscaling_the_deployment_owns_the_replica_count():
    docs = helm_template(CHART, set_values={"autoscaling.enabled": False, "replicaCount": 3,
                                            "podDisruptionBudget.enabled": False})
    validate_manifests(docs)
    assert find_object(docs, "Deployment")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]
    with_hpa = find_object(helm_template(CHART), "Deployment")
    assert "replicas" not in with_hpa["spec"]  # the HPA owns it; a fixed count would fight the HPA on every upgrade


@pytest.mark.parametrize("override, field", [
    ({"image.tag": "latest"}, "image.tag"),
    ({"replicaCount": 0}, "replicaCount"),
    ({"engine.port": 9000}, "engine"),            # host and port belong to the probes, not the engine file
    ({"engine.dtype": "fp8"}, "engine.dtype"),
    ({"env.VLLM_CPU_KVCACHE_SPACE": "0.5"}, "VLLM_CPU_KVCACHE_SPACE"),
    ({"probes.startup.path": "health"}, "probes.startup.path"),
    ({"replicas": 2}, "replicas"),                # a misspelt top-level key
    ({"autoscaling.targetCPUUtilizationPercentage": 150}, "targetCPUUtilizationPercentage"),
])
def test_schema_refuses_bad_values(override, field):
    with pytest.raises(KubernetesArtefactError, match=field.replace(".", r"\.")):
        helm_template(CHART, set_values=override)


def test_deployment_wires_probes_config_and_volumes():
    docs = helm_template(CHART, set_values={"probes.port": 8123, "probes.startup.failureThreshold": 22})
    deployment = find_object(docs, "Deployment")
    spec = container_spec(deployment)
    assert spec.args[:2] == ["--config", "/etc/vllm/engine.yaml"] and spec.args[-1] == "8123"
    assert spec.probes["startupProbe"]["failureThreshold"] == 22
    assert {p["httpGet"]["port"] for p in spec.probes.values()} == {"http"}
    assert spec.mounts["/etc/vllm"] == "engine-config" and spec.mounts["/dev/shm"] == "dshm"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    changed = find_object(helm_template(CHART, set_values={"engine.max-num-seqs": 8}), "Deployment")
    assert changed["spec"]["template"]["metadata"]["annotations"]["checksum/engine-config"] != \
        annotations["checksum/engine-config"], "a new engine config must roll the pods"


def test_hpa_scales_on_the_waiting_queue():
    hpa = find_object(helm_template(CHART), "HorizontalPodAutoscaler")
    pods_metric = next(m for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
    assert pods_metric["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    assert hpa["spec"]["minReplicas"] >= find_object(helm_template(CHART), "PodDisruptionBudget")["spec"]["minAvailable"] + 1


@pytest.mark.model
def test_container_command_is_one_vllm_parses():
    """The rendered command and engine file, through vLLM's own parser and engine-config checks."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from llmserve.course.assets import model_path

    docs = helm_template(CHART, set_values={"model.path": str(model_path())})
    spec = container_spec(find_object(docs, "Deployment"))
    assert spec.command == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    engine_file = Path(tempfile.mkdtemp()) / "engine.yaml"
    engine_file.write_text(find_object(docs, "ConfigMap")["data"]["engine.yaml"])
    assert yaml.safe_load(engine_file.read_text())["served-model-name"] == "smollm2-135m"
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(
        [str(engine_file) if a == "/etc/vllm/engine.yaml" else a for a in spec.args])
    assert (args.port, args.max_num_seqs, args.dtype) == (8000, 16, "float32")
    AsyncEngineArgs.from_cli_args(args).create_engine_config()  # raises on a flag vLLM refuses
