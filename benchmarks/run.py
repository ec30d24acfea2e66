"""Benchmark harness: eager vs Inductor vs torch_mlir on the workloads of benchmarks/workloads.py.

    python benchmarks/run.py --threads 1,2                 # everything
    python benchmarks/run.py --threads 1 --filter matmul   # a subset (substring of the name)

For each thread count and workload: every backend compiles the same callable (the first call's
wall time is reported as its compile time), its output is checked against eager (a wrong answer
or a failure is reported in the table and never timed as a win), then the backends are timed
interleaved, one sample each per round in rotating order, and the median is kept. Writes
`results.json`, `results.md` (median ms, ratios vs eager and vs Inductor, geomeans) and
`results.png` (speedup bars, needs matplotlib: the `bench` extra) into --out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from typing import Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import TrainStep, Workload, all_workloads  # noqa: E402

BACKENDS = ("eager", "inductor", "torch_mlir")
SAMPLE_SECONDS = 0.005  # calls per sample chosen so one sample lasts about this long


def _flatten(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    return []


def _compare(ref, got, atol: float, rtol: float) -> tuple[bool, float]:
    ref, got = _flatten(ref), _flatten(got)
    if len(ref) != len(got):
        return False, math.inf
    worst, ok = 0.0, True
    for r, g in zip(ref, got):
        if r.shape != g.shape or r.dtype != g.dtype:
            return False, math.inf
        if r.is_floating_point():
            diff = (r.double() - g.double()).abs()
            bad = diff > atol + rtol * r.double().abs()
            if torch.isnan(r).ne(torch.isnan(g)).any():
                return False, math.inf
            diff = torch.nan_to_num(diff, nan=0.0)
            worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
            ok &= not bool(torch.nan_to_num(bad.double(), nan=0.0).any())
        else:
            ok &= bool(torch.equal(r, g))
    return ok, worst


def _make_call(workload: Workload, obj, inputs, backend: str):
    """A zero-argument callable running the workload once on `backend` (compiling on first use)."""
    if workload.training:
        step: TrainStep = obj.clone()
        fwd_bwd = step.forward_backward if backend == "eager" else torch.compile(step.forward_backward, backend=backend)

        def call():
            step.opt.zero_grad(set_to_none=True)
            fwd_bwd(*inputs)
            step.opt.step()
            return [p.detach().clone() for p in step.module.parameters()]

        return call
    fn = obj if backend == "eager" else torch.compile(obj, backend=backend)

    def call():
        with torch.no_grad():
            return fn(*inputs)

    return call


def _error_status(workload: Workload, e: BaseException) -> str:
    text = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    text = text.replace("|", "/")[:160]
    return ("not supported yet: " if workload.training else "error: ") + text


def run_workload(workload: Workload, threads: int, backends, rounds: int, budget: float, log) -> list[dict]:
    torch.set_num_threads(threads)
    torch._dynamo.reset()
    obj, inputs = workload.build()
    records = {b: {"workload": workload.name, "suite": workload.suite, "threads": threads, "backend": b,
                   "status": "ok", "median_ms": None, "samples": 0, "compile_s": None,
                   "cached_compile_s": None, "max_abs_err": None, "gflops": None}
               for b in backends}
    calls = {}
    reference = _make_call(workload, obj, inputs, "eager")()
    for b in backends:
        rec = records[b]
        try:
            call = _make_call(workload, obj, inputs, b)
            t0 = time.perf_counter()
            out = call()
            rec["compile_s"] = time.perf_counter() - t0
            ok, err = _compare(reference, out, workload.atol, workload.rtol)
            rec["max_abs_err"] = err
            if not ok:
                rec["status"] = f"WRONG (max abs err {err:.3g}, atol {workload.atol}, rtol {workload.rtol})"
                continue
            calls[b] = call
        except Exception as e:  # reported, not raised: one failing backend must not stop the run
            rec["status"] = _error_status(workload, e)
            log(f"    {b}: {rec['status']}")
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
    if "compile" in workload.tags:
        for b in calls:
            if b == "eager":
                continue
            torch._dynamo.reset()
            call = _make_call(workload, obj, inputs, b)
            t0 = time.perf_counter()
            call()
            records[b]["cached_compile_s"] = time.perf_counter() - t0
            calls[b] = call

    # calls per sample, from one timed call per backend (after the warm-up above)
    inner = {}
    for b, call in calls.items():
        t0 = time.perf_counter()
        call()
        one = time.perf_counter() - t0
        inner[b] = max(1, int(SAMPLE_SECONDS / max(one, 1e-7)))
    samples = {b: [] for b in calls}
    order = list(calls)
    start = time.perf_counter()
    for r in range(rounds):
        for b in order[r % len(order):] + order[: r % len(order)]:
            call, k = calls[b], inner[b]
            t0 = time.perf_counter()
            for _ in range(k):
                call()
            samples[b].append((time.perf_counter() - t0) / k)
        if r >= 2 and time.perf_counter() - start > budget:
            break
    for b, s in samples.items():
        rec = records[b]
        rec["median_ms"] = statistics.median(s) * 1e3
        rec["samples"] = len(s)
        if workload.flops:
            rec["gflops"] = workload.flops / (rec["median_ms"] * 1e-3) / 1e9
    return [records[b] for b in backends]


# ------------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------------


def _geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _fmt(v, digits=3):
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"


def markdown(results: list[dict], backends) -> str:
    lines = []
    for threads in sorted({r["threads"] for r in results}):
        rows = [r for r in results if r["threads"] == threads]
        by = {}
        for r in rows:
            by.setdefault(r["workload"], {})[r["backend"]] = r
        lines += [f"### {threads} thread{'s' if threads > 1 else ''}", ""]
        head = ["workload"] + [f"{b} ms" for b in backends]
        head += ["torch_mlir vs eager", "torch_mlir vs inductor", "inductor vs eager", "compile s (ind / mlir)", "status"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        ratios = {}  # suite -> list of (vs eager, vs inductor)
        for name, recs in by.items():
            ms = {b: recs[b]["median_ms"] if b in recs and recs[b]["status"] == "ok" else None for b in backends}
            mine, eager, ind = ms.get("torch_mlir"), ms.get("eager"), ms.get("inductor")
            vs_eager = eager / mine if mine and eager else None
            vs_ind = ind / mine if mine and ind else None
            ind_eager = eager / ind if ind and eager else None
            suite = next(iter(recs.values()))["suite"]
            ratios.setdefault(suite, []).append((vs_eager, vs_ind, ind_eager))
            statuses = [f"{b}: {recs[b]['status']}" for b in backends if b in recs and recs[b]["status"] != "ok"]
            extra = []
            for b in backends:
                if b in recs and recs[b].get("gflops") and recs[b]["status"] == "ok":
                    extra.append(f"{b} {recs[b]['gflops']:.0f} GFLOP/s")
                if b in recs and recs[b].get("cached_compile_s") is not None:
                    extra.append(f"{b} cached compile {recs[b]['cached_compile_s']:.2f} s")
            comp = " / ".join(_fmt(recs[b]["compile_s"]) if b in recs else "-" for b in ("inductor", "torch_mlir"))
            cells = [name] + [_fmt(ms[b]) for b in backends]
            cells += [_fmt(vs_eager) + ("x" if vs_eager else ""), _fmt(vs_ind) + ("x" if vs_ind else ""),
                      _fmt(ind_eager) + ("x" if ind_eager else ""), comp, "; ".join(statuses + extra) or "ok"]
            lines.append("| " + " | ".join(cells) + " |")
        for suite, vals in ratios.items():
            ge = _geomean([v[0] for v in vals])
            gi = _geomean([v[1] for v in vals])
            gie = _geomean([v[2] for v in vals])
            n = sum(1 for v in vals if v[0])
            cells = [f"**geomean {suite}** ({n}/{len(vals)} measured)"] + [""] * len(backends)
            cells += [_fmt(ge) + ("x" if ge else ""), _fmt(gi) + ("x" if gi else ""), _fmt(gie) + ("x" if gie else ""), "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def chart(results: list[dict], path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e .[bench]): no chart"
    thread_counts = sorted({r["threads"] for r in results})
    fig, axes = plt.subplots(len(thread_counts), 1, figsize=(14, 4.5 * len(thread_counts)), squeeze=False)
    for ax, threads in zip(axes[:, 0], thread_counts):
        by = {}
        for r in results:
            if r["threads"] == threads:
                by.setdefault(r["workload"], {})[r["backend"]] = r
        names = list(by)
        for i, b in enumerate(("inductor", "torch_mlir")):
            vals = []
            for n in names:
                e, m = by[n].get("eager"), by[n].get(b)
                ok = e and m and e["status"] == "ok" and m["status"] == "ok" and m["median_ms"]
                vals.append(e["median_ms"] / m["median_ms"] if ok else 0)
            ax.bar([x + (i - 0.5) * 0.4 for x in range(len(names))], vals, 0.4, label=b)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("speedup vs eager (higher is better)")
        ax.set_title(f"{threads} thread(s); missing bar = failed or wrong")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return None


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (torch.set_num_threads)")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--filter", default="", help="comma-separated substrings of workload names")
    p.add_argument("--rounds", type=int, default=15, help="most timing rounds per workload")
    p.add_argument("--budget", type=float, default=20.0, help="seconds of timing per workload (at least 3 rounds)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = p.parse_args(argv)

    # Cold compiles are measured cold: torch_mlir's on-disk object-code cache stays out of it.
    os.environ.setdefault("TORCH_MLIR_BACKEND_DISABLE_DISK_CACHE", "1")
    import torch_mlir_backend  # noqa: F401  (registers nothing itself: the entry point does; fail early)

    warnings.filterwarnings("ignore", message=".*force disabled by torch.compiler.config.force_disable_caches")
    torch._dynamo.config.cache_size_limit = 64
    # Without allow_rnn Dynamo does not trace nn.LSTM at all: the lstm workload would time eager
    # PyTorch under every backend's name.
    torch._dynamo.config.allow_rnn = True
    # Inductor's cold compile is measured without its on-disk caches.
    torch._inductor.config.force_disable_caches = True
    backends = [b for b in args.backends.split(",") if b]
    if "eager" not in backends:
        backends.insert(0, "eager")
    wanted = [f for f in args.filter.split(",") if f]
    workloads = [w for w in all_workloads() if not wanted or any(f in w.name for f in wanted)]
    for w in workloads:
        if w.name == "resnet18_b1":
            w.tags = w.tags + ("compile",)
    os.makedirs(args.out, exist_ok=True)
    results: list[dict] = []
    doc = {"command": " ".join([os.path.basename(sys.executable), "benchmarks/run.py"] + (argv or sys.argv[1:])),
           "machine": machine(), "results": results}

    def log(msg):
        print(msg, flush=True)

    def write():
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(doc, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(f"Command: `{doc['command']}`  \nMachine: {doc['machine']['cpu']}, {doc['machine']['cores']} cores, "
                    f"torch {doc['machine']['torch']}, load average at start {doc['machine']['loadavg_at_start']}\n\n")
            f.write("Ratios are speedups (time of the other / time of torch_mlir; > 1 means torch_mlir is faster). "
                    "Compile s = wall time of the first call.\n\n")
            f.write(markdown(results, backends))

    for threads in [int(t) for t in args.threads.split(",")]:
        for w in workloads:
            log(f"[{threads} thread(s)] {w.name}")
            recs = run_workload(w, threads, backends, args.rounds, args.budget, log)
            for r in recs:
                log(f"    {r['backend']:<11} {_fmt(r['median_ms']):>8} ms  compile {_fmt(r['compile_s'])} s  {r['status']}")
            results.extend(recs)
            write()
    note = chart(results, os.path.join(args.out, "results.png"))
    if note:
        log(note)
    log(f"wrote {args.out}/results.json, results.md" + ("" if note else ", results.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
