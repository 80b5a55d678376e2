"""Prometheus configuration as a checked artefact: templates filled with live ports, `promtool check config`.

Shared by both tracks (Triton 2.1 · 04 today; the Lab 2.5s next).
"""
from __future__ import annotations

import shutil
from pathlib import Path


def prometheus_config(template: str | Path, **values: object) -> str:
    """A Prometheus config from a template with `${name}` placeholders (e.g. ${metrics_target}).

    Every placeholder must be given and every value used: a forgotten one raises KeyError
    instead of leaving a config Prometheus would reject (or silently scrape nothing with).
    """
    import re
    from string import Template

    text = Path(template).read_text() if isinstance(template, Path) else str(template)
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    missing, unused = placeholders - set(values), set(values) - placeholders
    if missing or unused:
        raise KeyError(f"template placeholders {sorted(placeholders)}; missing {sorted(missing)}, "
                       f"unused {sorted(unused)}")
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def check_prometheus_config(text: str) -> str:
    """Validate a Prometheus config with the real `promtool check config`; return its output."""
    import subprocess
    import tempfile

    promtool = shutil.which("promtool")
    if promtool is None:
        raise FileNotFoundError("promtool is not installed: run `make setup-system`")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prometheus.yml"
        path.write_text(text)
        result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise ValueError(f"promtool rejected the config:\n{output}")
    return output
