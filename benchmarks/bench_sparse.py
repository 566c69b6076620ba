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
  table (SGD), or of the table and both Adam moments, nothing else;
- ours through `model.fit` (`, fit`), compiled with
  `steps_per_execution=--steps-per-execution` (1 on PyTorch, which allows
  no other): one `fit` over 4 x `--steps` batches, timed from its
  `on_train_begin` to the last step's result, divided by the steps (the
  data adapter and callbacks, built once per call, are left out);
- the empty steps: each framework's fixed cost per step, the same training
  call without the table. Keras: a `(256, 64)` float input -> `Dense(1)`,
  MSE, the same optimizer (`SparseSGD`, `LazyAdam`: Keras's rules for the
  head), through `train_on_batch` and through `fit`; PyTorch:
  `nn.Linear(64, 1)`, MSE, `torch.optim.SGD` or `Adam`.

All of them run in the same process, interleaved, so the ratios "ours /
PyTorch" and "ours / floor" (median over repeats of the per-repeat ratio)
compare timings taken side by side. The row-work ratio is
(ours - Keras's empty step) / (PyTorch - PyTorch's empty step), also per
repeat: what the table costs each framework (lookup, its backward and the
row update) once each framework's own fixed cost per step is taken out;
against the floor, (ours - Keras's empty step) / floor.

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
    python benchmarks/bench_sparse.py --steps-per-execution 32
    python benchmarks/bench_sparse.py --threads 1      # one core each

`--threads N` caps every library's CPU thread pools (PyTorch, TensorFlow,
XLA, OpenMP) at N in each process. On a shared machine this keeps the
ratios meaningful: PyTorch's threads spin-wait for each other, and a step
of theirs can take 10-100x longer when the cores are busy (timed under a
load of 6 on 2 cores: PyTorch's sparse steps took 8-334 ms in the
TensorFlow and JAX processes, 1-22 ms with one thread).
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
KERAS = "keras.layers.Embedding"
OURS = "LookupEmbedding(sparse=True)"
OURS_FIT = f"{OURS}, fit"
KERAS_EMPTY = "Keras empty step"
KERAS_EMPTY_FIT = f"{KERAS_EMPTY}, fit"
TORCH = "torch nn.Embedding(sparse=True)"
TORCH_EMPTY = "torch empty step"
FLOOR = "NumPy floor"
CONTENDERS = (
    (KERAS, "SGD"),
    (KERAS, "Adam"),
    (OURS, "SparseSGD"),
    (OURS, "LazyAdam"),
    (OURS_FIT, "SparseSGD"),
    (OURS_FIT, "LazyAdam"),
    (KERAS_EMPTY, "SparseSGD"),
    (KERAS_EMPTY, "LazyAdam"),
    (KERAS_EMPTY_FIT, "SparseSGD"),
    (KERAS_EMPTY_FIT, "LazyAdam"),
    (TORCH, peers.TORCH_SGD),
    (TORCH, peers.TORCH_ADAM),
    (TORCH_EMPTY, peers.TORCH_SGD),
    (TORCH_EMPTY, peers.TORCH_DENSE_ADAM),
    (FLOOR, peers.FLOOR_SGD),
    (FLOOR, peers.FLOOR_ADAM),
)
EMPTY_STEPS = (KERAS_EMPTY, KERAS_EMPTY_FIT, TORCH_EMPTY)
# (ours, its empty step, peer, the peer's empty step or None), reported as
# time(ours) / time(peer) and (ours - its empty) / (peer - peer's empty).
COMPARISONS = [
    ((layer, optimizer), (empty, optimizer), peer, peer_empty)
    for layer, empty in ((OURS, KERAS_EMPTY), (OURS_FIT, KERAS_EMPTY_FIT))
    for optimizer, peer, peer_empty in (
        ("LazyAdam", (TORCH, peers.TORCH_ADAM),
         (TORCH_EMPTY, peers.TORCH_DENSE_ADAM)),
        ("SparseSGD", (TORCH, peers.TORCH_SGD),
         (TORCH_EMPTY, peers.TORCH_SGD)),
        ("LazyAdam", (FLOOR, peers.FLOOR_ADAM), None),
        ("SparseSGD", (FLOOR, peers.FLOOR_SGD), None),
    )
]
COMPARISON_FIELDS = ("backend", "ours", "via", "peer", "vocabulary", "ratio",
                     "ours_ms", "peer_ms", "row_ratio", "ours_empty_ms",
                     "peer_empty_ms", "ours_rows_ms", "peer_rows_ms")
