"""The PyTorch module behind `token_embedder`: plain torch, no Triton imports.

It is a real piece of the course LLM: the model's own token-embedding table
(`model.embed_tokens.weight`, 49152 x 576), followed by mean pooling over the tokens and
L2 normalisation: a (crude) sentence embedding. The same file is imported by the Triton
model (`model.py`, eager PyTorch inside the Python backend) and by
`llmserve.triton.torchscript.export_torchscript` (the TorchScript artefact for libtorch), so
both run exactly this code.
"""
from pathlib import Path

import torch
from torch import nn

EMBEDDING_KEY = "model.embed_tokens.weight"


class MeanPooledEmbedding(nn.Module):
    """token ids [batch, tokens] (int64) -> unit-length embeddings [batch, hidden] (float32)."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(weight.float(), freeze=True)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        pooled = self.embed(token_ids).mean(dim=1)
        return nn.functional.normalize(pooled, dim=-1)


def load_from_course_model(model_dir: str | Path) -> MeanPooledEmbedding:
    """Build the module from the embedding table in the course model's safetensors file."""
    from safetensors import safe_open

    with safe_open(str(Path(model_dir) / "model.safetensors"), framework="pt") as weights:
        table = weights.get_tensor(EMBEDDING_KEY)
    return MeanPooledEmbedding(table).eval()
