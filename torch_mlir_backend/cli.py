"""The `torch-mlir-backend` command line (like torch-mlir's tools):

    torch-mlir-backend import model.pt --shape 1x3x224x224:f32        # TorchScript archive
    torch-mlir-backend import my_pkg.models:make_mlp --shape 8x64:f32  # a Python function/module
    torch-mlir-backend opt model.mlir --to linalg-on-tensors            # or --stages a,b,c
    torch-mlir-backend run model.mlir --shape 8x64:f32                  # random inputs, output stats
    torch-mlir-backend explain my_pkg.models:make_mlp --shape 8x64:f32  # what compiles, what falls back

`import` prints the Torch dialect: a `.pt` file goes through the TorchScript importer; a
`module:attribute` naming a script function/module does too, anything else (a function, an
`nn.Module` instance, an `nn.Module` class or a function returning a module built with no
arguments) through `torch.export`. Errors (a malformed file, an unsupported construct) are one
clear message and exit status 1, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Optional, Sequence

import torch

_DTYPES = {
    "f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
    "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8, "ui8": torch.uint8,
    "u8": torch.uint8, "i1": torch.bool, "bool": torch.bool,
}
_BUILTIN_TO_DTYPE = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
                     "bf16": torch.bfloat16, "i64": torch.int64, "i32": torch.int32,
                     "i16": torch.int16, "i8": torch.int8, "i1": torch.bool, "ui8": torch.uint8}


class CliError(Exception):
    """A user error: printed as one line, exit status 1."""


def parse_shape(text: str) -> tuple[tuple[int, ...], torch.dtype]:
    """`2x3:f32` -> ((2, 3), float32); `:f32` or `scalar:f32` is 0-d; the dtype defaults to f32."""
    dims, _, dtype_name = text.partition(":")
    dtype_name = dtype_name or "f32"
    if dtype_name not in _DTYPES:
        raise CliError(f"--shape {text!r}: unknown dtype {dtype_name!r} (one of {', '.join(_DTYPES)})")
    if dims in ("", "scalar"):
        return (), _DTYPES[dtype_name]
    try:
        shape = tuple(int(d) for d in dims.split("x"))
    except ValueError:
        raise CliError(f"--shape {text!r}: sizes must be integers separated by 'x', like 2x3:f32") from None
    if any(d < 0 for d in shape):
        raise CliError(f"--shape {text!r}: negative size")
    return shape, _DTYPES[dtype_name]


def random_tensor(shape, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
    return torch.randint(0 if dtype == torch.uint8 else -8, 9, shape, generator=generator, dtype=dtype)


def _inputs(shapes: Sequence[str], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [random_tensor(*parse_shape(s), generator=g) for s in shapes]


def _resolve_target(target: str) -> Any:
    """`package.module:attribute` -> the object (a `.pt` path is handled by the caller)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"{target!r}: expected a .pt file or module:function (like my_pkg.models:mlp)")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise CliError(f"{target!r}: cannot import module {module_name!r}: {e}") from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise CliError(f"{target!r}: module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    return obj


def _as_module(obj: Any) -> torch.nn.Module:
    if isinstance(obj, torch.nn.Module):
        return obj.eval()
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        return obj().eval()
    if callable(obj):
        class Wrapped(torch.nn.Module):
            def forward(self, *args):
                return obj(*args)

        return Wrapped().eval()
    raise CliError(f"{obj!r} is neither a function nor an nn.Module")


def import_target(target: str, shapes: Sequence[str], seed: int = 0, decompose: bool = True):
    """The Torch dialect module of a `.pt` file or `module:function` on inputs of `shapes`."""
    from .importers.torchscript_importer import import_torchscript

    inputs = _inputs(shapes, seed)
    if target.endswith(".pt") or target.endswith(".pth") or os.path.isfile(target):
        return import_torchscript(target, inputs, decompose=decompose)
    obj = _resolve_target(target)
    if isinstance(obj, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        return import_torchscript(obj, inputs, decompose=decompose)
    from .export import export_and_import

    if callable(obj) and not isinstance(obj, (type, torch.nn.Module)):
        # A factory `make_model()` returning a module: build it.
        try:
            built = obj() if _takes_no_arguments(obj) else None
        except Exception:
            built = None
        if isinstance(built, torch.nn.Module):
            obj = built
    return export_and_import(_as_module(obj), *inputs, output_type="torch")


def _takes_no_arguments(fn) -> bool:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def _read_module(path: str):
    """Parse a `.mlir` file; a syntax error names the file, line and column."""
    from mlir import ir

    from .importers.fx_importer import new_context

    if not os.path.isfile(path):
        raise CliError(f"{path}: no such file")
    try:
        with open(path) as f:
            text = f.read()
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text .mlir file") from None
    if "__elided__" in text:
        raise CliError(f"{path}: holds elided constants (written with --elide): its data is missing; "
                       f"write it again without --elide")
    ctx = new_context()
    try:
        with ctx:
            return ir.Module.parse(text)
    except ir.MLIRError as e:
        details = "; ".join(f"{_file_location(path, d.location)}: {d.message}" for d in e.error_diagnostics)
        raise CliError(f"cannot parse MLIR: {details or e}") from None


def _file_location(path: str, location) -> str:
    """`loc("-":2:10)` (text parsed from a string) -> `path:2:10`."""
    import re

    m = re.search(r'"-":(\d+):(\d+)', str(location))
    return f"{path}:{m.group(1)}:{m.group(2)}" if m else f"{path}: {location}"


def _is_torch_dialect(module) -> bool:
    text = module.operation.get_asm(large_elements_limit=1)
    return "!torch." in text or '"torch.' in text


def _entry_function(module, entry: str):
    from mlir import ir

    funcs = [op for op in module.body.operations if op.operation.name == "func.func"]
    for op in funcs:
        if ir.StringAttr(op.attributes["sym_name"]).value == entry:
            return op
    names = [ir.StringAttr(op.attributes["sym_name"]).value for op in funcs]
    raise CliError(f"no function @{entry} in the module (functions: {', '.join(names) or 'none'})")


def _stage_names() -> list[str]:
    from .lowering.pipeline import default_pipeline

    return ["torch-to-linalg"] + default_pipeline().stage_names()


def optimize(module, stages: Optional[Sequence[str]] = None, to: Optional[str] = None):
    """Run named stages (`torch-to-linalg` then the runtime pipeline's stages) on `module`."""
    from .lowering import lower_to_linalg
    from .lowering.pipeline import Pipeline, default_pipeline

    pipeline = default_pipeline()
    known = _stage_names()
    if to is not None:
        if to not in ("linalg-on-tensors", "llvm"):
            raise CliError(f"--to must be linalg-on-tensors or llvm, not {to!r}")
        stages = (["torch-to-linalg"] if _is_torch_dialect(module) else []) + \
            (pipeline.stage_names() if to == "llvm" else [])
    stages = list(stages or [])
    unknown = [s for s in stages if s not in known]
    if unknown:
        raise CliError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(known)}")
    if "torch-to-linalg" in stages:
        if stages.index("torch-to-linalg") != 0:
            raise CliError("torch-to-linalg must come first")
        module = lower_to_linalg(module)
        stages = stages[1:]
    if stages:
        Pipeline([pipeline.stage(s) for s in stages], name="cli").run(module)
    return module


def run_module(module, shapes: Sequence[str], entry: str = "main", seed: int = 0):
    """Compile `@entry` of a Torch-dialect or linalg-on-tensors module and run it on random
    inputs (`shapes`, default: the signature's static shapes); returns (inputs, outputs)."""
    from mlir import ir

    from .lowering import lower_to_linalg
    from .runtime import compile_linalg
    from .types import TensorSpec

    with module.context:
        fn = _entry_function(module, entry)
        if entry != "main":
            fn.attributes["sym_name"] = ir.StringAttr.get("main")
        ftype = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        torch_level = _is_torch_dialect(module)
        arg_specs = [_spec_of(t) for t in ftype.inputs]
        result_specs = [_spec_of(t) for t in ftype.results]
    if shapes:
        if len(shapes) != len(arg_specs):
            raise CliError(f"@{entry} takes {len(arg_specs)} inputs, {len(shapes)} --shape given")
        inputs = _inputs(shapes, seed)
        for i, (x, spec) in enumerate(zip(inputs, arg_specs)):
            if x.dtype != spec.dtype or len(x.shape) != spec.rank or any(
                    d is not None and d != s for d, s in zip(spec.shape, x.shape)):
                raise CliError(f"--shape #{i + 1} ({list(x.shape)} {x.dtype}) does not match "
                               f"argument {i} of @{entry}: {spec}")
    else:
        if not all(s.is_static for s in arg_specs):
            raise CliError(f"@{entry} has dynamic input sizes ({', '.join(map(str, arg_specs))}): "
                           f"give --shape for each input")
        g = torch.Generator().manual_seed(seed)
        inputs = [random_tensor(s.shape, s.dtype, g) for s in arg_specs]
    if not all(s.is_static for s in result_specs):
        raise CliError(f"@{entry} has results of dynamic size ({', '.join(map(str, result_specs))}): "
                       f"run supports static result shapes")
    linalg_module = lower_to_linalg(module) if torch_level else module
    compiled = compile_linalg(linalg_module, [TensorSpec.from_tensor(x) for x in inputs], result_specs)
    return inputs, compiled(*inputs)


def _spec_of(t):
    from .types import TensorSpec

    text = str(t)
    if text.startswith("!torch.vtensor<"):
        return TensorSpec.from_torch_type(text)
    if text.startswith("tensor<"):
        body = text[len("tensor<"):-1]
        *dims, element = body.split("x")
        if element not in _BUILTIN_TO_DTYPE:
            raise CliError(f"unsupported element type {element} in {text}")
        return TensorSpec(tuple(None if d == "?" else int(d) for d in dims), _BUILTIN_TO_DTYPE[element])
    raise CliError(f"run supports tensor arguments and results only, got {text}")


def describe_tensor(t: torch.Tensor) -> str:
    stats = ""
    if t.numel():
        f = t.double()
        stats = f" min={f.min().item():.6g} max={f.max().item():.6g} mean={f.mean().item():.6g}"
    return f"shape={list(t.shape)} dtype={str(t.dtype).replace('torch.', '')}{stats}"


# ------------------------------------------------------------------------------------------------
def _write(text: str, output: Optional[str]) -> None:
    if output:
        with open(output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _cmd_import(args) -> int:
    module = import_target(args.target, args.shape, args.seed, decompose=not args.no_decompose)
    _write(module.operation.get_asm(enable_debug_info=args.debug_info, large_elements_limit=args.elide),
           args.output)
    return 0


def _cmd_opt(args) -> int:
    if args.list_stages:
        print("\n".join(_stage_names()))
        return 0
    if not args.file:
        raise CliError("opt needs a .mlir file")
    if (args.stages is None) == (args.to is None):
        raise CliError("give exactly one of --stages a,b,... or --to linalg-on-tensors|llvm")
    module = _read_module(args.file)
    stages = [s for s in args.stages.split(",") if s] if args.stages is not None else None
    module = optimize(module, stages, args.to)
    _write(module.operation.get_asm(enable_debug_info=args.debug_info, large_elements_limit=args.elide),
           args.output)
    return 0


def _cmd_run(args) -> int:
    module = _read_module(args.file)
    inputs, outputs = run_module(module, args.shape, args.entry, args.seed)
    for i, x in enumerate(inputs):
        print(f"input {i}: {describe_tensor(x)}")
    for i, y in enumerate(outputs):
        print(f"output {i}: {describe_tensor(y)}")
    return 0


def _cmd_explain(args) -> int:
    try:
        from .explain import explain
    except ImportError:
        raise CliError("explain is not available: this installation has no torch_mlir_backend.explain") from None
    obj = _resolve_target(args.target)
    if callable(obj) and not isinstance(obj, (type, torch.nn.Module)) and _takes_no_arguments(obj):
        built = obj()
        if isinstance(built, torch.nn.Module):
            obj = built
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        obj = obj().eval()
    report = explain(obj, *_inputs(args.shape, args.seed))
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-mlir-backend",
        description="Import PyTorch programs into the Torch dialect, run pipeline stages, execute MLIR.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{import,opt,run,explain}")

    p = sub.add_parser("import", help="a .pt file or module:function -> Torch dialect text",
                       description="Import a TorchScript archive (torch.jit.save) or a Python "
                                   "module:function / nn.Module into the Torch dialect.")
    p.add_argument("target", help="model.pt, or package.module:function")
    p.add_argument("--shape", action="append", default=[], metavar="DIMS:DTYPE",
                   help="example input, like 2x3:f32 (repeat per input; :f32 is a 0-d tensor)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random example inputs")
    p.add_argument("--no-decompose", action="store_true",
                   help="TorchScript: keep the script's ops instead of Core ATen decompositions")
    _output_options(p)
    p.set_defaults(handler=_cmd_import)

    p = sub.add_parser("opt", help="run named pipeline stages on a .mlir file (like torch-mlir-opt)",
                       description="Run pipeline stages on a .mlir file: --stages a,b,... in order, or "
                                   "--to linalg-on-tensors|llvm for all stages up to that level.")
    p.add_argument("file", nargs="?", help="input .mlir (Torch dialect or linalg-on-tensors)")
    p.add_argument("--stages", help="comma-separated stage names (see --list-stages)")
    p.add_argument("--to", choices=["linalg-on-tensors", "llvm"], help="lower to this level")
    p.add_argument("--list-stages", action="store_true", help="print the stage names and exit")
    _output_options(p)
    p.set_defaults(handler=_cmd_opt)

    p = sub.add_parser("run", help="execute a .mlir entry on random inputs, print output stats",
                       description="JIT-compile a Torch-dialect or linalg-on-tensors function and "
                                   "run it on random inputs; prints each output's shape and stats.")
    p.add_argument("file", help="input .mlir")
    p.add_argument("--shape", action="append", default=[], metavar="DIMS:DTYPE",
                   help="input shape, like 2x3:f32 (default: the signature's static shapes)")
    p.add_argument("--entry", default="main", help="function to run (default: main)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("explain", help="what compiles and what falls back to eager, per op",
                       description="Run a module:function once under torch.compile(backend='torch_mlir') "
                                   "and report compiled regions and eager fallbacks with reasons.")
    p.add_argument("target", help="package.module:function (or nn.Module class/instance)")
    p.add_argument("--shape", action="append", default=[], metavar="DIMS:DTYPE", help="input, like 2x3:f32")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.set_defaults(handler=_cmd_explain)
    return parser


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="write here instead of stdout")
    p.add_argument("--debug-info", action="store_true", help="print locations")
    p.add_argument("--elide", type=int, default=None, metavar="N",
                   help="elide constant tensors with more than N elements")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mlir import ir

    from .errors import TorchMlirBackendError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CliError, TorchMlirBackendError) as e:
        print(f"torch-mlir-backend {args.command}: error: {e}", file=sys.stderr)
        return 1
    except ir.MLIRError as e:
        print(f"torch-mlir-backend {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        # Not a known user error: still one message and a failure status, never a traceback.
        print(f"torch-mlir-backend {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