CSV_FIELDS = ("backend", "layer", "optimizer", "vocabulary",
              "distinct_rows", "median_ms", "ratio_to_smallest", "repeats")


def _keras_model(layer, optimizer, vocabulary, dim, bag, batch,
                 steps_per_execution=1):
    """A compiled Keras contender and its input: ids, or the empty step's
    fixed `(batch, dim)` floats."""
    import keras

    import keras_embedlab as kel

    optimizers = {
        "SGD": lambda: keras.optimizers.SGD(0.01),
        "Adam": lambda: keras.optimizers.Adam(0.001),
        "SparseSGD": lambda: kel.SparseSGD(0.01),
        "LazyAdam": lambda: kel.LazyAdam(0.001),
    }
    # The empty step compiles as ours does: on TensorFlow a table that
    # checks ids keeps the step off XLA (`supports_jit`).
    jit = "auto" if kel.LookupEmbedding(2, 1, sparse=True).supports_jit \
        else False
    if layer in (KERAS_EMPTY, KERAS_EMPTY_FIT):
        pooled = keras.Input((dim,))
        model = keras.Model(pooled, keras.layers.Dense(1)(pooled))
        model.compile(optimizers[optimizer](), "mse", jit_compile=jit,
                      steps_per_execution=steps_per_execution)
        return model, np.random.default_rng(1).normal(
            size=(batch, dim)).astype("float32")
    ids = keras.Input((bag,), dtype="int32")
    if layer == KERAS:
        table, model_class = keras.layers.Embedding(vocabulary, dim), \
            keras.Model
    else:
        table = kel.LookupEmbedding(vocabulary, dim, sparse=True)
        model_class = kel.RowSparseModel
    pooled = keras.layers.GlobalAveragePooling1D()(table(ids))
    model = model_class(ids, keras.layers.Dense(1)(pooled))
    model.compile(optimizers[optimizer](), "mse",
                  steps_per_execution=steps_per_execution)
    return model, None


def _per_step_timer(step, batches, steps):
    """`timer()`: seconds per step, the median of `steps` timed steps."""
    for x, y in batches:  # compile and warm up
        step(x, y)

    def timer():
        step_times = []
        for i in range(steps):
            x, y = batches[i % len(batches)]
            start = time.perf_counter()
            step(x, y)
            step_times.append(time.perf_counter() - start)
        return float(np.median(step_times))

    return timer


def _fit_timer(model, fixed_x, batches, steps):
    """`timer()`: seconds per step of `model.fit` over `4 * steps` batches.

    Timed from `fit`'s `on_train_begin` to the last step's result (read
    back: JAX's `fit` does not wait for it), so that building the data
    adapter and callbacks, a cost per call rather than per step, is left
    out; what `fit` does per epoch (an iterator, the epoch's callbacks)
    stays in, spread over the steps.
    """
    import keras

    n = 4 * steps
    chosen = [batches[i % len(batches)] for i in range(n)]
    y = np.concatenate([y for _, y in chosen])
    x = (np.concatenate([x for x, _ in chosen]) if fixed_x is None
         else np.concatenate([fixed_x] * n))

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.time = time.perf_counter()

    start = Start()

    batch = len(chosen[0][1])

    def timer(size=n):
        model.fit(x[:size * batch], y[:size * batch], batch_size=batch,
                  epochs=1, shuffle=False, verbose=0, callbacks=[start])
        keras.ops.convert_to_numpy(model.optimizer.iterations)
        return (time.perf_counter() - start.time) / size

    timer(2)  # compile and warm up: the step does not depend on the count
    return timer


