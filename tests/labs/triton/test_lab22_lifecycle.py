"""Triton Lab 2.2 · 03/04: the canary rollout controller (pure units, fed-in records) and the
`lifecycle` and `advanced` repositories on the real server (one explicit-mode server for both).
"""
import json
import re
import threading

import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.teach.rollout import (
    CANARY,
    NEXT,
    PROMOTE,
    ROLLBACK,
    STABLE,
    ArmStats,
    CanaryController,
    Thresholds,
    arm_stats,
    judge,
)

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.2-Multi_Model_Management"
LIFECYCLE, ADVANCED = LAB / "repositories" / "lifecycle", LAB / "repositories" / "advanced"
ADVANCED_MODELS = ["mlp_1x", "mlp_2x", "mlp_batcher", "mlp_cache", "mlp_limited", "mlp_priority", "mlp_queue"]


# ---------- the controller, with fed-in records (no server, no timing) ----------

def feed(controller, *, stable=(0, 0.010), canary=(0, 0.010)):
    """Record one stage: the requests the controller asks for, each arm with (errors every n-th
    request or 0 for none, latency seconds)."""
    seen = {STABLE: 0, CANARY: 0}
    for i in range(controller.requests_needed()):
        arm = controller.route(i)
        every, latency = stable if arm == STABLE else canary
        seen[arm] += 1
        controller.record(arm, not (every and seen[arm] % every == 0), latency)
    return controller.decide()


def test_route_sends_exactly_the_stage_weight_evenly_spread():
    controller = CanaryController(stages=(0.05, 0.25, 1.0))
    arms = [controller.route(i) for i in range(100)]
    assert arms.count(CANARY) == 5
    assert [i for i, arm in enumerate(arms) if arm == CANARY] == [19, 39, 59, 79, 99]
    controller.stage = 1
    assert [controller.route(i) for i in range(100)].count(CANARY) == 25
    controller.stage = 2
    assert {controller.route(i) for i in range(10)} == {CANARY}


def test_requests_needed_gives_the_canary_its_minimum():
    controller = CanaryController(stages=(0.05, 0.5), thresholds=Thresholds(min_requests=20))
    assert controller.requests_needed() == 400
    assert sum(controller.route(i) == CANARY for i in range(controller.requests_needed())) == 20


def test_a_healthy_canary_goes_through_every_stage_and_is_promoted():
    controller = CanaryController(stages=(0.05, 0.25, 0.5, 1.0))
    actions = [feed(controller).action for _ in range(4)]
    assert actions == [NEXT, NEXT, NEXT, PROMOTE]
    assert controller.finished and controller.outcome == PROMOTE
    assert controller.decisions[-1].stable.requests > 0  # at 100% it compares with the last stable arm
    with pytest.raises(RuntimeError):
        controller.decide()


def test_an_erroring_canary_is_rolled_back_at_the_first_stage():
    controller = CanaryController()
    decision = feed(controller, canary=(5, 0.010))  # 20% errors
    assert decision.action == ROLLBACK and decision.stage == 0
    assert decision.canary.error_rate == pytest.approx(0.2) and decision.stable.error_rate == 0
    assert any("error rate" in r and ">" in r for r in decision.reasons)
    assert controller.outcome == ROLLBACK


def test_a_slow_canary_is_rolled_back_on_p95():
    decision = feed(CanaryController(), canary=(0, 0.040))
    assert decision.action == ROLLBACK
    assert decision.canary.p95_ms == pytest.approx(40) and decision.stable.p95_ms == pytest.approx(10)
    assert any("p95" in r and "> x1.5" in r for r in decision.reasons)


def test_latency_needs_both_ratio_and_absolute_difference():
    thresholds = Thresholds(max_p95_ratio=1.5, min_p95_delta_ms=2.0)
    assert judge(ArmStats(100, 0, 1.0), ArmStats(100, 0, 2.5), thresholds)[0]        # x2.5 but only +1.5 ms
    assert not judge(ArmStats(100, 0, 10.0), ArmStats(100, 0, 16.0), thresholds)[0]  # x1.6 and +6 ms
    assert judge(ArmStats(100, 0, 10.0), ArmStats(100, 0, 14.0), thresholds)[0]      # +4 ms but x1.4


def test_error_threshold_is_relative_to_the_stable_arm():
    thresholds = Thresholds(max_error_rate_increase=0.02)
    assert judge(ArmStats(100, 10, 5.0), ArmStats(100, 11, 5.0), thresholds)[0]
    assert not judge(ArmStats(100, 0, 5.0), ArmStats(100, 3, 5.0), thresholds)[0]
    assert not judge(ArmStats(100, 0, 5.0), ArmStats(20, 20, None), thresholds)[0]  # nothing succeeded


