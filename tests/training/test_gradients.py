"""Forward + backward (and optimizer steps) compiled with our backend against eager: losses,
every parameter's gradient and the BatchNorm running statistics, under explicit tolerances.

AOTAutograd hands both graphs to `compile_fx_graph` (no eager fallback exists in the backend),
and a counter of compiled graphs checks the backward graph really went through MLIR."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import training_models as models

# No eager fallback: an op without a rule fails the test instead of running in eager. LLVM -O0:
# the backward graphs of these models take 10-20 s each to JIT at -O3 and the same numerics
# come out (the LLVM level does not reorder float math).
STRICT = {"strict": True, "opt_level": 0}

# (atol, rtol) on losses and gradients: float32 with reductions in another order than eager's.
TOLERANCE = {
    "mlp": (1e-5, 1e-4),
    "cnn_batchnorm": (1e-4, 1e-4),
    "transformer_encoder": (1e-4, 1e-4),
    "embedding_lstm": (1e-5, 1e-4),
    "gpt": (1e-4, 1e-4),
}


def _inputs(name: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    if name == "mlp":
        return torch.randn(8, 16, generator=g)
    if name == "cnn_batchnorm":
        return torch.randn(4, 3, 16, 16, generator=g)
    if name == "transformer_encoder":
        return torch.randn(2, 8, 32, generator=g)
    if name == "embedding_lstm":
        return torch.randint(0, 20, (4, 6), generator=g)
    return torch.randint(0, 50, (2, 8), generator=g)


FACTORIES = {
    "mlp": models.mlp,
    "cnn_batchnorm": models.cnn_batchnorm,
    "transformer_encoder": models.transformer_encoder,
    "embedding_lstm": models.EmbeddingLSTM,
    "gpt": models.GPT,
}


def _loss(out: torch.Tensor) -> torch.Tensor:
    # Weights break the symmetry a plain mean would have across outputs.
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    return (out * w).sum() + out.pow(2).mean()


def _assert_close(got, want, what, atol, rtol):
    err = (got.double() - want.double()).abs().max().item() if want.numel() else 0.0
    assert torch.allclose(got, want, atol=atol, rtol=rtol), f"{what}: max error {err:.3g}"


@pytest.mark.parametrize("name", list(FACTORIES))
def test_gradients_match_eager(name):
    torch.manual_seed(0)
    eager = FACTORIES[name]()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model, backend="torch_mlir", options=STRICT)
    atol, rtol = TOLERANCE[name]
    # Dynamo runs nn.LSTM eagerly (a graph break) unless allow_rnn is set.
    with torch._dynamo.config.patch(allow_rnn=True), models.CompiledGraphCounter() as graphs:
        _train_and_compare(name, eager, compiled_model, compiled, atol, rtol)
    # A forward and a backward graph at least (more when Dynamo splits the model).
    assert graphs.count >= 2


def _train_and_compare(name, eager, compiled_model, compiled, atol, rtol):
    for step in range(2):
        x = _inputs(name, step)
        for m in (eager, compiled_model):
            m.zero_grad()
        want = _loss(eager(x))
        want.backward()
        got = _loss(compiled(x))
        got.backward()
        _assert_close(got.detach(), want.detach(), f"{name} loss, step {step}", atol, rtol)
        for (pname, pe), (_, pc) in zip(eager.named_parameters(), compiled_model.named_parameters()):
            assert pc.grad is not None, f"{name}: no gradient for {pname}"
            _assert_close(pc.grad, pe.grad, f"{name} grad of {pname}, step {step}", atol, rtol)
        # BatchNorm in train mode updates its running statistics in place on the buffers.
        for (bname, be), (_, bc) in zip(eager.named_buffers(), compiled_model.named_buffers()):
            _assert_close(bc.float(), be.float(), f"{name} buffer {bname}, step {step}", atol, rtol)


def test_batchnorm_running_stats_move_in_place():
    torch.manual_seed(0)
    model = models.cnn_batchnorm()
    bn = model[1]
    mean_buffer = bn.running_mean
    start = mean_buffer.clone()
    torch.compile(model, backend="torch_mlir", options=STRICT)(_inputs("cnn_batchnorm", 0)).sum().backward()
    assert bn.running_mean is mean_buffer
    assert not torch.equal(mean_buffer, start)
    assert int(bn.num_batches_tracked) == 1


def test_adamw_steps_compiled_match_eager():
    """Training steps with the forward/backward and `optimizer.step` all compiled by us."""
    torch.manual_seed(0)
    eager = models.mlp()
    compiled_model = copy.deepcopy(eager)
    opt_eager = torch.optim.AdamW(eager.parameters(), lr=1e-2, weight_decay=0.1)
    opt_compiled = torch.optim.AdamW(compiled_model.parameters(), lr=1e-2, weight_decay=0.1)
    compiled = torch.compile(compiled_model, backend="torch_mlir", options=STRICT)

    @torch.compile(backend="torch_mlir", options=STRICT)
    def optimizer_step():
        opt_compiled.step()

    for step in range(3):
        x = _inputs("mlp", step)
        opt_eager.zero_grad()
        _loss(eager(x)).backward()
        opt_eager.step()
        opt_compiled.zero_grad()
        _loss(compiled(x)).backward()
        optimizer_step()
        for (pname, pe), (_, pc) in zip(eager.named_parameters(), compiled_model.named_parameters()):
            _assert_close(pc.detach(), pe.detach(), f"AdamW parameter {pname}, step {step}", 1e-5, 1e-4)
    for state_e, state_c in zip(opt_eager.state.values(), opt_compiled.state.values()):
        _assert_close(state_c["exp_avg_sq"], state_e["exp_avg_sq"], "exp_avg_sq", 1e-6, 1e-4)


def _dropout_mask_stats(p: float, shape=(64, 256)):
    torch.manual_seed(0)
    drop = torch.compile(lambda x: nn.functional.dropout(x, p, training=True), backend="torch_mlir", options=STRICT)
    x = torch.ones(shape, requires_grad=True)
    y = drop(x)
    y.backward(torch.ones_like(y))
    return x, y


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_is_statistically_right(p):
    x, y = _dropout_mask_stats(p)
    kept = y != 0
    n = kept.numel()
    # Kept values are scaled by 1/(1-p), dropped ones are zero; the gradient uses the same mask.
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    assert torch.equal(x.grad, y.detach())
    # Fraction kept within 5 standard deviations of a Binomial(n, 1-p).
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * sd
    # No structure across rows or columns: per-row/per-column rates stay within 6 sd.
    rows, cols = kept.float().mean(1), kept.float().mean(0)
    assert (rows - (1 - p)).abs().max() < 6 * (p * (1 - p) / kept.shape[1]) ** 0.5
    assert (cols - (1 - p)).abs().max() < 6 * (p * (1 - p) / kept.shape[0]) ** 0.5
    # Neighbouring elements are uncorrelated (a bad hash correlates consecutive counters).
    a, b = kept.flatten()[:-1].float(), kept.flatten()[1:].float()
    corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
    assert abs(corr.item()) < 5 / n ** 0.5


def test_dropout_masks_differ_between_calls():
    torch.manual_seed(0)
    drop = torch.compile(lambda x: nn.functional.dropout(x, 0.5, training=True), backend="torch_mlir", options=STRICT)
    x = torch.ones(32, 32)
    masks = [drop(x) != 0 for _ in range(3)]
    # Two independent masks with p=0.5 agree on about half of the elements.
    for a, b in ((0, 1), (1, 2), (0, 2)):
        agree = (masks[a] == masks[b]).float().mean().item()
        assert 0.4 < agree < 0.6, f"masks of calls {a} and {b} agree on {agree:.2f}"


def test_transformer_encoder_with_dropout_trains_like_eager_in_expectation():
    """With dropout > 0 the compiled model's masks are not eager's, so compare statistics: the
    mean loss over several draws of the compiled model is within the eager draws' spread, and
    gradients are finite and of eager's magnitude."""
    torch.manual_seed(0)
    model = models.transformer_encoder(dropout=0.2)
    compiled = torch.compile(model, backend="torch_mlir", options=STRICT)
    x = _inputs("transformer_encoder", 0)
    eager_losses, compiled_losses, grad_norms = [], [], []
    for _ in range(12):
        eager_losses.append(_loss(model(x)).item())
        model.zero_grad()
        loss = _loss(compiled(x))
        loss.backward()
        compiled_losses.append(loss.item())
        grad_norms.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())
    e, c = torch.tensor(eager_losses), torch.tensor(compiled_losses)
    assert len(set(compiled_losses)) == len(compiled_losses), "dropout masks repeat across calls"
    spread = (e.std() ** 2 / len(e) + c.std() ** 2 / len(c)) ** 0.5
    assert abs(e.mean() - c.mean()) < 5 * spread
    model.eval()
    assert all(torch.isfinite(torch.tensor(grad_norms)))
