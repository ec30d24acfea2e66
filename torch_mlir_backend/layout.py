"""Channels-last regions: convolution networks run in NHWC between their convolutions.

oneDNN's convolutions are faster on channels-last tensors (ResNet-18's 20 convolutions at batch 8,
one thread: 131 ms instead of 145 ms; its stem 7x7 convolution 8.0 instead of 12.6 ms), and a
max pool over NHWC reads whole channel vectors. Inductor picks that layout for such graphs; here
the choice is made on the inference FX graph, before import (`to_channels_last`):

- every 2-D f32/f64 `aten.convolution` becomes `tmb.convolution_channels_last` on `[N, H, W, C]`
  tensors (the extern kernel hands oneDNN channels-last views of them, no copy);
- the ops between convolutions follow them into NHWC: batch norm in inference (as eager's CPU
  kernel computes it: `x * (w / sqrt(var + eps)) + (b - mean * w / sqrt(var + eps))`, a
  per-channel broadcast over the last dimension), relu and other unary elementwise ops, `add`
  of two such tensors (or of one and a number), max pooling whose indices nobody reads
  (`tmb.max_pool2d_channels_last`), and a mean over H and W (global average pooling);
- where a region value meets an op outside the region (or a graph output), a permute gives it
  back in NCHW; a region input from outside is permuted to NHWC. Our lowering materializes those
  permutes (one copy each), which is why the region grows as far as it can.

Training graphs keep NCHW (their saved activations and backward kernels are channels-first).

Off by default (`TORCH_MLIR_BACKEND_CHANNELS_LAST=1` turns it on): measured with
`benchmarks/run.py` on this 2-core Zen 4, it wins on ResNet-18 at batch 8 (161 -> 155 ms at one
thread, 88.9 -> 84.2 ms at two) but loses at batch 1 (26.3 -> 31.1 ms, 16.4 -> 18.0 ms), where
oneDNN's channels-last convolutions of small images are slower than its blocked channels-first
ones, and on a lone convolution, which pays for the permutes at both ends. Choosing per graph
needs a measurement (autotuning) this pass does not do yet.

The two `tmb::` ops are real PyTorch ops (CPU and fake kernels), so graphs using them also run
eagerly, and the extern kernel runtime finds the convolution by name.
"""
from __future__ import annotations

import operator
import os
from typing import Optional

import torch
import torch.fx

aten = torch.ops.aten
ENV_CHANNELS_LAST = "TORCH_MLIR_BACKEND_CHANNELS_LAST"
TO_CHANNELS_LAST = [0, 2, 3, 1]
TO_CHANNELS_FIRST = [0, 3, 1, 2]
CONV_DTYPES = (torch.float32, torch.float64)

_lib = torch.library.Library("tmb", "DEF")
_lib.define("convolution_channels_last(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, "
            "SymInt[] padding, SymInt[] dilation, SymInt groups) -> Tensor")
_lib.define("max_pool2d_channels_last(Tensor input, int[2] kernel_size, int[2] stride, int[2] padding, "
            "int[2] dilation, bool ceil_mode) -> Tensor")


def _convolution_channels_last(x, weight, bias, stride, padding, dilation, groups):
    """`aten.convolution` of NHWC `x` -> NHWC result: oneDNN gets channels-last views."""
    y = aten.convolution(x.permute(TO_CHANNELS_FIRST), weight, bias, stride, padding, dilation, False,
                         [0] * len(stride), groups)
    return y.permute(TO_CHANNELS_LAST).contiguous()


def _max_pool2d_channels_last(x, kernel_size, stride, padding, dilation, ceil_mode):
    y = aten.max_pool2d_with_indices(x.permute(TO_CHANNELS_FIRST), kernel_size, stride, padding, dilation,
                                     ceil_mode)[0]
    return y.permute(TO_CHANNELS_LAST).contiguous()


_lib.impl("convolution_channels_last", _convolution_channels_last, "CompositeExplicitAutograd")
_lib.impl("max_pool2d_channels_last", _max_pool2d_channels_last, "CompositeExplicitAutograd")


