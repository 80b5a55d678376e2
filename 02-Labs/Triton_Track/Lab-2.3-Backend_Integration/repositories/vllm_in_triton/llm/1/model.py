"""llm: vLLM's async engine (AsyncLLM) on the course model, streaming tokens (Triton Lab 2.3 · 04).

text_input string [1], max_tokens int32 [1], stream bool [1] (default true), ignore_eos bool [1] (optional) ->
a stream of responses, each text_output string [1] (the new text) and token_count int32 [1] (its tokens),
closed by an empty FINAL response. Greedy decoding. Logic: triton_course_models.vllm_stream.
"""
from triton_course_models.vllm_stream import VLLMStreamingModel


class TritonPythonModel(VLLMStreamingModel):
    pass
