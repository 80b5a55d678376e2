"""vLLM Lab 2.3 · 01 Basic API: reference answers (spoilers)."""
import json


def solutions(ns):
    http = ns["http"]

    def chat_overhead_tokens(question: str) -> int:
        as_chat = http.post("/v1/tokenize", json={"messages": [{"role": "user", "content": question}]})
        as_text = http.post("/v1/tokenize", json={"text": question})
        return as_chat.json()["count"] - as_text.json()["count"]

    return {"chat_overhead_tokens": chat_overhead_tokens,
            # over the gateway's max_body_bytes (16 KiB in this notebook), refused before it is parsed
            "answer_413_request": ("/v1/tokenize", json.dumps({"text": "z" * 17_000}).encode()),
            # well-formed JSON, wrong shape: a list where the schema wants a string
            "answer_422_request": ("/v1/tokenize", b'{"text": ["a", "list"]}')}


def wrong_answers(ns):
    http = ns["http"]

    def text_tokens(question: str) -> int:  # counts the question itself, not what the template adds
        return http.post("/v1/tokenize", json={"text": question}).json()["count"]

    valid = ("/v1/tokenize", b'{"text": "a valid request"}')
    return {"chat_overhead_tokens": text_tokens, "answer_413_request": valid, "answer_422_request": valid}
