"""llm_cached: text_input string [1], max_tokens int32 [1] (optional) -> text_output string [1], token_count
int32 [1]: the whole greedy answer of `llm`, behind Triton's response cache (Triton Lab 2.3 · 04).

A repeated request is answered by the server from the cache without reaching this model. Empty text_input or
max_tokens out of range: HTTP 400. Logic: triton_course_models.vllm_stream.CachedCompletionBLS.
"""
from triton_course_models.vllm_stream import CachedCompletionBLS


class TritonPythonModel(CachedCompletionBLS):
    pass
