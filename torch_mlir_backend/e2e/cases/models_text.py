"""Sequence model cases with random weights: a GPT-2-style decoder (token + position embedding,
pre-LayerNorm blocks of causal `scaled_dot_product_attention` and a tanh-GELU MLP, final LayerNorm,
LM head tied to the embedding), and nn.LSTM (one and two layers, bidirectional). Dynamo refuses to
trace nn.LSTM unless `allow_rnn` is set, so those cases set it."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import conformance_case
from ._util import inputs, rand, randint


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class GPT2Block(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab=128, context=32, d_model=64, heads=4, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(GPT2Block(d_model, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


conformance_case("GPT2Model_twoBlocks", inputs=inputs(randint(2, 16, high=128)), atol=1e-4, rtol=1e-4)(GPT2)
conformance_case("GPT2Model_fourBlocksLongContext", inputs=inputs(randint(1, 32, high=128)), atol=1e-4, rtol=1e-4)(
    lambda: GPT2(layers=4))
conformance_case("GPT2BlockModule_basic", inputs=inputs(rand(2, 8, 32)), atol=1e-5, rtol=1e-4)(
    lambda: GPT2Block(32, 4))

_RNN = {"allow_rnn": True}
conformance_case("LSTMModel_oneLayer", inputs=inputs(rand(2, 5, 8)), atol=1e-5, dynamo_config=_RNN)(
    lambda: nn.LSTM(8, 16, batch_first=True))
conformance_case("LSTMModel_twoLayers", inputs=inputs(rand(5, 2, 8)), atol=1e-5, dynamo_config=_RNN)(
    lambda: nn.LSTM(8, 16, num_layers=2))
conformance_case("LSTMModel_bidirectional", inputs=inputs(rand(2, 4, 8)), atol=1e-5, dynamo_config=_RNN)(
    lambda: nn.LSTM(8, 12, batch_first=True, bidirectional=True))