# The kernels only call ATen ops, which FakeTensors run: they are their own fake kernels.
torch.library.register_fake("tmb::convolution_channels_last")(_convolution_channels_last)
torch.library.register_fake("tmb::max_pool2d_channels_last")(_max_pool2d_channels_last)


def enabled() -> bool:
    """On when $TORCH_MLIR_BACKEND_CHANNELS_LAST=1, and only where convolutions call oneDNN
    (the `aten` convolution policy)."""
    from .options import convolution_policy

    return convolution_policy() == "aten" and \
        os.environ.get(ENV_CHANNELS_LAST, "0").strip().lower() in ("1", "on", "true", "yes")


# Unary elementwise ops (first argument the tensor, the rest scalars) that follow their input
# into NHWC.
UNARY = {aten.relu.default, aten.hardtanh.default, aten.clamp.default, aten.clamp_min.default,
         aten.clamp_max.default, aten.sigmoid.default, aten.silu.default, aten.gelu.default,
         aten.hardswish.default, aten.hardsigmoid.default, aten.leaky_relu.default, aten.tanh.default,
         aten.elu.default, aten.mul.Scalar, aten.add.Scalar}
BINARY_SAME_SHAPE = {aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor}


def _val(node) -> Optional[torch.Tensor]:
    v = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return v if isinstance(v, torch.Tensor) else None


def _static_4d(node) -> bool:
    v = _val(node)
    return v is not None and v.dim() == 4 and all(isinstance(s, int) for s in v.shape)


def _only_first_result_used(node) -> bool:
    return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)


def _is_candidate_conv(node) -> bool:
    if node.op != "call_function" or node.target is not aten.convolution.default:
        return False
    x, w, _, _, _, _, transposed, _, _ = node.args
    return (not transposed and _static_4d(node) and _static_4d(x) and _static_4d(w)
            and _val(x).dtype in CONV_DTYPES)


