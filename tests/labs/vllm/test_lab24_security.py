"""vLLM Lab 2.4 · 03: the gateway's API keys, rate limits and access log (gateway/security.py), in-process with
Starlette's TestClient, and on real servers (marked `server`): the limit counted in Redis holds across two app
instances, and the TLS nginx template renders and passes `nginx -t` with a certificate made here."""
import asyncio
import io
import json

import pytest
from fastapi.testclient import TestClient
from gateway.app import create_app
from gateway.security import AccessLog, KeyRing, MemoryWindows, RedisWindows, bearer_token, hash_key
from gateway.settings import Settings, SettingsError

from llmserve.course.config import REPO_ROOT
from llmserve.servers import nginx as nginx_module
from llmserve.servers.nginx import NginxConfigError, placeholders, render_template

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.4-Production_Deployment"
TEMPLATE = LAB / "deploy" / "nginx" / "tls-gateways.conf.template"
KEYS = {"alice": "sk-alice-0123456789", "bob": "sk-bob-9876543210"}
HASHES = f"alice:{hash_key(KEYS['alice'])}:3,bob:{hash_key(KEYS['bob'])}"


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def secured(**settings) -> TestClient:
    return TestClient(create_app(Settings(api_key_hashes=HASHES, **settings)))


# ---- keys ----------------------------------------------------------------------------------------

def test_keyring_parses_names_hashes_and_limits_and_refuses_plain_keys():
    ring = KeyRing.parse(HASHES)
    assert [(e.name, e.limit) for e in ring.entries] == [("alice", 3), ("bob", None)]
    assert ring.identify(KEYS["alice"]).name == "alice" and ring.identify(KEYS["bob"]).name == "bob"
    assert ring.identify("sk-alice-012345678") is None and ring.identify("") is None
    with pytest.raises(ValueError, match="sha256"):
        KeyRing.parse(f"alice:{KEYS['alice']}")  # the key itself instead of its hash
    with pytest.raises(ValueError, match="whole number"):
        KeyRing.parse(f"alice:{hash_key('k')}:many")
    with pytest.raises(ValueError, match="unique"):
        KeyRing.parse(f"a:{hash_key('k')},a:{hash_key('j')}")


