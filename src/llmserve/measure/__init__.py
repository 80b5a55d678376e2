"""measure: produces numbers against something running (load, Prometheus text, memory, baselines)."""