def to_channels_last(gm: torch.fx.GraphModule) -> bool:
    """Rewrite `gm` (an inference graph) so its convolution regions run in NHWC; True if it
    changed. See the module docstring."""
    if not enabled():
        return False
    graph = gm.graph
    if not any(_is_candidate_conv(n) for n in graph.nodes):
        return False
    region: dict = {}  # old node -> its NHWC replacement
    permuted_in: dict = {}  # old node outside the region -> its NHWC permute

    def nhwc(node):
        """`node` in NHWC (inserted at the current insertion point, before its first user)."""
        if node in region:
            return region[node]
        if node not in permuted_in:
            p = graph.call_function(aten.permute.default, (node, TO_CHANNELS_LAST))
            p.meta["val"] = _val(node).permute(TO_CHANNELS_LAST)
            permuted_in[node] = p
        return permuted_in[node]

    def joins(node) -> bool:
        """Whether `node` can run in NHWC given what is already in the region."""
        if node.op != "call_function":
            return False
        if _is_candidate_conv(node):
            return True
        target, args = node.target, node.args
        if target in UNARY:
            return args[0] in region and _static_4d(node) and all(not isinstance(a, torch.fx.Node) for a in args[1:]) \
                and not node.kwargs
        if target in BINARY_SAME_SHAPE:
            a, b = args[0], args[1]
            if isinstance(b, (int, float)) and not isinstance(b, bool) or isinstance(a, (int, float)) and not isinstance(a, bool):
                return (a in region or b in region) and _static_4d(node)  # with a Python number
            return (a in region or b in region) and all(
                isinstance(t, torch.fx.Node) and _static_4d(t) and _val(t).shape == _val(node).shape for t in (a, b))
        if target is aten._native_batch_norm_legit_no_training.default:
            return args[0] in region and _only_first_result_used(node)
        if target is aten.max_pool2d_with_indices.default:
            return args[0] in region and _only_first_result_used(node) and _static_4d(args[0])
        if target is operator.getitem:
            return args[0] in region and args[1] == 0
        if target is aten.mean.dim:  # global average pooling: over H and W, without keepdim
            dims = args[1] if len(args) > 1 else None
            keepdim = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
            return args[0] in region and dims is not None and sorted(d % 4 for d in dims) == [2, 3] \
                and not keepdim
        return False

    for node in list(graph.nodes):
        if not joins(node):
            continue
        target, args = node.target, node.args
        if target is operator.getitem:  # item 0 of a batch norm or max pool already rewritten
            region[node] = region[args[0]]
            continue
        # New nodes go before the old one: its inputs are defined there already.
        with graph.inserting_before(node):
            if _is_candidate_conv(node):
                x, w, b, stride, padding, dilation, _, _, groups = args
                new = graph.call_function(torch.ops.tmb.convolution_channels_last.default,
                                          (nhwc(x), w, b, stride, padding, dilation, groups))
            elif target in UNARY:
                new = graph.call_function(target, (region[args[0]], *args[1:]))
            elif target in BINARY_SAME_SHAPE:
                a, b = (nhwc(t) if isinstance(t, torch.fx.Node) else t for t in args[:2])
                new = graph.call_function(target, (a, b, *args[2:]), dict(node.kwargs))
            elif target is aten._native_batch_norm_legit_no_training.default:
                new = _batch_norm_nhwc(graph, node, region[args[0]])
            elif target is aten.mean.dim:  # [N, C] either way: the result leaves the region as is
                new = graph.call_function(target, (region[args[0]], [1, 2], False), dict(node.kwargs))
                new.meta["val"] = node.meta["val"]
                node.replace_all_uses_with(new)
                graph.erase_node(node)
                continue
            else:  # max_pool2d_with_indices
                new = _max_pool_nhwc(graph, node, region[args[0]])
        new.meta["val"] = _first_val(node).permute(TO_CHANNELS_LAST)
        region[node] = new

    # Users outside the region get NCHW back (one permute per value).
    for old, new in list(region.items()):
        if old.target is aten._native_batch_norm_legit_no_training.default or \
                old.target is aten.max_pool2d_with_indices.default:
            continue  # only their getitem 0 is used, handled as its own entry
        outside = [u for u in old.users if u not in region]
        if not outside:
            continue
        with graph.inserting_before(new.next):
            back = graph.call_function(aten.permute.default, (new, TO_CHANNELS_FIRST))
        back.meta["val"] = _first_val(old)
        for user in outside:
            user.replace_input_with(old, back)
    for old in reversed(list(region)):
        if not old.users:
            graph.erase_node(old)
    graph.lint()
    gm.recompile()
    return True


def _first_val(node):
    v = node.meta.get("val")
    return v[0] if isinstance(v, (tuple, list)) else v


def _batch_norm_nhwc(graph, node, x):
    """Inference batch norm of NHWC `x`, as eager's CPU kernel: x * scale + shift per channel."""
    _, weight, bias, mean, var, _momentum, eps = node.args
    def call(target, *args):
        n = graph.call_function(target, args)
        vals = [a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args]
        n.meta["val"] = target(*vals)
        return n

    invstd = call(aten.rsqrt.default, call(aten.add.Scalar, var, eps))
    scale = call(aten.mul.Tensor, invstd, weight) if weight is not None else invstd
    shift = call(aten.mul.Tensor, mean, scale)
    shift = call(aten.sub.Tensor, bias, shift) if bias is not None else call(aten.neg.default, shift)
    return call(aten.add.Tensor, call(aten.mul.Tensor, x, scale), shift)


def _max_pool_nhwc(graph, node, x):
    """`max_pool2d_with_indices` arguments with their defaults spelled out (stride [] is the
    kernel size; one entry stands for both dimensions)."""
    args = list(node.args) + [None] * (6 - len(node.args))
    _, kernel, stride, padding, dilation, ceil_mode = args

    def pair(value, default):
        value = list(value) if value is not None and len(value) else list(default)
        return value * 2 if len(value) == 1 else value

    kernel = pair(kernel, [1])
    return graph.call_function(torch.ops.tmb.max_pool2d_channels_last.default,
                               (x, kernel, pair(stride, kernel), pair(padding, [0]), pair(dilation, [1]),
                                bool(ceil_mode)))
