"""OpInfo sweep: PyTorch's OpInfo database (`op_db`) through `torch.compile` with our backend and
with Inductor, compared with eager.

For every selected OpInfo and dtype, the op's CPU sample inputs (the first `--max-samples`) run
eagerly and through `torch.compile(fn, backend=B, fullgraph=True, dynamic=False)` for each
backend B. Each sample's outcome per backend is one of:

- `pass`: the compiled result matches eager (`torch.testing.assert_close` with the dtype's default
  tolerances, widened by the OpInfo's own `toleranceOverride` decorators for CPU);
- `wrong`: it ran but the values (or shapes/dtypes) differ;
- `error`: compiling or running raised, crashed the worker or exceeded `--timeout` seconds.

Samples that eager itself cannot run are counted as `eager_error` and excluded from the
per-backend counts. Writes `<out>.json` (every sample) and `<out>.md` (the table per backend and
dtype and the ops we fail that Inductor passes, with our first error line).

This is a measurement tool, not a CI test (tests/opinfo/test_opinfo_subset.py runs a fixed subset
in CI). Run it as

    /work/venv/bin/python tools/opinfo_sweep.py --dtypes f32,f64,i64,bool --jobs 2 \
        --out tools/results/opinfo_sweep

Work is spread over `--jobs` worker processes, each resetting dynamo before every sample. A
worker that stops reporting for `--timeout` seconds (a hang, or a crash) is killed and replaced;
its current sample is recorded as an error and the worker's remaining samples go on in the new one.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import re
import sys
import time
import traceback
from collections import defaultdict
from typing import Any, Optional

DTYPE_NAMES = {
    "f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
    "i64": "int64", "i32": "int32", "i16": "int16", "i8": "int8", "u8": "uint8", "bool": "bool",
    "c64": "complex64",
}
SHORT_NAME = {v: k for k, v in DTYPE_NAMES.items()}
BACKENDS = ("torch_mlir", "inductor")


# ----------------------------------------------------------------------------------------------
# Selecting ops and running one sample (worker side)
# ----------------------------------------------------------------------------------------------

def op_key(op) -> str:
    """`name` or `name.variant`: unique across op_db."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def load_op_db() -> dict:
    from torch.testing._internal.common_methods_invocations import op_db

    return {op_key(op): op for op in op_db}


def select_ops(pattern: Optional[str]) -> list[str]:
    keys = sorted(load_op_db())
    if pattern:
        regex = re.compile(pattern)
        keys = [k for k in keys if regex.search(k)]
    return keys


def tolerance_for(op, dtype) -> tuple[Optional[float], Optional[float]]:
    """(atol, rtol) from the OpInfo's `toleranceOverride` decorators that apply to CPU and `dtype`
    (the largest over the tests they decorate); (None, None) means assert_close's defaults."""
    from torch.testing._internal.common_device_type import toleranceOverride

    atol = rtol = None
    for info in getattr(op, "decorators", ()) or ():
        device_type = getattr(info, "device_type", None)
        if device_type not in (None, "cpu"):
            continue
        dtypes = getattr(info, "dtypes", None)
        if dtypes is not None and dtype not in dtypes:
            continue
        for dec in getattr(info, "decorators", ()) or ():
            if isinstance(dec, toleranceOverride) and dtype in dec.d:
                tol = dec.d[dtype]
                atol = max(atol or 0.0, tol.atol)
                rtol = max(rtol or 0.0, tol.rtol)
    return atol, rtol


def _first_line(exc: BaseException) -> str:
    # Dynamo wraps a backend's exception (BackendCompilerFailed); the cause names the op.
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    if inner is not None and type(exc).__name__ == "BackendCompilerFailed":
        exc = inner
    text = f"{type(exc).__name__}: {exc}".strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("Traceback"):
            return line[:300]
    return type(exc).__name__


