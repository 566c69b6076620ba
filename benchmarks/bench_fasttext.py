"""Benchmark: reading a fastText `.bin` model, ours against gensim and fastText.

Writes one synthetic model into a temporary folder (deleted afterwards):
200,000 words, 2,000,000 n-gram buckets, 300 dims (a 2.9 GB file, the
shape of `cc.en.300.bin`'s matrix), values N(0, 0.1), words random
lowercase strings of 3 to 12 letters. Then times, each in a fresh Python
process, with the peak memory it adds:

- (a) gensim's `load_facebook_vectors(path)`;
- (b) the `fasttext` package's `load_model(path)`;
- (c) ours, `load_vectors(path)` without a vocabulary;
- (d) ours, `load_vectors(path, vocabulary=...)` with 20,000 tokens, half
  words of the model and half unseen words (given subword vectors).

Memory is measured as in `bench_vectors.py`: the process resets its peak
resident set size after its imports, loads, and reports the peak (VmHWM)
minus the resident size before the load. Mapped file pages count while
they are mapped.

Usage:
    python benchmarks/bench_fasttext.py                # full size, ~5 min
    python benchmarks/bench_fasttext.py --quick        # 1/10 of the rows
    python benchmarks/bench_fasttext.py --skip gensim  # leave one out
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

from bench_vectors import make_words  # noqa: E402

MAGIC, VERSION = 793712314, 12

WORKER = r"""
import json, sys, time

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    kib = lambda key: int(fields[key].split()[0]) * 1024
    return kib("VmRSS"), kib("VmHWM")

loader, path, vocab_path = sys.argv[1:4]
if loader == "gensim":
    from gensim.models.fasttext import load_facebook_vectors
elif loader == "fasttext":
    import fasttext
else:
    from keras_embedlab.vectors import load_vectors
vocabulary = None
if vocab_path != "-":
    with open(vocab_path, encoding="utf-8") as f:
        vocabulary = f.read().split()
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS (VmHWM) := current RSS
    exact = True
except OSError:
    exact = False
rss_before, _ = status()
start = time.perf_counter()
if loader == "gensim":
    kv = load_facebook_vectors(path)
    rows = len(kv)
elif loader == "fasttext":
    model = fasttext.load_model(path)
    rows = len(model.words)
else:
    vectors = load_vectors(path, vocabulary=vocabulary, verbose=0)
    rows = len(vectors)
    if vocabulary is not None:
        matrix, whole, found = vectors.lookup(vocabulary)
        rows = int(found.sum())
seconds = time.perf_counter() - start
_, peak = status()
print(json.dumps({"seconds": seconds, "growth": peak - rss_before,
                  "rows": rows, "exact": exact}))
"""


def write_model(path, words, buckets, dim, rng):
    """A fastText 0.9 `.bin` (skipgram, minn 3, maxn 6), written in
    chunks: the input matrix never is in memory whole."""
    args = struct.pack("<12id", dim, 5, 5, 1, 5, 1, 2, 2, buckets, 3, 6, 100,
                       1e-4)
    with open(path, "wb") as f:
        f.write(struct.pack("<2i", MAGIC, VERSION) + args)
        f.write(struct.pack("<3i2q", len(words), len(words), 0, 10**9, -1))
        tail = struct.pack("<qb", 1, 0)
        f.write(b"".join(w.encode() + b"\0" + tail for w in words))
        rows = len(words) + buckets
        f.write(b"\0" + struct.pack("<2q", rows, dim))
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            f.write(rng.normal(0, 0.1, (n, dim)).astype("<f4").tobytes())
        f.write(b"\0" + struct.pack("<2q", len(words), dim))
        f.write(bytes(4 * len(words) * dim))


def run(loader, path, vocab="-"):
    out = subprocess.run(
        [sys.executable, "-c", WORKER, loader, path, vocab], cwd=REPO,
        capture_output=True, text=True, check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{loader} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of ours and fasttext (gensim runs once)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["gensim", "fasttext"])
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    nwords, buckets, dim, vocab = (200_000 // scale, 2_000_000 // scale,
                                   300, 20_000 // scale)
    folder = tempfile.mkdtemp(prefix="bench_fasttext_", dir="/tmp")
    try:
        rng = np.random.default_rng(0)
        words = make_words(nwords, rng)
        unseen = make_words(vocab // 2, rng, exclude=words)
        tokens = list(rng.choice(words, vocab // 2, replace=False)) + unseen
        vocab_path = os.path.join(folder, "vocabulary.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write("\n".join(tokens) + "\n")
        path = os.path.join(folder, "model.bin")
        start = time.perf_counter()
        write_model(path, words, buckets, dim, rng)
        print(f"wrote {os.path.getsize(path) / 1e9:.2f} GB in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        results = {"ours": [], "ours-vocabulary": [], "fasttext": [],
                   "gensim": []}
        for _ in range(args.repeats):  # alternate, so drift hits all alike
            results["ours"].append(run("ours", path))
            results["ours-vocabulary"].append(run("ours", path, vocab_path))
            if "fasttext" not in args.skip:
                results["fasttext"].append(run("fasttext", path))
        if "gensim" not in args.skip:
            results["gensim"].append(run("gensim", path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(results, nwords, buckets, dim, vocab, args))


def report(results, nwords, buckets, dim, vocab, args):
    # Verdicts on the median: on a shared machine the best run flatters.
    best = {k: statistics.median(r["seconds"] for r in v)
            for k, v in results.items() if v}
    peak = {k: max(r["growth"] for r in v) / 1e6
            for k, v in results.items() if v}
    names = {"gensim": "(a) gensim load_facebook_vectors",
             "fasttext": "(b) fasttext.load_model",
             "ours": "(c) ours, load_vectors(path)",
             "ours-vocabulary": f"(d) ours, {vocab:,}-token vocabulary"}
    lines = [
        f"Command: `{' '.join(['python'] + sys.argv)}`",
        f"Model: {nwords:,} words, {buckets:,} buckets, dim {dim}. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}.",
        "",
        "| contender | median s (runs) | peak growth MB (largest) |",
        "|---|---|---|",
    ]
    for key, name in names.items():
        if key in best:
            times = ", ".join(f"{r['seconds']:.2f}" for r in results[key])
            lines.append(f"| {name} | {best[key]:.2f} ({times}) | "
                         f"{peak[key]:.0f} |")
    matrix_mb = vocab * dim * 4 / 1e6
    limit = 2 * matrix_mb + 100
    lines.append("")
    if "gensim" in best:
        ratio = best["gensim"] / best["ours"]
        lines.append(f"- {'MET' if ratio >= 10 else 'MISSED'}: (c) at least "
                     f"10x faster than gensim: {ratio:.0f}x")
    if "fasttext" in best:
        ratio = best["fasttext"] / best["ours"]
        lines.append(f"- {'MET' if ratio >= 1 else 'MISSED'}: (c) no slower "
                     f"than fasttext: {ratio:.0f}x faster")
    d_peak, d_time = peak["ours-vocabulary"], best["ours-vocabulary"]
    lines.append(f"- {'MET' if d_peak <= limit else 'MISSED'}: (d) peak "
                 f"{d_peak:.0f} MB <= 2 x {matrix_mb:.0f} MB + 100 MB = "
                 f"{limit:.0f} MB")
    lines.append(f"- {'MET' if d_time < 1 else 'MISSED'}: (d) under 1 s: "
                 f"{d_time:.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
