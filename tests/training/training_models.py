"""Small models trained by the training tests (and the DDP workers, which import this module)."""
from __future__ import annotations

import torch
import torch.nn as nn


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                         nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4), nn.Sigmoid())


def cnn_batchnorm() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, stride=1, groups=2), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 3 * 3, 10))


def transformer_encoder(dropout: float = 0.0) -> nn.Module:
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=dropout, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


class EmbeddingLSTM(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 8, hidden: int = 16, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        batch, steps, dim = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(dim, dim=-1)
        q, k, v = (t.view(batch, steps, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        causal = torch.tril(torch.ones(steps, steps, dtype=torch.bool))
        attn = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(batch, steps, dim))
        return x + self.out(nn.functional.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """A GPT-style decoder: token + position embeddings, causal self-attention blocks, LM head."""

    def __init__(self, vocab: int = 50, dim: int = 32, heads: int = 4, steps: int = 8, layers: int = 2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(steps, dim)
        self.blocks = nn.Sequential(*[DecoderBlock(dim, heads) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))
        return self.head(self.ln(self.blocks(x)))


class CompiledGraphCounter:
    """Counts the FX graphs (forward and backward) our backend compiles inside the block: wraps
    `backend.compile_fx_graph`, which every graph goes through whether or not the runtime's
    caches already hold its machine code."""

    def __enter__(self):
        from torch_mlir_backend import backend

        self.count = 0
        self._backend = backend
        self._original = backend.compile_fx_graph

        def counting(*args, **kwargs):
            self.count += 1
            return self._original(*args, **kwargs)

        backend.compile_fx_graph = counting
        return self

    def __exit__(self, *exc):
        self._backend.compile_fx_graph = self._original
        return False
