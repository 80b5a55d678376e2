"""Triton Python-backend model: the course LLM as a chat model (greedy), for the façade of Triton Lab 2.3 · 03.

MESSAGES (JSON chat) and optional MAX_TOKENS in; TEXT, TOKEN_IDS, PROMPT_TOKENS, FINISH_REASON out. The logic
is in src/triton_course_models/chat.py.
"""
from triton_course_models.chat import ChatLLM


class TritonPythonModel(ChatLLM):
    pass
