"""triton_course_models.common: inputs, one response per request, and the error codes (400 vs 500)."""
import numpy as np
import pytest


def test_respond_answers_each_request_and_isolates_failures(stub):
    from triton_course_models.common import ClientError, respond

    def answer(request):
        x = stub.pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
        if x[0] < 0:
            raise ClientError("X must not be negative")
        if x[0] == 0:
            raise ZeroDivisionError("division by zero")
        return [stub.pb_utils.Tensor("Y", 1 / x)]

    requests = [stub.request(X=np.array([v], np.float32)) for v in (2.0, -1.0, 0.0, 4.0)]
    responses = respond(requests, answer)
    assert len(responses) == 4
    np.testing.assert_allclose(stub.outputs(responses[0])["Y"], [0.5])
    assert stub.error(responses[1]) == (stub.INVALID_ARG, "X must not be negative")  # HTTP 400
    assert stub.error(responses[2]) == (stub.INTERNAL, "ZeroDivisionError: division by zero")  # HTTP 500
    np.testing.assert_allclose(stub.outputs(responses[3])["Y"], [0.25])


def test_text_input_decodes_utf8_and_refuses_empty_or_broken_text(stub):
    from triton_course_models.common import ClientError, text_input
    assert text_input(stub.request(TEXT="ünïcödé ✓"), "TEXT") == "ünïcödé ✓"
    assert text_input(stub.request(TEXT=""), "TEXT", allow_empty=True) == ""
    for empty in ("", "  \n"):
        with pytest.raises(ClientError, match="TEXT is empty"):
            text_input(stub.request(TEXT=empty), "TEXT")
    with pytest.raises(ClientError, match="not valid UTF-8"):
        text_input(stub.request(TEXT=b"caf\xe9"), "TEXT", allow_empty=True)


def test_a_missing_input_is_a_client_error(stub):
    from triton_course_models.common import ClientError, required_input, text_input
    request = stub.request(OTHER=np.ones(1, np.float32))
    for read in (lambda: required_input(request, "TEXT"), lambda: text_input(request, "TEXT")):
        with pytest.raises(ClientError, match="TEXT is missing from the request"):
            read()


def test_token_ids_input_checks_emptiness_and_the_vocabulary(stub):
    from triton_course_models.common import ClientError, token_ids_input
    ids = token_ids_input(stub.request(IDS=np.array([0, 5, 9], np.int64)), "IDS", vocab_size=10)
    assert ids.dtype == np.int64 and ids.tolist() == [0, 5, 9]
    with pytest.raises(ClientError, match="IDS is empty"):
        token_ids_input(stub.request(IDS=np.zeros(0, np.int64)), "IDS", vocab_size=10)
    for bad in (10, -1):
        with pytest.raises(ClientError, match=rf"outside the vocabulary \[0, 10\), e.g. {bad}"):
            token_ids_input(stub.request(IDS=np.array([1, bad], np.int64)), "IDS", vocab_size=10)


def test_course_model_dir_explains_a_missing_folder(stub, monkeypatch, tmp_path):
    from triton_course_models.common import course_model_dir
    assert course_model_dir()  # set by the stub fixture
    monkeypatch.setenv("COURSE_MODEL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(stub.pb_utils.TritonModelException, match="start Triton with llmserve's TritonServer"):
        course_model_dir()
