"""The tokenizer Triton Lab 2.5 deploys: the token ids of TEXT as written (no special tokens).

Input TEXT string [1] -> TOKEN_IDS int64 [n], NUM_TOKENS int64 [1]. The course LLM folder comes from the
COURSE_MODEL_DIR environment variable (the chart sets it to the model volume's mount path).
"""
from triton_course_models.tokenizer import TextTokenizer


class TritonPythonModel(TextTokenizer):
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)