def test_keys_file_and_comments(tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# team keys\nalice:{hash_key(KEYS['alice'])}:3  # interactive\n\n")
    ring = KeyRing.from_settings(Settings(api_keys_file=str(keys_file)))
    assert [e.name for e in ring.entries] == ["alice"]


def test_bearer_token_only_from_a_bearer_header():
    assert bearer_token({"headers": [(b"authorization", b"Bearer abc")]}) == "abc"
    assert bearer_token({"headers": [(b"authorization", b"bearer  abc ")]}) == "abc"
    assert bearer_token({"headers": [(b"authorization", b"Basic abc")]}) is None
    assert bearer_token({"headers": []}) is None


def test_settings_keep_the_upstream_key_secret_but_reproducible():
    settings = Settings.from_env({"GATEWAY_UPSTREAM_API_KEY": "sk-up", "GATEWAY_API_KEY_HASHES": HASHES})
    assert "sk-up" not in repr(settings) and settings.upstream_api_key.get_secret_value() == "sk-up"
    assert Settings.from_env(settings.to_env()) == settings
    with pytest.raises(SettingsError, match="GATEWAY_RATE_LIMIT_REQUESTS"):
        Settings.from_env({"GATEWAY_RATE_LIMIT_REQUESTS": "-1"})


def test_security_is_off_by_default():
    with TestClient(create_app(Settings())) as client:
        assert client.post("/v1/tokenize", json={"text": "hi"}).status_code == 200
        assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_missing_and_wrong_keys_are_401_with_www_authenticate_and_probes_stay_open():
    with secured() as client:
        missing = client.post("/v1/tokenize", json={"text": "hi"})
        wrong = client.post("/v1/tokenize", json={"text": "hi"}, headers={"Authorization": "Bearer nope"})
        assert missing.status_code == wrong.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="llm-gateway"'
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert "Authorization: Bearer" in missing.json()["error"]["message"]
        assert missing.json()["error"]["type"] == "authentication_error"
        assert client.get("/no/such/route").status_code == 401  # deny by default: routes are not revealed
        for path in ("/health", "/ready", "/metrics", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        assert client.post("/v1/tokenize", json={"text": "hi"}, headers=auth("bob")).status_code == 200


def test_authentication_comes_before_the_body_limit():
    with secured(max_body_bytes=1024) as client:
        big = b"x" * 5000
        assert client.post("/v1/tokenize", content=big).status_code == 401
        assert client.post("/v1/tokenize", content=big, headers=auth("bob")).status_code == 413


def test_openapi_declares_bearer_auth_and_the_401_429_answers():
    with secured() as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"}
    tokenize = schema["paths"]["/v1/tokenize"]["post"]
    assert tokenize["security"] == [{"apiKey": []}] and {"401", "429"} <= set(tokenize["responses"])
    assert schema["paths"]["/health"]["get"]["security"] == []


# ---- rate limits ---------------------------------------------------------------------------------

def test_a_keys_own_limit_then_429_with_retry_after_and_other_keys_unaffected():
    with secured(rate_limit_requests=5, rate_limit_window_s=30) as client:
        codes = [client.get("/v1/models", headers=auth("alice")) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]  # alice's own limit is 3
        assert [r.headers["x-ratelimit-remaining"] for r in codes[:3]] == ["2", "1", "0"]
        refused = codes[-1]
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 30 and "alice" in refused.json()["error"]["message"]
        assert [client.get("/v1/models", headers=auth("bob")).status_code for _ in range(6)] == [200] * 5 + [429]


def test_memory_windows_reset_after_the_window(monkeypatch):
    import gateway.security as security
    now = [1000.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: now[0])
    windows = MemoryWindows()

    async def hits(n):
        return [await windows.hit("k", 10) for _ in range(n)]

    assert [c for c, _ in asyncio.run(hits(3))] == [1, 2, 3]
    now[0] += 9.5
    assert asyncio.run(windows.hit("k", 10)) == (4, 500)
    now[0] += 0.5  # the window that began at the first hit is over
    assert asyncio.run(windows.hit("k", 10))[0] == 1


def test_failed_authentications_per_address_then_429_even_with_a_valid_key():
    with secured(auth_failure_limit=2, rate_limit_window_s=30) as client:
        wrong = {"Authorization": "Bearer wrong"}
        codes = [client.get("/v1/models", headers=wrong).status_code for _ in range(4)]
        assert codes == [401, 401, 429, 429]
        locked = client.get("/v1/models", headers=auth("bob"))
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_auth_failures"
        assert client.get("/health").status_code == 200


# ---- access log ----------------------------------------------------------------------------------

def test_access_log_names_the_key_never_the_key_or_the_body():
    stream = io.StringIO()
    app = create_app(Settings(api_key_hashes=HASHES))
    app.add_middleware(AccessLog, router_app=app, stream=stream)  # outermost, writing where the test reads
    with TestClient(app) as client:
        secret_text = "my secret prompt 4111-1111"
        ok = client.post("/v1/tokenize?token=leak", json={"text": secret_text}, headers={**auth("alice"), "X-Request-Id": "req-1"})
        client.post("/v1/tokenize", json={"text": secret_text}, headers={"Authorization": "Bearer wrong-key-xyz",
                                                                         "X-Request-Id": "bad id with spaces"})
    assert ok.headers["x-request-id"] == "req-1"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["key"] == "alice" and lines[0]["route"] == "/v1/tokenize" and lines[0]["status"] == 200
    assert lines[1]["key"] is None and lines[1]["status"] == 401 and lines[1]["id"] != "bad id with spaces"
    text = stream.getvalue()
    for secret in (KEYS["alice"], "wrong-key-xyz", secret_text, "leak"):
        assert secret not in text, secret


# ---- real servers --------------------------------------------------------------------------------

@pytest.mark.server
def test_the_limit_counted_in_redis_holds_across_two_gateway_apps():
    from llmserve.servers import RedisServer
    with RedisServer() as redis:
        settings = Settings(api_key_hashes=HASHES, rate_limit_requests=7, rate_limit_window_s=30,
                            rate_limit_redis_url=redis.url)
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            assert one.get("/ready").json()["checks"]["rate_limit_store"] is True
            codes = [(one, two)[i % 2].get("/v1/models", headers=auth("bob")).status_code for i in range(20)]
            assert codes.count(200) == 7 and codes.count(429) == 13
            count, ttl_ms = asyncio.run(_peek(redis.url, "key:bob"))
            assert count == 20 and 0 < ttl_ms <= 30_000
        redis.stop()
        with TestClient(create_app(settings)) as orphan:  # the store is gone: refuse, do not serve unlimited
            refused = orphan.get("/v1/models", headers=auth("bob"))
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "rate_limiter_unavailable"


async def _peek(url: str, key: str):
    windows = RedisWindows(url)
    try:
        return await windows.peek(key)
    finally:
        await windows.aclose()


@pytest.fixture
def certificate(test_pki):
    return test_pki


def _values(pki, tmp_path, **overrides):
    return {"prefix": tmp_path, "https_port": 18443, "http_port": 18080, "gateway_a": "127.0.0.1:18001",
            "gateway_b": "127.0.0.1:18002", "certificate": pki / "server.crt",
            "certificate_key": pki / "server.key", "proxy_address": "127.0.0.3", "max_body": "1m",
            **overrides}


def test_tls_template_placeholders_and_what_it_must_say(certificate, tmp_path):
    text = TEMPLATE.read_text()
    assert placeholders(text) == set(_values(certificate, tmp_path))
    rendered = render_template(text, _values(certificate, tmp_path))
    for needed in ("listen 127.0.0.1:18443 ssl;", "ssl_protocols TLSv1.2 TLSv1.3;", "proxy_bind 127.0.0.3;",
                   "proxy_set_header X-Forwarded-For $remote_addr;", "client_max_body_size 1m;",
                   "proxy_request_buffering off;"):
        assert needed in rendered, needed
    log_format = next(line for line in rendered.splitlines() if line.strip().startswith("log_format"))
    for secret in ("$http_authorization", "$request_body", "$request_uri", "$args"):
        assert secret not in log_format, secret
    assert "$proxy_add_x_forwarded_for" not in rendered.replace("# Overwrite, do not append ($proxy_add_x_forwarded_for", "")


def test_tls_template_passes_nginx_t_and_refuses_a_missing_certificate(certificate, tmp_path):
    config = tmp_path / "nginx.conf"
    config.write_text(render_template(TEMPLATE.read_text(), _values(certificate, tmp_path)))
    nginx_module.test_config(config, tmp_path)
    config.write_text(render_template(TEMPLATE.read_text(), _values(certificate, tmp_path,
                                                                    certificate=tmp_path / "missing.crt")))
    with pytest.raises(NginxConfigError, match="missing.crt"):
        nginx_module.test_config(config, tmp_path)


def test_the_upstream_refusing_the_gateways_own_key_is_a_502_not_the_clients_401():
    from gateway.backends import _upstream_error
    error = _upstream_error(401, b'{"error": "Unauthorized"}')
    assert error.status == 502 and error.code == "upstream_auth_failed" and "GATEWAY_UPSTREAM_API_KEY" in error.message
    assert _upstream_error(400, b'{"error": {"message": "bad"}}').status == 400  # the client's mistakes stay 4xx
