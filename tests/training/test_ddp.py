"""Data-parallel training with our backend: 2 processes on CPU (gloo), the model wrapped in
DistributedDataParallel (or sharded with FSDP2's `fully_shard`) and compiled with
`torch.compile(backend="torch_mlir")`; after a few SGD steps every rank's parameters equal a
single-process eager run on the concatenated batch. Dynamo's DDP optimizer splits the graph at
the gradient buckets' boundaries (1 MB buckets and a 1 MB layer here, so there are several), and AOTAutograd's
backward of each piece is compiled by us."""
from __future__ import annotations

import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

WORLD = 2
STEPS = 3
LR = 0.1
# (atol, rtol): the all-reduce averages two float32 gradients, eager sums the full batch.
ATOL, RTOL = 1e-5, 1e-4


class MLP(nn.Module):
    """A module of our own: under DDP, Dynamo compiles the wrapped module's forward frame, and
    the frames of torch's own modules (nn.Sequential) are skipped as library code."""

    def __init__(self):
        super().__init__()
        # The 512x512 layer alone fills a 1 MB bucket (Dynamo's DDP optimizer needs buckets of
        # at least DDP's 1 MB first bucket), so the graph is split in more than one piece.
        self.layers = nn.ModuleList([nn.Linear(12, 512), nn.Linear(512, 512), nn.Linear(512, 3)])

    def forward(self, x):
        x = torch.relu(self.layers[0](x))
        x = torch.tanh(self.layers[1](x))
        return self.layers[2](x)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return MLP()


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 12, generator=g), torch.randn(8, 3, generator=g)) for _ in range(STEPS)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, mode: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        from training_models import CompiledGraphCounter

        model = _model()
        if mode == "ddp":
            wrapped = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1)
        else:
            from torch.distributed.fsdp import fully_shard

            for layer in model.layers:
                fully_shard(layer)
            wrapped = fully_shard(model)
        compiled = torch.compile(wrapped, backend="torch_mlir", options={"strict": True, "opt_level": 0})
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        with CompiledGraphCounter() as graphs:
            for x, y in _batches():
                shard = slice(rank * x.shape[0] // WORLD, (rank + 1) * x.shape[0] // WORLD)
                opt.zero_grad()
                nn.functional.mse_loss(compiled(x[shard]), y[shard]).backward()
                opt.step()
        if mode == "fsdp2":
            params = {k: v.full_tensor().detach() for k, v in model.state_dict().items()}
        else:
            params = {k: v.detach() for k, v in model.state_dict().items()}
        torch.save({"params": params, "compiled_graphs": graphs.count},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _single_process_reference() -> dict:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for x, y in _batches():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


def _run(mode: str):
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(_free_port(), mode, out_dir), nprocs=WORLD, join=True)
        results = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(WORLD)]
    want = _single_process_reference()
    start = _model().state_dict()
    for rank, result in enumerate(results):
        for name, expected in want.items():
            got = result["params"][name]
            err = (got - expected).abs().max().item()
            assert torch.allclose(got, expected, atol=ATOL, rtol=RTOL), \
                f"{mode} rank {rank}: parameter {name} differs from the single-process run by {err:.3g}"
            assert not torch.equal(got, start[name]), f"{mode}: parameter {name} did not train"
    return results


def test_ddp_two_processes_match_single_process():
    results = _run("ddp")
    # Forward and backward graphs of more than one bucket-split piece went through our compiler.
    assert all(r["compiled_graphs"] >= 4 for r in results), [r["compiled_graphs"] for r in results]


def test_fsdp2_two_processes_match_single_process():
    results = _run("fsdp2")
    assert all(r["compiled_graphs"] >= 2 for r in results), [r["compiled_graphs"] for r in results]
