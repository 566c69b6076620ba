"""Peak memory of `PretrainedEmbedding.from_file(..., quantize="int8")`
against `from_file(...)` then `layer.quantize("int8")` (issue 14).

Writes a synthetic GloVe-style text file (default 400,000 x 300, values
with 3 decimals) once into a temporary folder and a vocabulary of 100,000
words (95% in the file, 5% not), then runs each contender in its own
subprocess, in the same run, twice: once for time and peak RSS (VmHWM,
reset through /proc/self/clear_refs after the imports and a warm-up, minus
the RSS then), once under `tracemalloc` for the NumPy-side peak (NumPy
reports its buffers to tracemalloc; backend buffers, e.g. XLA's, are not
seen there). Both are given as ratios to the int8 table plus its float32
scales: `vocabulary x dim + 4 x vocabulary` bytes. Target for
quantize="int8": at most 1.5x.

    KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_quantized_load.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, sys, time, tracemalloc
import numpy as np
import keras
import keras_embedlab as kel

path, vocabulary_path, contender, traced = sys.argv[1:5]
with open(vocabulary_path, encoding="utf-8") as f:
    vocabulary = [line.rstrip("\n") for line in f]
# Warm up the backend and the loaders on a tiny file.
keras.ops.convert_to_numpy(keras.ops.ones((2, 2)))
kel.PretrainedEmbedding.from_file(sys.argv[5], ["a", "b"], verbose=0,
                                  quantize="int8")
kel.PretrainedEmbedding.from_file(sys.argv[5], ["a", "b"],
                                  verbose=0).quantize("int8")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
baseline = status("VmRSS")
if traced == "1":
    tracemalloc.start()
start = time.perf_counter()
if contender == "direct":
    layer = kel.PretrainedEmbedding.from_file(path, vocabulary, verbose=0,
                                              quantize="int8")
else:
    layer = kel.PretrainedEmbedding.from_file(path, vocabulary, verbose=0)
    layer.quantize("int8")
seconds = time.perf_counter() - start
traced_peak = tracemalloc.get_traced_memory()[1] if traced == "1" else None
# Read before the checksum's NumPy copy of the table (1x) below.
rss_peak = status("VmHWM") - baseline
q = keras.ops.convert_to_numpy(layer._embeddings)
assert q.dtype == np.int8 and q.shape == (len(vocabulary), layer.output_dim)
print(json.dumps({"seconds": seconds, "rss_peak": rss_peak,
                  "traced_peak": traced_peak,
                  "checksum": int(q.astype(np.int64).sum())}))
"""


def write_file(path, rows, dim, seed=0):
    """Fixed-width fields ('+0.123'), built as bytes by NumPy: fast."""
    rng = np.random.default_rng(seed)
    digits = np.frombuffer(b"0123456789", np.uint8)
    with open(path, "wb") as f:
        for start in range(0, rows, 20000):
            n = min(20000, rows - start)
            values = rng.integers(0, 1000, (n, dim))
            field = np.empty((n, dim, 7), np.uint8)
            field[..., 0] = np.where(rng.random((n, dim)) < 0.5, ord("-"),
                                     ord("+"))
            field[..., 1] = ord("0")
            field[..., 2] = ord(".")
            field[..., 3] = digits[values // 100]
            field[..., 4] = digits[values // 10 % 10]
            field[..., 5] = digits[values % 10]
            field[..., 6] = ord(" ")
            field[:, -1, 6] = ord("\n")
            lines = field.reshape(n, dim * 7)
            f.write(b"".join(b"w%d " % (start + i) + lines[i].tobytes()
                             for i in range(n)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--vocabulary", type=int, default=100_000)
    parser.add_argument("--missing", type=float, default=0.05)
    parser.add_argument("--contenders", default="direct,float_then_quantize",
                        help="which to run (the checksum comparison needs "
                        "both)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vectors.txt")
        start = time.perf_counter()
        write_file(path, args.rows, args.dim)
        written = time.perf_counter() - start
        tiny = os.path.join(folder, "tiny.txt")
        with open(tiny, "w") as f:
            f.write("a 0.5 -1\nb 1 2\n")
        missing = int(args.vocabulary * args.missing)
        present = rng.choice(args.rows, args.vocabulary - missing,
                             replace=False)
        words = [f"w{i}" for i in present] + [f"nope{i}"
                                               for i in range(missing)]
        rng.shuffle(words)
        vocabulary_path = os.path.join(folder, "vocabulary.txt")
        with open(vocabulary_path, "w") as f:
            f.write("\n".join(words) + "\n")
        table = args.vocabulary * args.dim + 4 * args.vocabulary
        print(f"file {os.path.getsize(path) / 1e6:,.0f} MB "
              f"({args.rows:,} x {args.dim}, written in {written:.1f} s); "
              f"vocabulary {args.vocabulary:,} ({missing:,} not in the "
              f"file); int8 table + scales {table / 1e6:.1f} MB; backend "
              f"{os.environ.get('KERAS_BACKEND', 'tensorflow')}")
        results = {}
        for contender in args.contenders.split(","):
            runs = []
            for traced in ("0", "1"):
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, path, vocabulary_path,
                     contender, traced, tiny],
                    capture_output=True, text=True)
                if child.returncode:
                    sys.exit(f"{contender} failed:\n{child.stderr[-3000:]}")
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            results[contender] = {**runs[0], "traced_peak":
                                  runs[1]["traced_peak"]}
        if len(results) == 2:
            assert (results["direct"]["checksum"]
                    == results["float_then_quantize"]["checksum"])
        print(f"{'contender':<34}{'time s':>8}{'peak RSS':>12}"
              f"{'x table':>9}{'NumPy peak':>12}{'x table':>9}")
        names = {"direct": 'from_file(..., quantize="int8")',
                 "float_then_quantize": 'from_file(...) + quantize("int8")'}
        for contender, r in results.items():
            print(f"{names[contender]:<34}{r['seconds']:>8.1f}"
                  f"{r['rss_peak'] / 1e6:>9.1f} MB"
                  f"{r['rss_peak'] / table:>8.2f}x"
                  f"{r['traced_peak'] / 1e6:>9.1f} MB"
                  f"{r['traced_peak'] / table:>8.2f}x")
        ok = results["direct"]["rss_peak"] <= 1.5 * table
        print(f"target peak RSS <= 1.5x for quantize='int8': "
              f"{'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
