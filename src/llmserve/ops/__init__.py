"""ops: production artefacts checked by their real tools: Prometheus configs (promtool), Helm charts and
Kubernetes manifests (helm, kubernetes-validate)."""