def test_too_few_canary_requests_is_no_decision():
    controller = CanaryController(thresholds=Thresholds(min_requests=20))
    for _ in range(19):
        controller.record(CANARY, True, 0.01)
    with pytest.raises(ValueError, match="only 19 canary requests"):
        controller.decide()


def test_arm_stats_and_stage_validation():
    stats = arm_stats([(True, 0.001 * i) for i in range(1, 101)] + [(False, 5.0)] * 10)
    assert (stats.requests, stats.errors) == (110, 10)
    assert stats.p95_ms == pytest.approx(95.05)  # failed requests do not enter the latency
    for bad in ((), (0.5, 0.25), (0.0, 1.0), (0.5, 1.5)):
        with pytest.raises(ValueError):
            CanaryController(stages=bad)


# ---------- the repositories on the real server ----------

@pytest.fixture(scope="module")
def server():
    from llmserve.course.config import config
    from llmserve.servers import TritonServer
    caches = config().triton_dir / "pytriton" / "tritonserver" / "caches"
    with TritonServer(LIFECYCLE, model_control="explicit",
                      extra_args=[f"--model-repository={ADVANCED}", "--rate-limit=execution_count",
                                  "--rate-limit-resource=cpu_slot:1", "--cache-config=local,size=1048576",
                                  f"--cache-directory={caches}"]) as running:
        yield running


