"""mlp_compiled_warm: triton_course_models.compiled.CompiledMLP, a torch MLP behind torch.compile (the first call compiles).

The three warmup/ models run the same model.py; only config.pbtxt's model_warmup differs (Triton Lab 2.4 · 03).
"""
from triton_course_models.compiled import CompiledMLP


class TritonPythonModel(CompiledMLP):
    """X fp32 [batch, 16] -> SCORE fp32 [batch, 1]; non-finite X is a client error (HTTP 400)."""
