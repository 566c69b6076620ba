"""Benchmark: training-step time against table size, dense and row-sparse.

Model: ids (batch 256 x 32) -> table (V x 64) -> GlobalAveragePooling1D ->
Dense(1), MSE, one `train_on_batch` per step (what `model.fit` runs per
batch; the returned loss waits for the step to finish). Contenders:

- `keras.layers.Embedding` in `keras.Model`, Keras `SGD` and `Adam`;
- `LookupEmbedding(sparse=True)` in `RowSparseModel`, `SparseSGD` and
  `LazyAdam`;
- plain PyTorch, the same model and batches: `nn.Embedding(sparse=True)`
  with `torch.optim.SGD`, and with `torch.optim.SparseAdam`
  (`sparse_peers.py`);
- the NumPy floor: reading and writing the batch's distinct rows of the
  table (SGD), or of the table and both Adam moments, nothing else.

All of them run in the same process, interleaved, so the ratios "ours /
PyTorch" and "ours / floor" (median over repeats of the per-repeat ratio)
compare timings taken side by side.

Each backend runs in its own process (`KERAS_BACKEND` is read once).
Within a process, every repeat times every (contender, V) pair in turn, so
the ratios step(V) / step(smallest V) of a contender compare timings taken
side by side; the reported ratio is the median over repeats.

`--breakdown` asks where the row-sparse step's growth with V comes from.
It times the row-sparse contenders on four id distributions, so that the
number of distinct rows per batch and the spread of those rows in memory
change one at a time:

- V = 10,000, uniform ids (about 5,600 distinct rows per batch);
- V = 1,000,000, ids below 10,000 (the same rows, in a large table);
- V = 1,000,000, 10,000 ids spaced 100 rows apart (the same number of
  distinct rows, spread over the whole table and its optimizer slots);
- V = 1,000,000, uniform ids (about 8,150 distinct rows per batch).

Usage:
    python benchmarks/bench_sparse.py                  # 1e4, 1e5, 1e6
    python benchmarks/bench_sparse.py --quick          # small, ~1 min
    python benchmarks/bench_sparse.py --out benchmarks/results
    python benchmarks/bench_sparse.py --breakdown      # where time goes
    python benchmarks/bench_sparse.py --backends torch --sizes 10000,1000000
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import sparse_peers as peers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
OURS = "LookupEmbedding(sparse=True)"
TORCH = "torch nn.Embedding(sparse=True)"
FLOOR = "NumPy floor"
CONTENDERS = (
    ("keras.layers.Embedding", "SGD"),
    ("keras.layers.Embedding", "Adam"),
    (OURS, "SparseSGD"),
    (OURS, "LazyAdam"),
    (TORCH, peers.TORCH_SGD),
    (TORCH, peers.TORCH_ADAM),
    (FLOOR, peers.FLOOR_SGD),
    (FLOOR, peers.FLOOR_ADAM),
)
# (ours, peer): reported as time(ours) / time(peer) at each V.
COMPARISONS = (
    ("LazyAdam", TORCH, peers.TORCH_ADAM),
    ("SparseSGD", TORCH, peers.TORCH_SGD),
    ("LazyAdam", FLOOR, peers.FLOOR_ADAM),
    ("SparseSGD", FLOOR, peers.FLOOR_SGD),
)
COMPARISON_FIELDS = ("backend", "ours", "peer", "vocabulary", "ratio",
                     "ours_ms", "peer_ms")
CSV_FIELDS = ("backend", "layer", "optimizer", "vocabulary",
              "distinct_rows", "median_ms", "ratio_to_smallest", "repeats")


def _step(layer, optimizer, vocabulary, dim, bag, batches):
    """`step(ids, y)` of one contender, built and ready."""
    if layer == TORCH:
        return peers.torch_step(optimizer, vocabulary, dim)
    if layer == FLOOR:
        return peers.numpy_floor_step(optimizer, vocabulary, dim, batches)
    import keras

    import keras_embedlab as kel

    ids = keras.Input((bag,), dtype="int32")
    if layer.startswith("keras"):
        table, model_class = keras.layers.Embedding(vocabulary, dim), \
            keras.Model
    else:
        table = kel.LookupEmbedding(vocabulary, dim, sparse=True)
        model_class = kel.RowSparseModel
    pooled = keras.layers.GlobalAveragePooling1D()(table(ids))
    model = model_class(ids, keras.layers.Dense(1)(pooled))
    optimizers = {
        "SGD": lambda: keras.optimizers.SGD(0.01),
        "Adam": lambda: keras.optimizers.Adam(0.001),
        "SparseSGD": lambda: kel.SparseSGD(0.01),
        "LazyAdam": lambda: kel.LazyAdam(0.001),
    }
    model.compile(optimizers[optimizer](), "mse")
    return model.train_on_batch


# --breakdown: (name, V, how many distinct candidate ids, their spacing).
BREAKDOWN_CASES = (
    ("V=10,000, uniform ids", 10_000, 10_000, 1),
    ("V=1,000,000, ids < 10,000", 1_000_000, 10_000, 1),
    ("V=1,000,000, 10,000 ids 100 rows apart", 1_000_000, 10_000, 100),
    ("V=1,000,000, uniform ids", 1_000_000, 1_000_000, 1),
)


def _batches(rng, vocabulary, batch, bag, candidates=None, spacing=1):
    candidates = candidates or vocabulary
    pool = (np.arange(candidates) * spacing) % vocabulary
    return [
        (pool[rng.integers(0, candidates, (batch, bag))].astype("int32"),
         rng.normal(size=(batch, 1)).astype("float32"))
        for _ in range(4)
    ]


def worker(sizes, repeats, steps, batch, bag, dim, breakdown=False):
    """Runs in a process of one backend; prints one JSON line per result."""
    import keras

    rng = np.random.default_rng(0)
    runs = {}
    if breakdown:
        cases = [(name, vocabulary, _batches(rng, vocabulary, batch, bag,
                                             candidates, spacing))
                 for name, vocabulary, candidates, spacing in BREAKDOWN_CASES]
        contenders = [c for c in CONTENDERS if c[0] == OURS]
    else:
        cases = [(vocabulary, vocabulary,
                  _batches(rng, vocabulary, batch, bag))
                 for vocabulary in sizes]
        contenders = CONTENDERS
    for layer, optimizer in contenders:
        for case, vocabulary, batches in cases:
            step = _step(layer, optimizer, vocabulary, dim, bag, batches)
            for x, y in batches:  # compile and warm up
                step(x, y)
            runs[layer, optimizer, case] = (step, batches)
    times = {key: [] for key in runs}
    for repeat in range(repeats):
        for key, (step, batches) in runs.items():
            step_times = []
            for i in range(steps):
                x, y = batches[i % len(batches)]
                start = time.perf_counter()
                step(x, y)
                step_times.append(time.perf_counter() - start)
            times[key].append(float(np.median(step_times)))
        print(f"repeat {repeat + 1}/{repeats} done", file=sys.stderr,
              flush=True)
    first = cases[0][0]
    for (layer, optimizer, case), repeat_times in times.items():
        smallest = times[layer, optimizer, first]
        ratios = [t / s for t, s in zip(repeat_times, smallest)]
        batches = runs[layer, optimizer, case][1]
        print(json.dumps({
            "backend": keras.backend.backend(),
            "layer": layer,
            "optimizer": optimizer,
            "vocabulary": case,
            "distinct_rows": round(float(np.mean(
                [len(np.unique(x)) for x, _ in batches]))),
            "median_ms": round(1000 * float(np.median(repeat_times)), 3),
            "ratio_to_smallest": round(float(np.median(ratios)), 3),
            "repeats": repeats,
        }), flush=True)
    if breakdown:
        return
    for ours, peer_layer, peer in COMPARISONS:
        for case, _, _ in cases:
            mine, theirs = times[OURS, ours, case], times[peer_layer, peer,
                                                          case]
            print(json.dumps({
                "backend": keras.backend.backend(), "ours": ours,
                "peer": f"{peer_layer}: {peer}", "vocabulary": case,
                "ratio": round(float(np.median(np.divide(mine, theirs))), 3),
                "ours_ms": round(1000 * float(np.median(mine)), 3),
                "peer_ms": round(1000 * float(np.median(theirs)), 3),
            }), flush=True)


def run_backend(backend, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               "--sizes", ",".join(map(str, args.sizes)),
               "--repeats", str(args.repeats), "--steps", str(args.steps)]
    if args.breakdown:
        command.append("--breakdown")
    env = {**os.environ, "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    print(f"[{backend}] timing...", file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                          text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()
            if line.startswith("{")]


def _by_key(rows, fields):
    """`{key: {vocabulary: row}}`, keys in the order they first appear."""
    groups = {}
    for r in rows:
        key = tuple(r[f] for f in fields)
        groups.setdefault(key, {})[r["vocabulary"]] = r
    return groups


def _header(first, sizes, cell, last):
    """A Markdown header: three key columns, one per size, one more."""
    return [f"| {first} | " + " | ".join(cell.format(f"{v:,}") for v in sizes)
            + f" | {last} |", "|---|---|---|" + "---|" * (len(sizes) + 1)]


def format_table(rows, sizes):
    lines = _header("backend | table | optimizer", sizes, "V={}",
                    f"step(V={sizes[-1]:,}) / step(V={sizes[0]:,})")
    for (backend, layer, optimizer), cells in _by_key(
            rows, ("backend", "layer", "optimizer")).items():
        ms = " | ".join(f"{cells[v]['median_ms']:.2f} ms" for v in sizes)
        ratio = cells[sizes[-1]]["ratio_to_smallest"]
        lines.append(f"| {backend} | {layer} | {optimizer} | {ms} | "
                     f"**{ratio:.2f}x** |")
    return "\n".join(lines)


def format_comparisons(comparisons, rows, sizes):
    """Ours / peer at each V, and each one's growth from the first V."""
    growth = {key: cells[sizes[-1]]["ratio_to_smallest"] for key, cells
              in _by_key(rows, ("backend", "layer", "optimizer")).items()}
    lines = _header("backend | ours | peer", sizes, "ours / peer, V={}",
                    f"growth to V={sizes[-1]:,}: ours, peer")
    for (backend, ours, peer), cells in _by_key(
            comparisons, ("backend", "ours", "peer")).items():
        ratios = " | ".join(
            f"**{cells[v]['ratio']:.2f}x** ({cells[v]['ours_ms']:.2f} / "
            f"{cells[v]['peer_ms']:.2f} ms)" for v in sizes)
        theirs = growth[(backend, *peer.split(": ", 1))]
        lines.append(f"| {backend} | {ours} | {peer} | {ratios} | "
                     f"{growth[backend, OURS, ours]:.2f}x, {theirs:.2f}x |")
    return "\n".join(lines)