def _timer(layer, optimizer, vocabulary, dim, bag, batches, steps,
           steps_per_execution):
    """`timer()` of one contender, built, compiled and warmed up: seconds
    per step."""
    batch = len(batches[0][1])
    if layer == TORCH:
        step = peers.torch_step(optimizer, vocabulary, dim)
    elif layer == TORCH_EMPTY:
        step = peers.torch_empty_step(optimizer, batch, dim)
    elif layer == FLOOR:
        step = peers.numpy_floor_step(optimizer, vocabulary, dim, batches)
    elif layer in (OURS_FIT, KERAS_EMPTY_FIT):
        model, fixed_x = _keras_model(layer, optimizer, vocabulary, dim, bag,
                                      batch, steps_per_execution)
        return _fit_timer(model, fixed_x, batches, steps)
    else:
        model, fixed_x = _keras_model(layer, optimizer, vocabulary, dim, bag,
                                      batch)
        if fixed_x is None:
            step = model.train_on_batch
        else:
            def step(ids, y):
                return model.train_on_batch(fixed_x, y)
    return _per_step_timer(step, batches, steps)


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


def worker(sizes, repeats, steps, batch, bag, dim, breakdown=False,
           steps_per_execution=8):
    """Runs in a process of one backend; prints one JSON line per result."""
    import keras

    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # Keras's PyTorch trainer allows no other.
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
    empty = {}  # an empty step has no table: one timer serves every V
    for layer, optimizer in contenders:
        for case, vocabulary, batches in cases:
            if layer in EMPTY_STEPS and (layer, optimizer) in empty:
                timer = empty[layer, optimizer]
            else:
                timer = _timer(layer, optimizer, vocabulary, dim, bag,
                               batches, steps, steps_per_execution)
            if layer in EMPTY_STEPS:
                empty[layer, optimizer] = timer
            runs[layer, optimizer, case] = (timer, batches)
    times = {key: [] for key in runs}
    for repeat in range(repeats):
        for key, (timer, _) in runs.items():
            times[key].append(timer())
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
    for ours, ours_empty, peer, peer_empty in COMPARISONS:
        for case, _, _ in cases:
            print(json.dumps({
                "backend": keras.backend.backend(),
                "ours": ours[1],
                "via": ("fit" if ours[0] == OURS_FIT
                        else "train_on_batch"),
                "peer": f"{peer[0]}: {peer[1]}", "vocabulary": case,
                **_compare(*(None if key is None else times[(*key, case)]
                             for key in (ours, ours_empty, peer,
                                         peer_empty))),
            }), flush=True)


def _compare(mine, my_empty, theirs, their_empty=None):
    """Medians over repeats of ours / peer and of the row-work ratio
    (ours - our empty step) / (peer - the peer's empty step)."""
    mine, my_empty, theirs = map(np.asarray, (mine, my_empty, theirs))
    their_empty = (np.zeros_like(theirs) if their_empty is None
                   else np.asarray(their_empty))
    my_rows, their_rows = mine - my_empty, theirs - their_empty
    # A difference at or below 0 (noise) has no meaningful ratio.
    row_ratios = np.where(their_rows > 0, my_rows / np.where(
        their_rows > 0, their_rows, 1), np.nan)

    def ms(t):
        return round(1000 * float(np.median(t)), 3)

    return {
        "ratio": round(float(np.median(mine / theirs)), 3),
        "ours_ms": ms(mine), "peer_ms": ms(theirs),
        "row_ratio": round(float(np.nanmedian(row_ratios)), 3),
        "ours_empty_ms": ms(my_empty), "peer_empty_ms": ms(their_empty),
        "ours_rows_ms": ms(my_rows), "peer_rows_ms": ms(their_rows),
    }


