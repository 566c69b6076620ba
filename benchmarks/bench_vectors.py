"""Benchmark: `load_vectors` against gensim's `load_word2vec_format`.

Writes synthetic vector files into a temporary folder (deleted afterwards):
100,000 x 100 as word2vec text, GloVe text and word2vec binary, and a 4x
larger word2vec text file with the same 100,000 words among 300,000 others.
Text values are written as `%.6f` of N(0, 1) samples, tokens are random
lowercase words of 3 to 12 letters.

Each load runs in a fresh Python process, alternating ours and gensim's, so
that timings and memory do not depend on what ran before. Memory: the
process resets its peak resident set size (writes "5" to
/proc/self/clear_refs, which sets VmHWM to the current VmRSS) after its
imports, loads, and reports VmHWM minus the VmRSS before the load: the
growth of peak RSS caused by the load, including the returned arrays.

Usage:
    python benchmarks/bench_vectors.py            # full size, about 10 min
    python benchmarks/bench_vectors.py --quick    # 20,000 rows, a minute
    python benchmarks/bench_vectors.py --out table.md --repeats 3
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from keras_embedlab.vectors import Vectors  # noqa: E402

WORKER = r"""
import json, resource, sys, time

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    kib = lambda key: int(fields[key].split()[0]) * 1024
    return kib("VmRSS"), kib("VmHWM")

loader, path, fmt, vocab_path = sys.argv[1:5]
if loader == "ours":
    from keras_embedlab.vectors import load_vectors
else:
    from gensim.models import KeyedVectors
vocabulary = None
if vocab_path != "-":
    with open(vocab_path, encoding="utf-8") as f:
        vocabulary = set(f.read().split())
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS (VmHWM) := current RSS
    exact = True
except OSError:
    exact = False  # VmHWM may then include earlier peaks (imports)
rss_before, _ = status()
start = time.perf_counter()
if loader == "ours":
    vectors = load_vectors(path, vocabulary=vocabulary, verbose=0)
    rows, nbytes = len(vectors), vectors.matrix.nbytes
else:
    kv = KeyedVectors.load_word2vec_format(
        path, binary=fmt == "word2vec-binary", no_header=fmt == "glove"
    )
    rows, nbytes = len(kv), kv.vectors.nbytes
seconds = time.perf_counter() - start
_, peak = status()
print(json.dumps({"seconds": seconds, "growth": peak - rss_before,
                  "rows": rows, "matrix_bytes": nbytes, "exact": exact}))
