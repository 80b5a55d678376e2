"""The classifier that Triton Lab 2.3 serves through four runtimes: plain PyTorch, no Triton imports.

X fp32 [batch, 16] -> LOGITS fp32 [batch, 4]; the decision is the arg-max class. The body is the MLP
half of a transformer block, four times over (pre-LayerNorm, 256 -> 1024 -> 256 with GELU, residual add),
between an input projection and a classification head: 2.1 M multiply-adds and 19 operators per row,
so both the arithmetic and the per-operator overhead of a runtime show. The weights come from a fixed
seed, so every process that builds it (the notebook, an exporter, a Triton stub) gets the same function;
the exporters of `llmserve.triton.backends` write these very weights into each runtime's artefact.
"""
from __future__ import annotations

import torch

FEATURES, WIDTH, INNER, BLOCKS, CLASSES = 16, 256, 1024, 4, 4


class MLPBlock(torch.nn.Module):
    """x + W_down(gelu(W_up(LayerNorm(x)))): the feed-forward half of a pre-norm transformer block."""

    def __init__(self, width: int = WIDTH, inner: int = INNER):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.up = torch.nn.Linear(width, inner)
        self.down = torch.nn.Linear(inner, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


class BlockClassifier(torch.nn.Module):
    """16 features -> 256, BLOCKS x MLPBlock, LayerNorm, -> 4 class logits."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(FEATURES, WIDTH)
        self.blocks = torch.nn.Sequential(*[MLPBlock() for _ in range(BLOCKS)])
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.embed(x))))


def build_classifier(seed: int = 0) -> BlockClassifier:
    """The classifier with its fixed weights (the same for the same seed, in any process), in eval mode."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        module = BlockClassifier()
    finally:
        torch.random.set_rng_state(generator_state)  # do not disturb the caller's random stream
    return module.eval()


def multiply_adds_per_row() -> int:
    """Multiply-adds of one row through the linear layers (LayerNorm and GELU are a few per element)."""
    return FEATURES * WIDTH + BLOCKS * 2 * WIDTH * INNER + WIDTH * CLASSES
