"""vLLM Lab 2.3 · 03 Integration with vLLM: reference answers (spoilers)."""


def solutions(ns):
    httpx, gateway = ns["httpx"], ns["gateway"]
    parse_sse_line, event_text = ns["parse_sse_line"], ns["event_text"]
    body = {"model": ns["model_name"], "messages": [{"role": "user", "content": "Write a long story about a ship."}],
            "max_tokens": 200, "ignore_eos": True, "temperature": 0, "stream": True}

    def stream_and_abandon(content_chunks: int) -> None:
        with httpx.stream("POST", gateway.url("/v1/chat/completions"), json=body, timeout=60) as response:
            seen = 0
            for line in response.iter_lines():
                event = parse_sse_line(line)
                if isinstance(event, dict) and event_text(event):  # the role chunk carries no text
                    seen += 1
                    if seen == content_chunks:
                        break  # leaving the `with` block closes the connection: the gateway aborts the request

    return {"stream_and_abandon": stream_and_abandon,
            # the gateway's max_in_flight (chat_concurrency) admits that many; the rest get 503 at once
            "answer_burst_size": ns["chat_concurrency"] + 2, "answer_predicted_refused": 2}


def wrong_answers(ns):
    def stream_nothing(content_chunks: int) -> None:  # never opens the stream: the engine generates nothing
        return None

    return {"stream_and_abandon": stream_nothing, "answer_predicted_refused": 3}