"""


def make_words(n, rng, exclude=()):
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    seen, words = set(exclude), []
    while len(words) < n:
        m = 2 * (n - len(words))
        codes = letters[rng.integers(0, 26, (m, 12))]
        for row, length in zip(codes, rng.integers(3, 13, m).tolist()):
            word = row[:length].tobytes().decode()
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == n:
                    break
    return words


def write_text(path, words, matrix, header):
    line = " ".join(["%.6f"] * matrix.shape[1]) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(f"{len(words)} {matrix.shape[1]}\n")
        for start in range(0, len(words), 2000):
            block = matrix[start : start + 2000].tolist()
            f.write(
                "".join(
                    word + " " + line % tuple(row)
                    for word, row in zip(words[start : start + 2000], block)
                )
            )


def make_files(folder, n, dim, vocab_size):
    rng = np.random.default_rng(0)
    words = make_words(n, rng)
    matrix = rng.normal(0, 1, (n, dim)).astype(np.float32)
    files = {
        "text": os.path.join(folder, "vectors.txt"),
        "glove": os.path.join(folder, "glove.txt"),
        "binary": os.path.join(folder, "vectors.bin"),
        "text4x": os.path.join(folder, "vectors4x.txt"),
        "vocab": os.path.join(folder, "vocabulary.txt"),
    }
    write_text(files["text"], words, matrix, header=True)
    write_text(files["glove"], words, matrix, header=False)
    Vectors(words, matrix).save(files["binary"], format="word2vec-binary")
    more = make_words(3 * n, rng, exclude=words)
    big_words = np.array(words + more, dtype=object)
    big_matrix = np.concatenate([matrix, rng.normal(0, 1, (3 * n, dim))])
    order = rng.permutation(4 * n)
    write_text(
        files["text4x"],
        big_words[order].tolist(),
        big_matrix[order].astype(np.float32),
        header=True,
    )
    vocabulary = rng.choice(words, vocab_size, replace=False).tolist()
    with open(files["vocab"], "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    return files


def run(loader, path, fmt, vocab="-"):
    out = subprocess.run(
        [sys.executable, "-c", WORKER, loader, path, fmt, vocab],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{loader} on {path} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name, path, fmt, repeats, vocab="-", gensim=True):
    runs = {"ours": [], "gensim": []}
    for _ in range(repeats):  # alternate, so drift affects both alike
        runs["ours"].append(run("ours", path, fmt, vocab))
        if gensim:
            runs["gensim"].append(run("gensim", path, fmt, vocab))
    row = {"case": name, "file_mb": os.path.getsize(path) / 1e6}
    for loader, results in runs.items():
        if not results:
            continue
        times = [r["seconds"] for r in results]
        growth = max(r["growth"] for r in results)
        row[loader] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "times": times,
            "growth_mb": growth / 1e6,
            "matrix_mb": results[0]["matrix_bytes"] / 1e6,
            "rows": results[0]["rows"],
            "exact_peak": all(r["exact"] for r in results),
        }
    print(f"  {name}: " + json.dumps(row), flush=True)
    return row


def table(rows, n, dim, repeats):
    lines = [
        f"| case ({repeats} runs each, alternating) | file MB | ours s "
        "(median / min) | gensim s (median / min) | speedup (median) | "
        "ours peak growth MB (x matrix) | gensim peak growth MB (x matrix) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, gensim = row["ours"], row.get("gensim")
        cells = [
            row["case"],
            f"{row['file_mb']:.1f}",
            f"{ours['median_s']:.2f} / {ours['min_s']:.2f}",
        ]
        if gensim:
            cells += [
                f"{gensim['median_s']:.2f} / {gensim['min_s']:.2f}",
                f"{gensim['median_s'] / ours['median_s']:.1f}x",
            ]
        else:
            cells += ["n/a (no vocabulary filter)", ""]
        for result in (ours, gensim):
            if result:
                ratio = result["growth_mb"] / result["matrix_mb"]
                cells.append(f"{result['growth_mb']:.1f} ({ratio:.2f}x)")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(rows):
    by_case = {row["case"].split(",")[0]: row for row in rows}
    text = [r for r in rows if "text" in r["case"] and "gensim" in r]
    binary = [r for r in rows if "binary" in r["case"]]
    whole = [r for r in rows if "gensim" in r]
    speedups = [r["gensim"]["median_s"] / r["ours"]["median_s"] for r in text]
    binary_speedup = [
        r["gensim"]["median_s"] / r["ours"]["median_s"] for r in binary
    ]
    peaks = [r["ours"]["growth_mb"] / r["ours"]["matrix_mb"] for r in whole]
    small = by_case["vocabulary 1x"]["ours"]["growth_mb"]
    large = by_case["vocabulary 4x"]["ours"]["growth_mb"]
    checks = [
        ("text at least 10x faster than gensim", min(speedups) >= 10,
         f"lowest text speedup {min(speedups):.1f}x"),
        ("binary no slower than gensim", min(binary_speedup) >= 1,
         f"binary speedup {min(binary_speedup):.1f}x"),
        ("whole-file peak growth <= 3x matrix", max(peaks) <= 3,
         f"highest {max(peaks):.2f}x"),
        ("vocabulary: 4x file grows peak <= 1.25x", large / small <= 1.25,
         f"{large:.1f} MB / {small:.1f} MB = {large / small:.2f}x"),
    ]  # fmt: skip
    return "\n".join(
        f"- {'MET' if ok else 'MISSED'}: {what} ({detail})"
        for what, ok, detail in checks
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args()
    n, dim, vocab_size = (20_000, 100, 2_000) if args.quick else (
        100_000, 100, 10_000)  # fmt: skip
    folder = tempfile.mkdtemp(prefix="bench_vectors_")
    try:
        start = time.perf_counter()
        files = make_files(folder, n, dim, vocab_size)
        print(f"wrote files in {time.perf_counter() - start:.0f} s", flush=True)
        r = args.repeats
        rows = [
            measure(f"word2vec text, {n:,} x {dim}", files["text"],
                    "word2vec-text", r),
            measure(f"GloVe text, {n:,} x {dim}", files["glove"], "glove", r),
            measure(f"word2vec binary, {n:,} x {dim}", files["binary"],
                    "word2vec-binary", r),
            measure(f"word2vec text 4x, {4 * n:,} x {dim}", files["text4x"],
                    "word2vec-text", r),
            measure(f"vocabulary 1x, {vocab_size:,} words from {n:,}",
                    files["text"], "word2vec-text", r, files["vocab"], False),
            measure(f"vocabulary 4x, {vocab_size:,} words from {4 * n:,}",
                    files["text4x"], "word2vec-text", r, files["vocab"],
                    False),
        ]  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    exact = all(
        result["exact_peak"]
        for row in rows
        for result in (row["ours"], row.get("gensim"))
        if result
    )
    command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    report = "\n\n".join(
        [
            f"Command: `{command}`",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, NumPy {np.__version__}, gensim "
            f"{_gensim_version()}.",
            table(rows, n, dim, args.repeats),
            "Peak growth: VmHWM after the load minus VmRSS before it, in a "
            "fresh process whose peak was reset after imports"
            + ("" if exact else " (reset unavailable: approximate)")
            + "; the largest of the runs.",
            verdicts(rows),
        ]
    )
    print()
    print(report)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report + "\n")


def _gensim_version():
    import gensim

    return gensim.__version__


if __name__ == "__main__":
    main()
