"""Tokenizer version 2: the token ids of TEXT wrapped in the chat template as one user turn
(what an instruction-tuned model sees). Same inputs and outputs as version 1.
"""
from triton_course_models.tokenizer import TextTokenizer


class TritonPythonModel(TextTokenizer):
    def encode(self, text: str) -> list[int]:
        chat = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer.encode(chat, add_special_tokens=False)
