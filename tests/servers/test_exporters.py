"""The Debian exporters as course servers: they start on a free port, export what they promise, and are gone after."""
import os
import re

import pytest
import requests

from llmserve.servers import NodeExporter, ProcessExporter, find_server_processes

pytestmark = pytest.mark.server

GROUPS = """
process_names:
  - name: this-test
    cmdline: ['pytest']
"""


def test_node_exporter_exports_the_machines_cpu_and_memory():
    with NodeExporter() as node:
        text = requests.get(f"http://{node.target}/metrics", timeout=10).text
        cpus = {m for m in re.findall(r'node_cpu_seconds_total\{cpu="(\d+)"', text)}
        assert len(cpus) == os.cpu_count()
        assert re.search(r"^node_memory_MemAvailable_bytes \S+", text, flags=re.M)
    assert not any("node-exporter --web" in line for line in find_server_processes())


def test_process_exporter_groups_processes_by_command_line():
    with ProcessExporter(GROUPS) as processes:
        text = requests.get(f"http://{processes.target}/metrics", timeout=10).text
        count = re.search(r'namedprocess_namegroup_num_procs\{groupname="this-test"\} (\d+)', text)
        assert count and int(count.group(1)) >= 1  # this pytest process
        assert 'namedprocess_namegroup_memory_bytes{groupname="this-test",memtype="resident"}' in text
    assert not any("process-exporter -config" in line for line in find_server_processes())
