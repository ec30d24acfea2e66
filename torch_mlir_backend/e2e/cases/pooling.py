"""Pooling cases: max_pool2d (values and indices), avg_pool2d, adaptive average pooling."""
import torch
import torch.nn.functional as F

from ._util import fn_case, inputs, rand

fn_case("MaxPool2dModule_basic", lambda x: F.max_pool2d(x, 2), inputs(rand(2, 3, 8, 8)))
fn_case("MaxPool2dModule_stridePadding", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), inputs(rand(2, 3, 9, 9)))
fn_case("MaxPool2dModule_ceilMode", lambda x: F.max_pool2d(x, 2, ceil_mode=True), inputs(rand(1, 2, 7, 7)))
fn_case("MaxPool2dModule_withIndices", lambda x: F.max_pool2d(x, 2, return_indices=True), inputs(rand(1, 2, 6, 6)))
fn_case("AvgPool2dModule_basic", lambda x: F.avg_pool2d(x, 2), inputs(rand(2, 3, 8, 8)))
fn_case("AvgPool2dModule_padding", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), inputs(rand(2, 3, 9, 9)))
fn_case("AvgPool2dModule_noCountPad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False), inputs(rand(2, 3, 9, 9)))
fn_case("AdaptiveAvgPool2dModule_1x1", lambda x: F.adaptive_avg_pool2d(x, 1), inputs(rand(2, 3, 7, 7)))
fn_case("AdaptiveAvgPool2dModule_3x3", lambda x: F.adaptive_avg_pool2d(x, 3), inputs(rand(2, 3, 7, 8)))
