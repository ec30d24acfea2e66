"""`python -m torch_mlir_backend.e2e --filter Conv2d --verbose`: run named conformance cases."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_mlir_backend.e2e",
                                     description="Run the named conformance cases against eager PyTorch.")
    parser.add_argument("--filter", "-f", default=None,
                        help="regular expression; run only the cases whose names match")
    parser.add_argument("--verbose", "-v", action="store_true", help="print max error and time per case")
    parser.add_argument("--list", action="store_true", help="list the matching case names and exit")
    parser.add_argument("--backend", default="torch_mlir", help="Dynamo backend to test (default torch_mlir)")
    args = parser.parse_args(argv)

    from .registry import select_cases
    from .runner import run_cases

    cases = select_cases(args.filter)
    if args.list:
        for c in cases:
            print(c.name)
        return 0
    if not cases:
        print(f"no conformance case matches {args.filter!r}", file=sys.stderr)
        return 2
    results = run_cases(cases, verbose=args.verbose, backend=args.backend)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