def _as_comparable(value):
    """Named tuples (torch.return_types) and lists as plain tuples, so assert_close compares
    element by element."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return tuple(_as_comparable(v) for v in value)
    return value


def _clone_leaves(leaves):
    import torch

    return [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]


def run_sample(op, sample, dtype, backends) -> dict:
    """Eager, then each backend, on one SampleInput. Returns {'eager': status, backend: {...}}."""
    import torch
    import torch.utils._pytree as pytree

    tree = (sample.input, tuple(sample.args), dict(sample.kwargs))
    leaves, spec = pytree.tree_flatten(tree)
    tensor_pos = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]

    def fn(*tensors):
        filled = list(leaves)
        for pos, t in zip(tensor_pos, tensors):
            filled[pos] = t
        inp, args, kwargs = pytree.tree_unflatten(filled, spec)
        return op.op(inp, *args, **kwargs)

    def tensors():
        return [leaves[i].clone() for i in tensor_pos]

    result: dict[str, Any] = {"sample": _describe_sample(sample)}
    try:
        torch.manual_seed(0)
        want = _as_comparable(fn(*tensors()))
    except Exception as e:
        result["eager"] = "error"
        result["eager_message"] = _first_line(e)
        return result
    result["eager"] = "pass"
    atol, rtol = tolerance_for(op, dtype)
    for backend in backends:
        torch._dynamo.reset()
        try:
            # Our backend in strict mode: an op it cannot lower is an error, not an eager fallback
            # that would count as a pass.
            options = {"strict": True} if backend == "torch_mlir" else None
            compiled = torch.compile(fn, backend=backend, fullgraph=True, dynamic=False, options=options)
            torch.manual_seed(0)
            got = _as_comparable(compiled(*tensors()))
        except Exception as e:
            result[backend] = {"status": "error", "message": _first_line(e)}
            continue
        try:
            torch.testing.assert_close(got, want, atol=atol, rtol=rtol, equal_nan=True,
                                       check_device=False) if atol is not None else \
                torch.testing.assert_close(got, want, equal_nan=True, check_device=False)
            result[backend] = {"status": "pass"}
        except Exception as e:  # AssertionError, or a type mismatch assert_close reports
            result[backend] = {"status": "wrong", "message": _first_line(e)}
    return result


def _describe_sample(sample) -> str:
    import torch
    import torch.utils._pytree as pytree

    def short(x):
        if isinstance(x, torch.Tensor):
            return f"T{list(x.shape)}:{SHORT_NAME.get(str(x.dtype).replace('torch.', ''), x.dtype)}"
        return repr(x)[:40]

    tree = (sample.input, tuple(sample.args), dict(sample.kwargs))
    return str(pytree.tree_map(short, tree))[:200]


def worker_main(tasks, events, backends, max_samples, worker_id):
    """Run tasks (op_key, dtype_name, first_sample_index); report every sample's start and end so
    the parent can time it out."""
    import torch

    torch.set_num_threads(1)
    import torch_mlir_backend  # noqa: F401  (registers the backend)

    ops = load_op_db()
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            events.put(("exit", worker_id))
            return
        key, dtype_name, start = task
        op = ops[key]
        dtype = getattr(torch, dtype_name)
        try:
            samples = list(_take(op.sample_inputs("cpu", dtype, requires_grad=False), max_samples))
        except Exception as e:
            events.put(("task_error", worker_id, key, dtype_name, _first_line(e)))
            events.put(("task_done", worker_id, key, dtype_name))
            continue
        for index in range(start, len(samples)):
            events.put(("start", worker_id, key, dtype_name, index))
            try:
                res = run_sample(op, samples[index], dtype, backends)
            except Exception as e:  # the harness itself failed on this sample
                res = {"sample": "?", "eager": "error", "eager_message": "harness: " + _first_line(e)}
            events.put(("sample", worker_id, key, dtype_name, index, res, len(samples)))
        events.put(("task_done", worker_id, key, dtype_name))


def _take(iterable, n):
    for i, x in enumerate(iterable):
        if i >= n:
            return
        yield x


# ----------------------------------------------------------------------------------------------
# Scheduling (parent side)
# ----------------------------------------------------------------------------------------------

class Worker:
    def __init__(self, ctx, worker_id, backends, max_samples, events):
        self.id = worker_id
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=worker_main,
                                   args=(self.tasks, events, backends, max_samples, worker_id),
                                   daemon=True)
        self.process.start()
        self.current: Optional[tuple] = None  # (key, dtype, index) of the running sample
        self.task: Optional[tuple] = None  # (key, dtype)
        self.last_event = time.monotonic()


def sweep(keys, dtype_names, backends, max_samples, jobs, timeout, deadline, log) -> dict:
    """Returns {(key, dtype): {"samples": [...], "task_error": str?}}."""
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    import torch

    ops = load_op_db()
    # Only the dtypes eager supports on CPU for the op (OpInfo's own declaration).
    pending = [(k, d, 0) for k in keys for d in dtype_names
               if getattr(torch, d) in ops[k].supported_dtypes("cpu")]
    pending.reverse()
    results: dict = defaultdict(lambda: {"samples": {}})
    workers: dict[int, Worker] = {}
    retries: dict = defaultdict(int)
    next_id = 0

    def spawn():
        nonlocal next_id
        w = Worker(ctx, next_id, backends, max_samples, events)
        workers[w.id] = w
        next_id += 1
        return w

    def feed(w):
        if pending and (deadline is None or time.time() < deadline):
            key, d, start = pending.pop()
            w.task = (key, d)
            w.last_event = time.monotonic()
            w.tasks.put((key, d, start))
        else:
            w.task = None
            w.tasks.put(None)

    for _ in range(jobs):
        feed(spawn())
    done_tasks = 0
    total_tasks = len(pending)
    t0 = time.time()
    while workers:
        try:
            ev = events.get(timeout=1.0)
        except queue.Empty:
            ev = None
        if ev is not None:
            kind, wid = ev[0], ev[1]
            w = workers.get(wid)
            if w is None:
                continue
            w.last_event = time.monotonic()
            if kind == "start":
                w.current = ev[2:5]
            elif kind == "sample":
                key, d, index, res, n = ev[2:7]
                results[(key, d)]["samples"][index] = res
                results[(key, d)]["count"] = n
                w.current = None
            elif kind == "task_error":
                results[(ev[2], ev[3])]["task_error"] = ev[4]
            elif kind == "task_done":
                done_tasks += 1
                if done_tasks % 20 == 0:
                    log(f"[{time.time() - t0:7.0f}s] {done_tasks}/{total_tasks} op-dtype tasks done")
                feed(w)
            elif kind == "exit":
                w.process.join(timeout=10)
                del workers[wid]
        # Hung or dead workers: record the running sample as an error and go on in a new worker.
        for w in list(workers.values()):
            dead = not w.process.is_alive()
            hung = w.current is not None and time.monotonic() - w.last_event > timeout
            if not (dead or hung) or w.task is None:
                if dead and w.task is None:
                    del workers[w.id]
                continue
            if w.current is not None:
                key, d, index = w.current
                why = f"timeout after {timeout:.0f}s" if hung else f"worker died (exit code {w.process.exitcode})"
                results[(key, d)]["samples"][index] = {
                    "sample": "?", "eager": "pass",
                    **{b: {"status": "error", "message": why} for b in backends}}
                log(f"{key} {d} sample {index}: {why}")
                pending.append((key, d, index + 1))
            else:
                # Died outside a sample (e.g. importing the backend failed while someone edits
                # it): retry the task a few times before recording it.
                key, d = w.task
                retries[(key, d)] += 1
                if retries[(key, d)] <= 3:
                    log(f"{key} {d}: worker died outside a sample; retrying")
                    time.sleep(5.0)
                    pending.append((key, d, 0))
                else:
                    results[(key, d)]["task_error"] = f"worker died (exit code {w.process.exitcode})"
                    done_tasks += 1
            if w.process.is_alive():
                w.process.kill()
            w.process.join(timeout=10)
            del workers[w.id]
            feed(spawn())
    return results


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------

def summarize(results, backends, dtype_names) -> dict:
    counts = {b: {d: defaultdict(int) for d in dtype_names} for b in backends}
    eager = {d: defaultdict(int) for d in dtype_names}
    for (key, d), entry in results.items():
        for res in entry["samples"].values():
            eager[d][res["eager"]] += 1
            if res["eager"] != "pass":
                continue
            for b in backends:
                counts[b][d][res[b]["status"]] += 1
    return {"backends": counts, "eager": eager}


def regressions_vs(results, ours, theirs) -> list[tuple]:
    """(op, dtype, samples theirs passes and we do not, our first message) per op and dtype."""
    rows = []
    for (key, d), entry in sorted(results.items()):
        lost = [r for r in entry["samples"].values()
                if r["eager"] == "pass" and r[theirs]["status"] == "pass" and r[ours]["status"] != "pass"]
        if lost:
            first = lost[0][ours]
            rows.append((key, d, len(lost), f"{first['status']}: {first.get('message', '')}"))
    return rows


def write_reports(results, backends, dtype_names, out, meta) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    summary = summarize(results, backends, dtype_names)
    payload = {
        "meta": meta,
        "summary": {b: {d: dict(c) for d, c in per.items()} for b, per in summary["backends"].items()},
        "eager": {d: dict(c) for d, c in summary["eager"].items()},
        "results": {f"{k}|{d}": {"task_error": e.get("task_error"),
                                 "samples": {str(i): s for i, s in sorted(e["samples"].items())}}
                    for (k, d), e in sorted(results.items())},
    }
    with open(out + ".json", "w") as f:
        json.dump(payload, f, indent=1)

    lines = [f"# OpInfo sweep", "", f"{meta['description']}", ""]
    lines += ["| backend | dtype | samples eager runs | pass | wrong | error | pass % |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for b in backends:
        for d in dtype_names:
            c = summary["backends"][b][d]
            n = c["pass"] + c["wrong"] + c["error"]
            pct = f"{100.0 * c['pass'] / n:.1f}" if n else "-"
            lines.append(f"| {b} | {SHORT_NAME.get(d, d)} | {n} | {c['pass']} | {c['wrong']} | {c['error']} | {pct} |")
    eager_err = {SHORT_NAME.get(d, d): summary["eager"][d].get("error", 0) for d in dtype_names}
    lines += ["", f"Samples eager itself fails on (excluded above): {eager_err}", ""]
    task_errors = [(k, d, e["task_error"]) for (k, d), e in sorted(results.items()) if e.get("task_error")]
    if task_errors:
        lines += [f"Op/dtype pairs whose sample generator failed: {len(task_errors)}", ""]
    if "torch_mlir" in backends and "inductor" in backends:
        rows = regressions_vs(results, "torch_mlir", "inductor")
        lines += ["## Ops we fail that Inductor passes", "",
                  f"{len(rows)} op/dtype pairs ({len({r[0] for r in rows})} ops).", "",
                  "| op | dtype | samples | our first failure |", "|---|---|---:|---|"]
        for key, d, n, msg in rows:
            msg = msg.replace("|", "\\|").replace("\n", " ")[:220]
            lines.append(f"| {key} | {SHORT_NAME.get(d, d)} | {n} | {msg} |")
    text = "\n".join(lines) + "\n"
    with open(out + ".md", "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", help="regular expression on op names (name or name.variant)")
    parser.add_argument("--dtypes", default="f32,f64,i64,bool",
                        help=f"comma-separated, from {','.join(DTYPE_NAMES)}")
    parser.add_argument("--max-samples", type=int, default=4, help="first N sample inputs per op and dtype")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per sample before it counts as an error")
    parser.add_argument("--deadline", help="UTC HH:MM after which no new op/dtype task starts")
    parser.add_argument("--stride", type=int, default=1,
                        help="visit ops in the order ops[0::s] + ops[1::s] + ... so a sweep cut short by "
                             "--deadline has covered the alphabet evenly")
    parser.add_argument("--out", default="tools/results/opinfo_sweep", help="output path without extension")
    args = parser.parse_args(argv)

    dtype_names = [DTYPE_NAMES[d.strip()] for d in args.dtypes.split(",") if d.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    keys = select_ops(args.ops)
    keys = [k for start in range(args.stride) for k in keys[start::args.stride]]
    deadline = None
    if args.deadline:
        import datetime as dt

        hh, mm = map(int, args.deadline.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    log(f"{len(keys)} ops x {len(dtype_names)} dtypes, backends {backends}, {args.jobs} jobs")
    t0 = time.time()
    results = sweep(keys, dtype_names, backends, args.max_samples, args.jobs, args.timeout, deadline, log)
    swept = sorted({k for (k, _d) in results if results[(k, _d)]["samples"] or results[(k, _d)].get("task_error")})
    meta = {
        "ops_selected": len(keys), "ops_swept": len(swept), "dtypes": dtype_names, "backends": backends,
        "max_samples": args.max_samples, "ops_regex": args.ops, "seconds": round(time.time() - t0),
        "not_swept": sorted(set(keys) - set(swept)),
    }
    import torch

    meta["description"] = (
        f"torch {torch.__version__}; {len(swept)} of {len(keys)} selected OpInfos"
        f"{' matching ' + repr(args.ops) if args.ops else ''}; first {args.max_samples} CPU samples per op "
        f"and dtype; fullgraph=True, dynamic=False; {args.jobs} jobs; {meta['seconds']} s.")
    print(write_reports(results, backends, dtype_names, args.out, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
