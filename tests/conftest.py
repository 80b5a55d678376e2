"""Test-suite rules.

- A test that starts a course server (anything built on `ManagedServer`, or a vLLM engine) must
  be marked `server`; `make unit` (`-m "not server"`) then really starts no server. An unmarked
  test that tries fails with a message saying so. The stand-in processes of
  tests/unit/servers/test_lifecycle.py are plain `ManagedServer`s and are allowed there.
- Nothing under tests/unit may be marked `server`.
- A test that loads a real model (the fixtures `course_model`, `tiny_model_dir`, or the marker
  `model`) takes seconds, not milliseconds: it is marked `model` and runs with the integration
  tests, so `make unit` stays under a minute.
"""
import subprocess

import pytest

from llmserve.servers import ManagedServer

_LIFECYCLE_TESTS = "tests/unit/servers/test_lifecycle.py"


MODEL_FIXTURES = {"course_model", "tiny_model_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if item.get_closest_marker("server") and "/tests/unit/" in str(item.fspath):
            raise pytest.UsageError(f"{item.nodeid}: tests under tests/unit must not start servers")


@pytest.fixture(autouse=True)
def _servers_only_in_server_tests(request, monkeypatch):
    if request.node.get_closest_marker("server"):
        return
    original = ManagedServer.start
    allowed_stand_ins = str(request.node.fspath).endswith(_LIFECYCLE_TESTS)

    def guarded_start(self):
        if type(self) is not ManagedServer or not allowed_stand_ins:
            pytest.fail(f"{request.node.nodeid} starts a {type(self).__name__} but is not marked "
                        "@pytest.mark.server (so `make unit` would start a server)", pytrace=False)
        return original(self)

    monkeypatch.setattr(ManagedServer, "start", guarded_start)


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    """A certificate authority and a server certificate for 127.0.0.1 (EC P-256, one day), made with openssl."""
    folder = tmp_path_factory.mktemp("pki")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for args in (["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=ca"],
                 ["req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server"],
                 ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                  "-out", "server.crt", "-days", "1", "-extfile", "server.ext"]):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
    return folder
