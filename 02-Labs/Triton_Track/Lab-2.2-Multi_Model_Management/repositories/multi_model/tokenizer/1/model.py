"""Tokenizer version 1: the token ids of TEXT as written (no special tokens, no chat format).

Input TEXT string [1] -> TOKEN_IDS int64 [n], NUM_TOKENS int64 [1]. The course LLM folder
comes from the COURSE_MODEL_DIR environment variable (set by llmserve's TritonServer).
"""
from triton_course_models.tokenizer import TextTokenizer


class TritonPythonModel(TextTokenizer):
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)
