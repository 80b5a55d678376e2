"""sentiment_bls_chunked: the sentiment pipeline with a condition and a loop (Triton Lab 2.4 · 01).

TEXT string [1] -> LABEL, CONFIDENCE, LLM_CALLS int32 [1]. A prompt of more than `max_tokens` tokens
(config.pbtxt) is split into sentences, each tokenized and run through lm; the mean of their logits is
labelled. A short text takes one lm call, as in sentiment_bls. Logic: triton_course_models.pipeline.
"""
from triton_course_models.pipeline import ChunkingBLSPipeline


class TritonPythonModel(ChunkingBLSPipeline):
    pass
