"""Run a fault scenario in a child process, so that a crash (an LLVM abort, a segfault) fails one
test instead of killing pytest. The child prints one JSON line: the exception it caught."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

PRELUDE = """import json, sys, traceback
def report(exc):
    root = exc
    while (getattr(root, "inner_exception", None) or root.__cause__) is not None:
        root = getattr(root, "inner_exception", None) or root.__cause__
    print(json.dumps({"type": type(root).__name__, "message": str(root),
                      "stage": getattr(root, "stage", ""), "diagnostics": getattr(root, "diagnostics", "")}))
"""


def run_in_child(body: str, env: dict | None = None, timeout: float = 240) -> tuple[dict, str]:
    """(the JSON the child printed last, its stderr). Fails on a signal or non-zero exit."""
    code = PRELUDE + textwrap.dedent(body)
    child_env = dict(os.environ, **(env or {}))
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [tests_dir, child_env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "child_script.py")  # a real file: stack traces name its lines
        with open(script, "w") as f:
            f.write(code)
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=timeout,
                              env=child_env)
    assert proc.returncode == 0, (
        f"child {'killed by signal ' + str(-proc.returncode) if proc.returncode < 0 else 'exited ' + str(proc.returncode)}"
        f"\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert lines, f"child printed no result\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), proc.stderr


def line_in_child(body: str, marker: str) -> int:
    """The line number, in the child's script, of the body line containing `marker`."""
    lines = (PRELUDE + textwrap.dedent(body)).splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line)