def run_backend(backend, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               "--sizes", ",".join(map(str, args.sizes)),
               "--repeats", str(args.repeats), "--steps", str(args.steps),
               "--steps-per-execution", str(args.steps_per_execution)]
    if args.breakdown:
        command.append("--breakdown")
    env = {**os.environ, "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    if args.threads:
        command += ["--threads", str(args.threads)]
        n = str(args.threads)
        env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n,
                   TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS=n,
                   XLA_FLAGS=(env.get("XLA_FLAGS", "") + " "
                              "--xla_cpu_multi_thread_eigen=false "
                              f"intra_op_parallelism_threads={n}").strip())
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
    """Ours / peer at each V, each one's growth from the first V, then the
    row-work ratio (each framework's empty step taken out)."""
    growth = {key: cells[sizes[-1]]["ratio_to_smallest"] for key, cells
              in _by_key(rows, ("backend", "layer", "optimizer")).items()}
    groups = _by_key(comparisons, ("backend", "ours", "via", "peer"))
    lines = _header("backend | ours (via) | peer", sizes, "ours / peer, V={}",
                    f"growth to V={sizes[-1]:,}: ours, peer")
    for (backend, ours, via, peer), cells in groups.items():
        ratios = " | ".join(
            f"**{cells[v]['ratio']:.2f}x** ({cells[v]['ours_ms']:.2f} / "
            f"{cells[v]['peer_ms']:.2f} ms)" for v in sizes)
        theirs = growth[(backend, *peer.split(": ", 1))]
        layer = OURS_FIT if via == "fit" else OURS
        lines.append(f"| {backend} | {ours} ({via}) | {peer} | {ratios} | "
                     f"{growth[backend, layer, ours]:.2f}x, {theirs:.2f}x |")
    lines += [""] + _header(
        "backend | ours (via) | peer", sizes, "row work, V={}",
        "empty steps: ours, peer")
    for (backend, ours, via, peer), cells in groups.items():
        ratios = " | ".join(
            f"**{cells[v]['row_ratio']:.2f}x** ({cells[v]['ours_rows_ms']:.2f}"
            f" / {cells[v]['peer_rows_ms']:.2f} ms)" for v in sizes)
        last = cells[sizes[-1]]
        lines.append(f"| {backend} | {ours} ({via}) | {peer} | {ratios} | "
                     f"{last['ours_empty_ms']:.2f}, "
                     f"{last['peer_empty_ms']:.2f} ms |")
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
    colors = plt.get_cmap("tab20").colors  # one colour per contender
    for axis, backend in zip(axes[0], backends):
        for (layer, optimizer), color in zip(CONTENDERS, colors):
            points = [r for r in rows if r["backend"] == backend
                      and (r["layer"], r["optimizer"]) == (layer, optimizer)]
            points.sort(key=lambda r: r["vocabulary"])
            style = {KERAS: "--", TORCH: "-.", TORCH_EMPTY: "-.",
                     FLOOR: ":"}.get(layer, "-")
            axis.plot([r["vocabulary"] for r in points],
                      [r["median_ms"] for r in points], style, marker="o",
                      color=color, label=f"{layer} + {optimizer}")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("table rows V (dim 64)")
        axis.set_ylabel("training step, ms (median)")
        axis.set_title(f"{backend}: batch 256 x 32 ids")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6)
    figure.suptitle("Step time against table size: dense Keras updates, "
                    "row-sparse updates, plain PyTorch, NumPy floor, "
                    "empty steps")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--steps-per-execution", type=int, default=8,
                        help="of the `fit` contenders on TensorFlow and JAX "
                        "(PyTorch: 1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="cap each library's CPU threads (0: their "
                        "defaults)")
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
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
            torch.set_num_interop_threads(args.threads)
        worker(args.sizes, args.repeats, args.steps, batch=256, bag=32,
               dim=64, breakdown=args.breakdown,
               steps_per_execution=args.steps_per_execution)
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
              f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
              f"threads per library: {args.threads or 'default'}\n\n")
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
