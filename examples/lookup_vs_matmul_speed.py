"""Claim: "when the table is large, lookup is slower; use a dense layer".

Times `LookupEmbedding` against `OneHotDense` (one-hot + matmul), forward,
compiled, on the active backend, across vocabulary sizes. The evidence: the
lookup is faster, and the gap grows with the vocabulary. With `--check` it
exits non-zero if the one-hot matmul wins at the largest size or the gap
does not grow (a timing verdict, so the test suite does not ask for it).

    KERAS_BACKEND=tensorflow python examples/lookup_vs_matmul_speed.py
"""

import argparse
import sys

import keras

from keras_embedlab.cli import bench


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000,30000")
    parser.add_argument("--ids", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per point; the median is shown")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the timings contradict the claim")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"backend {keras.backend.backend()}, {args.ids} ids x {args.dim} "
          "dims, forward pass, median ms per call")
    print(f"{'vocabulary':>10s} {'lookup':>9s} {'one-hot':>9s} "
          f"{'one-hot / lookup':>17s}")
    ratios = []
    for vocabulary in sizes:
        rows = bench.measure(
            "forward", vocabulary, args.ids, args.dim,
            ["LookupEmbedding", "OneHotDense"], args.repeats,
            budget=float("inf"),
        )
        lookup, dense = (r["median_ms"] for r in rows)
        ratios.append(dense / lookup)
        print(f"{vocabulary:>10,d} {lookup:>9.3f} {dense:>9.3f} "
              f"{ratios[-1]:>16.1f}x")
    ok = ratios[-1] > 1.0 and ratios[-1] > ratios[0]
    print("evidence agrees with the README: lookup wins and the gap grows"
          if ok else "CONTRADICTION: see the table")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
