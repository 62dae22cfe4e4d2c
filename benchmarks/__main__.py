"""`python -m benchmarks [NAME ...] [--quick] [--write docs/benchmarks.md]`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
import unittest
from pathlib import Path
from types import FrameType

from benchmarks import BENCHMARKS
from benchmarks.common import PYTHON, ROOT, machine, today
from benchmarks.report import markdown, text_table, write_section


def _python() -> str:
    """The interpreter as the reader would type it (relative to the repository if inside)."""
    path = Path(PYTHON)
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Default SIGTERM kills without unwinding; raising runs the `finally` that stops daemons.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run SmartCron's benchmarks."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 4 minutes)")
    parser.add_argument("--write", metavar="FILE", help="update FILE's sections with the results")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    host, failed = machine(), []
    print(f"machine: {host}", flush=True)
    for name in names:
        module = BENCHMARKS[name]
        params = module.QUICK if args.quick else module.FULL
        print(f"\nrunning {name} ({params}) ...", flush=True)
        t0 = time.monotonic()
        try:
            result = module.run(params)
        except unittest.SkipTest as skip:  # a tool it needs is missing here (say which)
            print(f"   skipped: {skip}", flush=True)
            continue
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        print(text_table(result))
        print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
        if args.write:
            command = f"{_python()} -m benchmarks {name}" + (" --quick" if args.quick else "")
            write_section(Path(args.write), name, markdown(result, command, host, today()))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
