"""ops: production artefacts checked by their real tools (Prometheus config today; rules, manifests next)."""