def format_breakdown(rows):
    lines = ["| backend | optimizer | ids | distinct rows per batch | "
             "step | ratio to the first row |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['optimizer']} | "
                     f"{r['vocabulary']} | {r['distinct_rows']:,} | "
                     f"{r['median_ms']:.2f} ms | "
                     f"{r['ratio_to_smallest']:.2f}x |")
    return "\n".join(lines)


def write_chart(rows, sizes, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = sorted({r["backend"] for r in rows})
    figure, axes = plt.subplots(1, len(backends), figsize=(6 * len(backends),
                                                           4.5), squeeze=False)
    for axis, backend in zip(axes[0], backends):
        for layer, optimizer in CONTENDERS:
            points = [r for r in rows if r["backend"] == backend
                      and (r["layer"], r["optimizer"]) == (layer, optimizer)]
            points.sort(key=lambda r: r["vocabulary"])
            style = {"keras.layers.Embedding": "--", TORCH: "-.",
                     FLOOR: ":"}.get(layer, "-")
            axis.plot([r["vocabulary"] for r in points],
                      [r["median_ms"] for r in points], style, marker="o",
                      label=f"{layer} + {optimizer}")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("table rows V (dim 64)")
        axis.set_ylabel("training step, ms (median)")
        axis.set_title(f"{backend}: batch 256 x 32 ids")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Step time against table size: dense Keras updates, "
                    "row-sparse updates, plain PyTorch, NumPy floor")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1,000 and 100,000, 2 repeats of 5 steps")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for bench-sparse.csv/.png/.md")
    parser.add_argument("--breakdown", action="store_true",
                        help="row-sparse step time on four id "
                        "distributions (see the module docstring)")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.steps = [1000, 100_000], 2, 5
    if args.worker:
        worker(args.sizes, args.repeats, args.steps, batch=256, bag=32,
               dim=64, breakdown=args.breakdown)
        return
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"--backends: row-sparse training runs on "
                     f"{', '.join(BACKENDS)}; received {', '.join(unknown)}")
    rows = []
    for backend in backends:
        rows += run_backend(backend, args)
    comparisons = [r for r in rows if "ratio" in r]
    rows = [r for r in rows if "ratio" not in r]
    os.makedirs(args.out, exist_ok=True)
    name = "bench-sparse-breakdown" if args.breakdown else "bench-sparse"
    with open(os.path.join(args.out, f"{name}.csv"), "w",
              newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if args.breakdown:
        table = format_breakdown(rows)
    else:
        write_chart(rows, args.sizes, os.path.join(args.out, f"{name}.png"))
        with open(os.path.join(args.out, f"{name}-vs-pytorch.csv"), "w",
                  newline="") as f:
            writer = csv.DictWriter(f, COMPARISON_FIELDS)
            writer.writeheader()
            writer.writerows(comparisons)
        table = (format_table(rows, args.sizes) + "\n\n"
                 + format_comparisons(comparisons, rows, args.sizes))
    header = (f"Command: `python benchmarks/bench_sparse.py "
              f"{' '.join(sys.argv[1:])}`\n"
              f"Machine: {platform.machine()}, {os.cpu_count()} CPUs\n\n")
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
