"""Reduction cases: sum, mean, amax/amin, argmax, var, softmax."""
import torch

from ._util import fn_case, inputs, rand, randint

fn_case("ReduceSumModule_basic", lambda x: x.sum(), inputs(rand(3, 4, 5)))
fn_case("ReduceSumDimModule_basic", lambda x: x.sum(dim=1), inputs(rand(3, 4, 5)))
fn_case("ReduceSumDimKeepdimModule_basic", lambda x: x.sum(dim=(0, 2), keepdim=True), inputs(rand(3, 4, 5)))
fn_case("ReduceSumIntModule_basic", lambda x: x.sum(dim=-1), inputs(randint(3, 4, dtype=torch.int32)))
fn_case("ReduceMeanModule_basic", lambda x: x.mean(), inputs(rand(3, 4)))
fn_case("ReduceMeanDimModule_basic", lambda x: x.mean(dim=-1, keepdim=True), inputs(rand(3, 4, 5)))
fn_case("ReduceAmaxModule_basic", lambda x: torch.amax(x, dim=1), inputs(rand(3, 4, 5)))
fn_case("ReduceAminModule_basic", lambda x: torch.amin(x, dim=(0, 1)), inputs(rand(3, 4, 5)))
fn_case("ReduceMaxAllModule_basic", lambda x: x.max(), inputs(rand(3, 4)))
fn_case("ReduceMaxDimModule_basic", lambda x: torch.max(x, dim=1), inputs(rand(3, 4)))
fn_case("ArgmaxModule_basic", lambda x: torch.argmax(x, dim=1), inputs(rand(3, 7)))
fn_case("ArgmaxModule_all", lambda x: torch.argmax(x), inputs(rand(3, 7)))
fn_case("VarModule_basic", lambda x: torch.var(x, dim=1), inputs(rand(3, 7)))
fn_case("VarModule_unbiasedFalse", lambda x: torch.var(x, dim=(0, 1), unbiased=False, keepdim=True), inputs(rand(3, 7, 2)))
fn_case("SoftmaxModule_basic", lambda x: torch.softmax(x, dim=-1), inputs(rand(3, 7, low=-5, high=5)))
fn_case("SoftmaxModule_dim0", lambda x: torch.softmax(x, dim=0), inputs(rand(3, 7, low=-5, high=5)))
fn_case("LogSoftmaxModule_basic", lambda x: torch.log_softmax(x, dim=1), inputs(rand(3, 7, low=-5, high=5)))
fn_case("ReduceProdModule_basic", lambda x: x.prod(dim=1), inputs(rand(3, 4)))
fn_case("ReduceAnyModule_basic", lambda x: (x > 0.5).any(dim=1), inputs(rand(3, 4)))
