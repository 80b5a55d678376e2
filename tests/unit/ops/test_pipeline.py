"""llmserve.ops.pipeline without a server: lint lines and exit codes, example requests, output checks, act's log,
the git helpers, and the clear errors when a tool is missing."""
import json
import subprocess

import numpy as np
import pytest

from llmserve.ops import pipeline
from llmserve.triton.model_config import parse_model_config

CONFIG = '''name: "scorer"
backend: "python"
max_batch_size: 8
input [ { name: "X", data_type: TYPE_FP32, dims: [ 4 ] }, { name: "T", data_type: TYPE_STRING, dims: [ -1 ] } ]
output [ { name: "SCORE", data_type: TYPE_FP32, dims: [ 1 ] } ]
'''


def repository(tmp_path, config=CONFIG):
    (tmp_path / "scorer" / "1").mkdir(parents=True)
    (tmp_path / "scorer" / "config.pbtxt").write_text(config)
    (tmp_path / "scorer" / "1" / "model.py").write_text("class TritonPythonModel:\n    pass\n")
    return tmp_path


def test_lint_command_exits_0_when_clean_and_1_with_the_problem(tmp_path, capsys):
    repo = repository(tmp_path)
    assert pipeline.main(["lint", str(repo)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "ok    scorer"
    (repo / "scorer" / "config.pbtxt").write_text(CONFIG.replace("dims: [ 4 ]", "dims: [ 0 ]"))
    assert pipeline.main(["lint", str(repo)]) == 1
    assert "ERROR scorer: input X: dims [0]" in capsys.readouterr().out


def test_lint_of_an_empty_folder_fails(tmp_path):
    clean, lines = pipeline.lint(tmp_path)
    assert not clean and "no model folder" in lines[0]


def test_example_request_follows_the_config():
    body = pipeline.example_request(CONFIG, values=np.arange(4))
    x, t = body["inputs"]
    assert x == {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0.0, 1.0, 2.0, 3.0]}
    assert t == {"name": "T", "shape": [1, 1], "datatype": "BYTES", "data": ["smoke"]}
    unbatched = pipeline.example_request(CONFIG.replace("max_batch_size: 8", "max_batch_size: 0"))
    assert unbatched["inputs"][0]["shape"] == [4] and unbatched["inputs"][0]["data"] == [0.0] * 4


@pytest.mark.parametrize("outputs, problem", [
    ([{"name": "SCORE", "datatype": "FP32", "shape": [1, 1]}], None),
    ([], "output SCORE missing"),
    ([{"name": "SCORE", "datatype": "FP64", "shape": [1, 1]}], "output SCORE is FP64, config says FP32"),
    ([{"name": "SCORE", "datatype": "FP32", "shape": [1, 2]}], "has shape [1, 2], config says [1, 1]"),
    ([{"name": "SCORE", "datatype": "FP32", "shape": [1]}], "has shape [1]"),
])
def test_outputs_are_checked_against_names_shapes_and_data_types(outputs, problem):
    found = pipeline._check_outputs(parse_model_config(CONFIG), {"outputs": outputs})
    assert (found is None) if problem is None else (problem in found)


def _line(**fields):
    return json.dumps({"job": "model-repository/pipeline", "level": "info", **fields})


def test_act_json_log_gives_results_durations_outputs_and_skipped_steps():
    lines = [
        _line(msg="⭐ Run Set up job", step="Set up job"),
        _line(msg="  ✅  Success - Set up job", step="Set up job", stepResult="success"),
        _line(msg="ok    scorer\n", raw_output=True, step="lint"),
        _line(msg="  ✅  Success - Main lint", step="lint", stepResult="success", executionTime=1_250_000_000),
        _line(msg="\x1b[31mFAILED\x1b[0m v2\n", raw_output=True, step="smoke"),
        _line(msg="  ❌  Failure - Main smoke", step="smoke", stepResult="failure", executionTime=5_500_000_000),
        _line(msg="exit status 1", step="smoke", level="error"),
        _line(msg="🏁  Job failed", jobResult="failure"),
        json.dumps({"level": "warning", "msg": "unable to get git ref: reference not found"}),
        "Error: Job 'pipeline' failed",
    ]
    job, steps, log = pipeline.parse_act_log(lines, ["lint", "smoke", "canary"])
    assert job == "failure"
    assert [(s.name, s.result, s.seconds) for s in steps] == [
        ("lint", "success", 1.25), ("smoke", "failure", 5.5), ("canary", "skipped", None)]
    assert steps[0].output == "ok    scorer\n" and steps[1].output == "FAILED v2\n"  # terminal colours removed
    assert "exit status 1" in log and "git ref" not in log and "Error: Job 'pipeline' failed" in log
    run = pipeline.WorkflowRun(job, steps, 7.0, 1, log)
    assert run.failed_step == "smoke" and "canary" in run.table()


def test_step_names_come_from_the_workflow(tmp_path):
    workflow = tmp_path / "wf.yml"
    workflow.write_text("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - name: one\n        run: true\n"
                        "      - run: echo two\n")
    assert pipeline.workflow_step_names(workflow) == ["one", "echo two"]


def test_git_repository_and_commit_make_a_history(tmp_path):
    source = repository(tmp_path / "source")
    (source / "notes.ipynb").write_text("{}")  # notebooks are not part of the model repository
    first = pipeline.git_repository(source, tmp_path / "repo")
    (tmp_path / "repo" / "scorer" / "config.pbtxt").write_text(CONFIG.replace("8", "4"))
    second = pipeline.commit(tmp_path / "repo", "change")
    log = subprocess.run(["git", "-C", str(tmp_path / "repo"), "log", "--format=%H"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert log == [second, first]
    assert not (tmp_path / "repo" / "notes.ipynb").exists()


def test_missing_tools_give_the_command_that_installs_them(monkeypatch):
    monkeypatch.setattr(pipeline.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(pipeline.PipelineError, match=r"act is not installed: run `make setup`"):
        pipeline.act_binary()
    with pytest.raises(pipeline.PipelineError, match="check-jsonschema is not installed"):
        pipeline.workflow_checks("wf.yml")
