"""Run the benchmark suite: `python -m bench` (as root), or `nox -s bench`.

Prints a table and writes every sample to bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import report, suite
from bench.harness import BenchError, Result
from bench.sandbox import Sandbox, find_donkey

ALL = ("start", "oci", "cgroups", "batches", "ps", "memory", "unpack")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30,
                        help="timed pairs per start benchmark (default 30)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed pairs before the timed ones (default 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each batch benchmark (default 3)")
    parser.add_argument("--sequential", type=int, default=100,
                        help="containers in the one-after-another batch (default 100)")
    parser.add_argument("--parallel", type=int, default=20,
                        help="containers in the all-at-once batch (default 20)")
    parser.add_argument("--stopped", type=int, default=1000,
                        help="stopped containers on disk for the ps benchmark (default 1000)")
    parser.add_argument("--only", action="append", choices=ALL,
                        help="run only this benchmark; repeat for several (default: all)")
    parser.add_argument("--donkey", help="donkey command to time (default: the one next to "
                        "this Python, else the one on PATH)")
    parser.add_argument("--output", default=RESULTS_DIR,
                        help="directory for the JSON results (default bench/results)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory, for inspection")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Result]:
    """Run the selected benchmarks; one that fails becomes a `failed:` row, not an abort."""
    selected = args.only or ALL
    results: list[Result] = []
    with Sandbox(find_donkey(args.donkey), keep=args.keep) as box:
        steps = {
            "start": lambda: suite.start_to_exit(box, args.runs, args.warmup),
            "oci": lambda: suite.oci_cycle(box),
            "cgroups": lambda: suite.cgroup_cost(box, args.runs, args.warmup),
            "batches": lambda: suite.batches(box, args.sequential, args.parallel, args.rounds),
            "ps": lambda: suite.ps_stopped(box, args.stopped, args.runs),
            "memory": lambda: suite.resident_memory(box),
            "unpack": suite.image_unpack,
        }
        for name in ALL:
            if name not in selected:
                continue
            try:
                results += steps[name]()
            except BenchError as error:
                results.append(Result(name, "-", failed=str(error)))
        try:
            suite.check_clean(box)
        except BenchError as error:
            results.append(Result("cleanup", "-", failed=str(error)))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: the benchmarks create namespaces and cgroups: run them as root",
              file=sys.stderr)
        return 1
    try:
        results = run(args)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print(report.table(results))
    settings = {key: value for key, value in vars(args).items() if key != "output"}
    path = report.write_json(results, args.output, settings)
    print(f"\nsamples written to {path}")
    failed = [result.name for result in results if result.failed]
    if failed:
        print(f"bench: {len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
