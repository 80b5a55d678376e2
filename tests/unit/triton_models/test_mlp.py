"""The residual MLP behind Lab 2.2's `advanced/mlp_*` models and the `lifecycle/scorer` versions."""
import numpy as np
import pytest

ADVANCED = ["mlp_1x", "mlp_2x", "mlp_batcher", "mlp_cache", "mlp_limited", "mlp_priority", "mlp_queue"]


def _x(seed=0, rows=1):
    return np.random.default_rng(seed).standard_normal((rows, 16)).astype(np.float32)


def test_layer_flops_follow_the_2mnk_convention():
    from triton_course_models.mlp import LAYER_FLOPS, ROWS, WIDTH
    assert (ROWS, WIDTH) == (64, 512)
    assert LAYER_FLOPS == 2 * 64 * 512 * 512 == 33_554_432  # not "~17 MFLOP": that is m*n*k


def test_every_advanced_model_reads_its_depth_from_config_and_answers_the_same(stub):
    scores = {}
    for name in ADVANCED:
        folder = stub.lab22 / "advanced" / name
        model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
        assert model.depth == 8 and len(model.layers) == 8, name
        [response] = model.execute([stub.request(X=_x())])
        out = stub.outputs(response)["SCORE"]
        assert out.shape == (1, 1) and out.dtype == np.float32
        scores[name] = out.item()
    assert len(set(scores.values())) == 1, scores  # fixed seed: same function in every variant


def test_depth_changes_the_answer_and_a_missing_depth_is_a_load_error(stub, tmp_path):
    from triton_course_models.mlp import ResidualMLP

    class Deep(ResidualMLP):
        depth = 9
    deep = Deep()
    deep.initialize(stub.args())
    eight = stub.model(stub.lab22 / "advanced" / "mlp_1x" / "1" / "model.py",
                       stub.lab22 / "advanced" / "mlp_1x" / "config.pbtxt")
    assert not np.allclose(deep.forward(_x()[0]), eight.forward(_x()[0]))
    config = tmp_path / "config.pbtxt"
    config.write_text('backend: "python"\nmax_batch_size: 1\n')
    with pytest.raises(stub.pb_utils.TritonModelException, match="needs a `depth` parameter"):
        stub.model(stub.lab22 / "advanced" / "mlp_1x" / "1" / "model.py", config)


def test_non_finite_features_are_a_client_error(stub):
    folder = stub.lab22 / "advanced" / "mlp_1x"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    bad = _x()
    bad[0, 3] = np.nan
    good_response, bad_response = model.execute([stub.request(X=_x()), stub.request(X=bad)])
    assert stub.outputs(good_response)["SCORE"].shape == (1, 1)
    code, message = stub.error(bad_response)
    assert code == stub.INVALID_ARG and "NaN or infinite" in message


def test_scorer_versions(stub):
    scorer = stub.lab22 / "lifecycle" / "scorer"
    models = {v: stub.model(scorer / v / "model.py", scorer / "config.pbtxt") for v in ("1", "2", "3")}
    assert {v: m.depth for v, m in models.items()} == {"1": 4, "2": 16, "3": 4}
    good = _x(1)
    good[0, 0] = 0.5
    answers = {v: stub.outputs(m.execute([stub.request(X=good)])[0]) for v, m in models.items()}
    assert {v: a["VERSION"].tolist() for v, a in answers.items()} == {"1": [[1]], "2": [[2]], "3": [[3]]}
    assert answers["1"]["SCORE"].item() == answers["3"]["SCORE"].item()  # 3 = 1's computation
    assert answers["2"]["SCORE"].item() != answers["1"]["SCORE"].item()  # 16 layers, not 4
    bad = good.copy()
    bad[0, 0] = 1.5
    assert stub.outputs(models["1"].execute([stub.request(X=bad)])[0])["VERSION"].item() == 1
    code, message = stub.error(models["2"].execute([stub.request(X=bad)])[0])
    # the regression is the model's fault: a valid input answered with INTERNAL (HTTP 500), not 400
    assert code == stub.INTERNAL and "version 2: feature 0 out of range (1.50 > 1.0)" in message


def test_the_regressed_version_fails_about_one_request_in_six(stub):
    scorer = stub.lab22 / "lifecycle" / "scorer"
    model = stub.model(scorer / "2" / "model.py", scorer / "config.pbtxt")
    inputs = np.random.default_rng(0).standard_normal((512, 16)).astype(np.float32)  # notebook 03's bank
    failed = 0
    for x in inputs:  # preprocess alone: the layers do not decide which requests fail
        try:
            model.preprocess(x)
        except ValueError:
            failed += 1
    assert failed == int((inputs[:, 0] > 1.0).sum())
    assert 0.10 < failed / len(inputs) < 0.22  # P(N(0,1) > 1) = 0.159
