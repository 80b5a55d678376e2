"""Triton Lab 2.5's CI pipeline: the workflow file (both validators, no remote action), the model repository it
checks (lint, its own tests), act running the workflow for real (a bad config stopped at lint, no server), and the
smoke test on the real server (every version, output data types)."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from llmserve.course.config import REPO_ROOT
from llmserve.ops.pipeline import commit, git_repository, lint, run_workflow, smoke_test, validate_workflow

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.5-Production_Operations"
WORKFLOW = "deploy/ci/model-repository.yml"
REPOSITORY = LAB / "repositories" / "pipeline"


def test_workflow_passes_both_validators_and_runs_only_its_own_commands():
    outputs = validate_workflow(LAB / WORKFLOW)
    assert outputs["check-jsonschema"] == "ok -- validation done"
    steps = yaml.safe_load((LAB / WORKFLOW).read_text())["jobs"]["pipeline"]["steps"]
    assert all("run" in step and "uses" not in step for step in steps)  # no remote action: GitHub is not reachable
    assert [s["name"] for s in steps] == ["check out", "lint config.pbtxt", "repository tests", "Triton smoke test",
                                         "promtool test rules", "canary gate"]
    assert "promtool test rules monitoring/rules/triton-alerts.test.yml" in steps[4]["run"]
    assert (LAB / "monitoring" / "rules" / "triton-alerts.test.yml").is_file()


def test_the_repository_lints_clean_and_its_own_tests_pass():
    clean, lines = lint(REPOSITORY)
    assert clean, lines
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "deploy/ci/tests"],
                            cwd=LAB, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_act_runs_the_workflow_and_a_wrong_dims_stops_at_lint(tmp_path):
    """A real act run that needs no server: the change fails the second step, so no Triton starts."""
    origin = tmp_path / "model-repository"
    git_repository(LAB, origin)
    config = origin / "repositories" / "pipeline" / "scorer" / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: [ 16 ]", "dims: [ 0 ]", 1))
    sha = commit(origin, "wrong dims")
    run = run_workflow(origin, WORKFLOW, event_payload={"repository": {"clone_url": str(origin)}}, timeout=120)
    assert run.job_result == "failure" and run.returncode != 0
    assert [s.result for s in run.steps] == ["success", "failure"] + ["skipped"] * 4
    assert sha[:7] in run.steps[0].output  # the step checked out the pushed commit
    assert "input X: dims [0]" in run.steps[1].output and run.steps[1].seconds > 0


@pytest.mark.server
def test_smoke_test_serves_every_version_and_checks_output_data_types(tmp_path):
    report = smoke_test(REPOSITORY)
    assert report.ok, report
    assert sorted(r.version for r in report.results) == ["1", "2"] and report.ready_s > 0
    # Triton passes a Python model's output dtype through unchecked: the smoke test compares it with the config.
    copy = tmp_path / "pipeline"
    shutil.copytree(REPOSITORY, copy)
    model_py = copy / "scorer" / "2" / "model.py"
    model_py.write_text(model_py.read_text() + (
        "\n    def outputs(self, scores):\n"
        "        return super().outputs(scores.astype('float64'))\n"))
    report = smoke_test(copy)
    failed = [r for r in report.results if not r.ok]
    assert [(r.version, r.detail) for r in failed] == [("2", "output SCORE is FP64, config says FP32")]
