"""ServeBenchmark's protocol (import first, then arguments on stdin, result JSON back), with a fake
runner in place of vLLM's benchmark so that nothing heavy is imported."""
import pytest

from llmserve.measure.vllm_bench import RUNNER, BenchmarkError, ServeBenchmark

FAKE = """\
import json, sys
print("[runner] imported in 0.0 s", flush=True)
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
argv = json.loads(line)
if "--fail" in argv:
    print("boom", flush=True)
    sys.exit(3)
value = lambda name: argv[argv.index(name) + 1]
print("============ Serving Benchmark Result ============")
print("Request throughput (req/s):              1.50")
print("==================================================")
print("after the block")
result = {"argv": argv, "request_throughput": 1.5, "median_ttft_ms": 120.0}
with open(value("--result-dir") + "/" + value("--result-filename"), "w") as f:
    json.dump(result, f)
"""


def test_run_sends_arguments_and_returns_the_saved_result():
    with ServeBenchmark(runner=FAKE) as bench:
        result = bench.run(["--request-rate", 2, "--num-prompts", "8"])
    assert result["request_throughput"] == 1.5 and result["median_ttft_ms"] == 120.0
    argv = result["argv"]
    assert argv[:4] == ["--request-rate", "2", "--num-prompts", "8"]
    assert "--save-result" in argv and "--save-detailed" in argv
    assert bench.run_seconds is not None and bench.process.returncode == 0
    assert bench.report().splitlines()[1].startswith("Request throughput")
    assert "after the block" not in bench.report()


FAKE_MANY = """\
import json, sys
print("[runner] imported in 0.0 s", flush=True)
while (line := sys.stdin.readline()).strip():   # the real runner's loop: one run per line
    argv = json.loads(line)
    value = lambda name: argv[argv.index(name) + 1]
    rate = float(value("--request-rate"))
    print("============ Serving Benchmark Result ============")
    print(f"Request rate configured (RPS):           {rate:.2f}")
    print("==================================================")
    with open(value("--result-dir") + "/" + value("--result-filename"), "w") as f:
        json.dump({"request_rate": rate}, f)
"""


def test_run_many_runs_each_argument_list_in_one_process_in_order():
    with ServeBenchmark(runner=FAKE_MANY) as bench:
        results = bench.run_many([["--request-rate", rate] for rate in (1, 2.5, 4)])
        assert [r["request_rate"] for r in results] == [1.0, 2.5, 4.0]
        assert "2.50" in bench.report(1) and "4.00" in bench.report(-1) and "1.00" in bench.report()
        assert bench.report(3) == "" and bench.report(1).count("Serving Benchmark Result") == 1
    with ServeBenchmark(runner=FAKE_MANY) as bench, pytest.raises(ValueError, match="at least one"):
        bench.run_many([])


def test_wait_ready_returns_once_imported_and_fails_if_the_process_dies():
    with ServeBenchmark(runner=FAKE) as bench:
        assert bench.wait_ready(timeout=30) >= 0 and bench.import_seconds == 0.0
    with ServeBenchmark(runner="import sys; sys.exit(5)") as dead, pytest.raises(BenchmarkError, match="code 5"):
        dead.wait_ready(timeout=30)


def test_failures_raise_with_the_output():
    with ServeBenchmark(runner=FAKE) as bench, pytest.raises(BenchmarkError, match="code 3(.|\n)*boom"):
        bench.run(["--fail"])
    with ServeBenchmark(runner=FAKE) as bench, pytest.raises(ValueError, match="set by ServeBenchmark"):
        bench.run(["--result-dir", "/tmp"])


def test_closing_ends_a_waiting_runner():
    bench = ServeBenchmark(runner=FAKE)
    bench.close()
    assert bench.process.poll() is not None
    with pytest.raises(BenchmarkError, match="already ended"):
        bench.run(["--num-prompts", "1"])


def test_the_real_runner_matches_the_installed_vllm():
    """The runner relies on names in vLLM's source; read them without importing vLLM (slow)."""
    import importlib.util
    from pathlib import Path

    compile(RUNNER, "runner", "exec")
    assert "[runner] imported in" in RUNNER and "setpriority" in RUNNER
    package = Path(importlib.util.find_spec("vllm").origin).parent  # a top-level spec imports nothing
    serve = (package / "benchmarks" / "serve.py").read_text()
    assert "def add_cli_args(parser" in serve and "def main(args" in serve
    assert "__main__" not in serve, "vLLM's module gained a main block: `python -m` may work now"
    argparse_utils = (package / "utils" / "argparse_utils.py").read_text()
    assert "class FlexibleArgumentParser" in argparse_utils