def _input(x):
    import tritonclient.grpc as grpcclient
    tensor = grpcclient.InferInput("X", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return tensor


def _config(path):
    from google.protobuf import json_format

    from llmserve.triton.model_config import parse_model_config
    return json_format.MessageToDict(parse_model_config(path.read_text()), preserving_proto_field_name=True)


def test_repositories_hold_exactly_these_models():
    assert sorted(p.name for p in LIFECYCLE.iterdir() if p.is_dir()) == ["scorer"]
    assert sorted(p.name for p in (LIFECYCLE / "scorer").iterdir() if p.name.isdigit()) == ["1", "2", "3"]
    assert sorted(p.name for p in ADVANCED.iterdir() if p.is_dir()) == ADVANCED_MODELS


def test_the_advanced_models_differ_only_in_the_feature_their_config_names():
    """Notebook 04 compares the seven variants, so they must run the same model (a model.py that adds nothing
    to triton_course_models.mlp.ResidualMLP) and each config.pbtxt may differ from the baseline's only in
    the feature the variant is named after."""
    import ast
    changes = {"mlp_1x": set(), "mlp_2x": {"instance_group"}, "mlp_batcher": {"dynamic_batching"},
               "mlp_cache": {"response_cache"},
               "mlp_limited": {"instance_group"}, "mlp_priority": {"dynamic_batching"},
               "mlp_queue": {"dynamic_batching"}}
    base = _config(ADVANCED / "mlp_1x" / "config.pbtxt")
    configs = {}
    for model in ADVANCED_MODELS:
        config = configs[model] = _config(ADVANCED / model / "config.pbtxt")
        assert config.pop("name") == model
        differing = {key for key in set(base) | set(config) if key != "name" and base.get(key) != config.get(key)}
        assert differing == changes[model], model
        tree = ast.parse((ADVANCED / model / "1" / "model.py").read_text())
        [cls] = [node for node in tree.body if isinstance(node, ast.ClassDef)]
        assert cls.name == "TritonPythonModel" and [ast.unparse(b) for b in cls.bases] == ["ResidualMLP"], model
        assert all(isinstance(node, ast.Expr) for node in cls.body), f"{model}/1/model.py adds logic of its own"
    assert base["parameters"]["depth"] == {"string_value": "8"} and "dynamic_batching" not in base
    assert configs["mlp_2x"]["instance_group"][0]["count"] == 2
    limited = configs["mlp_limited"]["instance_group"][0]
    assert limited["count"] == 2 and limited["rate_limiter"]["resources"] == [{"name": "cpu_slot", "count": 1}]
    assert configs["mlp_batcher"]["dynamic_batching"] == {}  # the control: a batcher and nothing else
    assert set(configs["mlp_priority"]["dynamic_batching"]) == {"priority_levels", "default_priority_level"}
    assert set(configs["mlp_queue"]["dynamic_batching"]) == {"default_queue_policy"}
    assert configs["mlp_priority"]["dynamic_batching"]["priority_levels"] == "2"
    assert configs["mlp_queue"]["dynamic_batching"]["default_queue_policy"]["max_queue_size"] == 4
    assert configs["mlp_cache"]["response_cache"] == {"enable": True}


@pytest.mark.server
def test_scorer_versions_answer_and_version_2_fails_on_its_inputs(server, raw_http):
    from tritonclient.utils import InferenceServerException
    client = server.grpc_client()
    client.load_model("scorer")
    config = client.get_model_config("scorer", as_json=True)["config"]
    assert config["version_policy"] == {"specific": {"versions": ["1"]}}
    config["version_policy"] = {"specific": {"versions": [1, 2, 3]}}
    client.load_model("scorer", config=json.dumps(config))  # the override adds versions 2 and 3
    assert client.get_model_config("scorer", as_json=True)["config"]["version_policy"]["specific"]["versions"] == [
        "1", "2", "3"]
    good, bad = np.zeros((1, 16), np.float32), np.zeros((1, 16), np.float32)
    bad[0, 0] = 1.5
    scores = {}
    for version in ("1", "2", "3"):
        result = client.infer("scorer", [_input(good)], model_version=version)
        assert result.as_numpy("VERSION").item() == int(version)
        scores[version] = result.as_numpy("SCORE").item()
    assert scores["1"] == pytest.approx(scores["3"])  # version 3 = version 1's computation
    client.infer("scorer", [_input(bad)], model_version="1")
    with pytest.raises(InferenceServerException, match="feature 0 out of range"):
        client.infer("scorer", [_input(bad)], model_version="2")
    # over plain HTTP: the regression of version 2 is the model's fault (500), NaN features the client's (400)
    raw_http.expect(server.http_url, "scorer", {"X": bad}, 500, "version 2: feature 0 out of range", version="2")
    nan = good.copy()
    nan[0, 3] = np.nan
    for version in ("1", "2", "3"):
        raw_http.expect(server.http_url, "scorer", {"X": nan}, 400, "X holds NaN or infinite values",
                        version=version, binary=True)
    raw_http.expect(server.http_url, "scorer", {"X": np.zeros((1, 15), np.float32)}, 400, "shape")
    client.unload_model("scorer")


@pytest.mark.server
def test_every_advanced_model_loads_and_answers_the_same(server, raw_http):
    client = server.grpc_client()
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    answers = {}
    for model in ADVANCED_MODELS:
        client.load_model(model)
        answers[model] = client.infer(model, [_input(x)]).as_numpy("SCORE").item()
    assert len({round(a, 5) for a in answers.values()}) == 1, answers
    x[0, 0] = np.inf
    for model in ADVANCED_MODELS:
        raw_http.expect(server.http_url, model, {"X": x}, 400, "X holds NaN or infinite values", binary=True)
    limited = client.get_model_config("mlp_limited", as_json=True)["config"]["instance_group"][0]
    assert limited["count"] == 2 and limited["rate_limiter"]["resources"][0]["name"] == "cpu_slot"
    priority = client.get_model_config("mlp_priority", as_json=True)["config"]["dynamic_batching"]
    assert priority["priority_levels"] == "2" and priority["default_priority_level"] == "2"


@pytest.mark.server
def test_response_cache_answers_a_repeated_request_from_the_cache(server):
    client = server.grpc_client()
    client.load_model("mlp_cache")
    x = np.full((1, 16), 0.25, np.float32)
    first = client.infer("mlp_cache", [_input(x)]).as_numpy("SCORE")
    again = client.infer("mlp_cache", [_input(x)]).as_numpy("SCORE")
    np.testing.assert_array_equal(first, again)
    hits = re.search(r'nv_cache_num_hits_per_model\{model="mlp_cache",version="1"\} (\d+)', server.metrics_text())
    assert hits and int(hits.group(1)) >= 1


@pytest.mark.server
def test_queue_policy_rejects_over_max_queue_size(server):
    """16 requests at once at a model with one instance and max_queue_size 4: 1 runs, 4 wait, the rest
    is rejected at once (a few more may get in as executions finish while the 16 are being sent; a
    waiting one may also time out after 100 ms). Every failure must be one of the two policy errors."""
    from tritonclient.utils import InferenceServerException
    client = server.grpc_client()
    client.load_model("mlp_queue")
    x = np.ones((1, 16), np.float32)
    results, done = [], threading.Semaphore(0)

    def callback(result, error):
        results.append(error)
        done.release()

    for _ in range(16):
        client.async_infer("mlp_queue", [_input(x)], callback=callback)
    for _ in range(16):
        assert done.acquire(timeout=60)
    answered = [e for e in results if e is None]
    queue_full = [e for e in results if isinstance(e, InferenceServerException) and "maximum queue size" in e.message()]
    timed_out = [e for e in results if isinstance(e, InferenceServerException) and "timeout expired" in e.message()]
    assert len(answered) + len(queue_full) + len(timed_out) == 16, [str(e) for e in results]
    assert len(queue_full) >= 1 and len(answered) <= 8, (len(answered), len(queue_full), len(timed_out))
