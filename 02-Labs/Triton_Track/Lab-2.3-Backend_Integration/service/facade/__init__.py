"""The unified API of Triton Lab 2.3 · 03: one OpenAI-compatible façade over Triton and vLLM.

    python -m uvicorn facade.app:create_app --factory --app-dir service   (llmserve.servers.FacadeServer does this)

- `settings`: where the backends are, from FACADE_* environment variables;
- `schemas`: the request and response bodies (pydantic), OpenAI's and KServe v2's;
- `errors`: one error shape per protocol: OpenAI's {"error": {"message", "type", "param", "code"}} on /v1,
  KServe v2's {"error": "..."} on /v2;
- `backends`: one adapter per backend (Triton's v2 infer endpoint, vLLM's OpenAI server), same interface;
- `app`: the routes.
"""
