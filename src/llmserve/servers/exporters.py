"""Prometheus exporters from Debian's packages, as context managers: the machine and its processes.

    with NodeExporter() as node, ProcessExporter(LAB / "monitoring" / "process-exporter.yml") as processes:
        ...  # scrape node.target and processes.target

- `NodeExporter` (prometheus-node-exporter): CPU, memory, load, disks and network of the machine.
- `ProcessExporter` (prometheus-process-exporter): CPU seconds, resident memory and thread counts per *group*
  of processes, grouped by the rules of its YAML config (e.g. everything whose command line names vLLM).

Used by vLLM Lab 2.5. Each listens on 127.0.0.1 on a free port and is gone after `with`.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from llmserve.servers.base import ManagedServer, ServerStartError, pick_port


def exporter_binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ServerStartError(f"{name} is not installed: run `make setup-system` (installs Debian's {name}).")
    return found


class NodeExporter(ManagedServer):
    """node_exporter with its default collectors, plus any `extra_args` (e.g. ["--no-collector.arp"])."""

    name = "node-exporter"

    def __init__(self, *, port: int | None = None, extra_args: Sequence[str] = (), start_timeout: float = 30.0,
                 **kwargs):
        binary = exporter_binary("prometheus-node-exporter")
        self.port = pick_port(port)
        super().__init__([binary, f"--web.listen-address=127.0.0.1:{self.port}", *extra_args],
                         health_url=f"http://127.0.0.1:{self.port}/metrics", ports=[self.port],
                         start_timeout=start_timeout, **kwargs)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class ProcessExporter(ManagedServer):
    """process-exporter with a process-grouping config (YAML text or file)."""

    name = "process-exporter"

    def __init__(self, config_yaml: str | Path, *, port: int | None = None, start_timeout: float = 30.0, **kwargs):
        binary = exporter_binary("prometheus-process-exporter")
        self.workdir = Path(tempfile.mkdtemp(prefix="process-exporter-"))
        text = Path(config_yaml).read_text() if isinstance(config_yaml, Path) else str(config_yaml)
        self.config_file = self.workdir / "process-exporter.yml"
        self.config_file.write_text(text)
        self.port = pick_port(port)
        # -recheck: match processes on every scrape, so a server started after the exporter is found
        super().__init__([binary, f"-config.path={self.config_file}", f"-web.listen-address=127.0.0.1:{self.port}",
                          "-recheck", "-threads=false"],
                         health_url=f"http://127.0.0.1:{self.port}/metrics", ports=[self.port], cwd=self.workdir,
                         start_timeout=start_timeout, **kwargs)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        shutil.rmtree(self.workdir, ignore_errors=True)
