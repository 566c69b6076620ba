"""Benchmark: ids without a vocabulary, compared at equal memory.

A synthetic click task whose raw ids come from a large universe, learned by
tables of the same number of rows (full table as the reference), on one
backend per process (`KERAS_BACKEND` is read once).

Generator (NumPy, `numpy.random.default_rng(seed)`, the same data on every
backend), in this order:

1. `score = rng.normal(0, 1, universe)`: each raw id's latent score (its
   true logit contribution), indexed by popularity rank.
2. `id_of_rank = rng.permutation(universe)`: raw id of each rank, so that
   popular ids are spread over `[0, universe)`.
3. Ranks are Zipf over the finite universe: `P(rank k) ~ (k + 1) ** -s`,
   `k` in `[0, universe)`, `s = --zipf` (1.1), drawn by inverse CDF
   (`searchsorted` of uniforms in the cumulative sum). Each example has
   `--fields` (4) ranks drawn i.i.d.; its ids are `id_of_rank[ranks]`.
4. `label ~ Bernoulli(sigmoid(BIAS + sum of the fields' scores))`,
   `BIAS = -1`. Training examples are drawn first (`steps x batch`), then
   the held-out set (`--test` examples).

A full table can represent the truth exactly (each id's row read by the
head is its score), so the gap to the ground truth's own log-loss/AUC (the
"ground truth" row) is what a contender loses to collisions, sharing and
unseen ids (held-out ids never seen in training read an untrained row in
every contender).

Model around each contender (the same for all): ids `(batch, fields)` ->
table `(batch, fields, dim)` -> `GlobalAveragePooling1D` -> `Dense(1)`
logit, binary cross-entropy on logits, `RowSparseModel`, `LazyAdam(lr)`,
the same batches in the same order, one `train_on_batch` per step.
Contenders, `--rows` R (10^5) rows each except the reference:

- `full`: `LookupEmbedding(universe, dim, sparse=True)` over every raw id
  (10^7 x 16 float32 = 640 MB, plus LazyAdam's two slots: about 1.9 GB);
- `hashed-1`, `hashed-4`: `HashedEmbedding(R, dim, num_hashes=1 or 4,
  sparse=True)`;
- `qr`: `QREmbedding(universe, dim, num_collisions=m, sparse=True)`
  ("mult"), `m` the largest with `ceil(universe / m) + m <= R`;
- `dynamic`: `DynamicEmbedding(R - 1, dim)` (LFU, `min_count=1`; `R - 1`
  slots plus its OOV row), when `keras_embedlab.DynamicEmbedding` exists;
  otherwise skipped with a printed reason.

Every step trains every contender in turn on the same batch, so step times
are taken side by side; a contender's step time is the median over steps
after the first `--warmup`, and its ratio is the median of the per-step
ratios to `hashed-1` on the same batch. Table bytes: all of the layer's
variables (the dynamic map's state included), optimizer slots excluded.
Log-loss and AUC (ties counted half) on the held-out set after the last
step.

Usage:
    python benchmarks/bench_ids.py                    # 3 backends, 10^7 ids
    python benchmarks/bench_ids.py --quick            # 10^6 ids, 10^4 rows
    python benchmarks/bench_ids.py --backends jax --steps 200
    python benchmarks/bench_ids.py --contenders full,hashed-1 --rows 1
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
BIAS = -1.0
REFERENCE = "hashed-1"
TRUTH = "ground truth"


# -- data ---------------------------------------------------------------


def make_data(universe, fields, zipf, n_train, n_test, seed):
    """`(train_ids, train_labels, test_ids, test_labels, test_logits)`."""
    rng = np.random.default_rng(seed)
    score = rng.normal(0.0, 1.0, universe).astype("float32")
    id_of_rank = rng.permutation(universe).astype("int32")
    cdf = np.cumsum(np.arange(1, universe + 1, dtype="float64") ** -zipf)
    cdf /= cdf[-1]

    def draw(n):
        ranks = np.searchsorted(cdf, rng.random((n, fields)))
        ranks = np.minimum(ranks, universe - 1)
        logits = BIAS + score[ranks].sum(axis=1)
        labels = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(
            "float32")
        return id_of_rank[ranks], labels, logits

    train_ids, train_labels, _ = draw(n_train)
    test_ids, test_labels, test_logits = draw(n_test)
    return train_ids, train_labels, test_ids, test_labels, test_logits


def log_loss(labels, logits):
    logits = np.asarray(logits, "float64")
    # -log sigmoid(z) = softplus(-z), stable for any z.
    return float(np.mean(np.logaddexp(0, -logits) * labels
                         + np.logaddexp(0, logits) * (1 - labels)))


def auc(labels, scores):
    """Area under the ROC curve: Mann-Whitney with mid-ranks for ties."""
    scores = np.asarray(scores, "float64")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    positives = labels > 0.5
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2)
                 / (n_pos * n_neg))


# -- contenders -----------------------------------------------------------


def qr_collisions(universe, rows):
    """Largest `m` with `ceil(universe / m) + m <= rows`, or None."""
    if rows * rows < 4 * universe:
        return None
    m = min(universe, (rows + math.isqrt(rows * rows - 4 * universe)) // 2)
    while m > 0 and -(-universe // m) + m > rows:
        m -= 1
    return m or None


def _full(kel, universe, rows, dim):
    return kel.LookupEmbedding(universe, dim, sparse=True)


def _hashed(num_hashes):
    def build(kel, universe, rows, dim):
        return kel.HashedEmbedding(rows, dim, num_hashes=num_hashes,
                                   sparse=True)
    return build


def _qr(kel, universe, rows, dim):
    m = qr_collisions(universe, rows)
    if m is None:
        raise _Skip(f"no m gives ceil({universe:,} / m) + m <= {rows:,} "
                    "rows")
    return kel.QREmbedding(universe, dim, num_collisions=m, sparse=True)


def _dynamic(kel, universe, rows, dim):
    if not hasattr(kel, "DynamicEmbedding"):
        raise _Skip("keras_embedlab.DynamicEmbedding does not exist in "
                    "this checkout")
    if rows < 2:
        raise _Skip(f"needs at least 2 rows (slots + OOV); rows={rows}")
    return kel.DynamicEmbedding(rows - 1, dim)


class _Skip(Exception):
    """A contender that cannot run here; the message says why."""


# name -> (builder, description for the table)
CONTENDERS = {
    "full": (_full, "LookupEmbedding over every raw id (reference)"),
    "hashed-1": (_hashed(1), "HashedEmbedding, num_hashes=1"),
    "hashed-4": (_hashed(4), "HashedEmbedding, num_hashes=4"),
    "qr": (_qr, "QREmbedding, mult"),
    "dynamic": (_dynamic, "DynamicEmbedding, LFU, min_count=1"),
}


def _layer_rows(layer):
    """Rows of the layer's trainable tables (a description for humans)."""
    shapes = [tuple(w.shape) for w in layer.trainable_weights
              if len(w.shape) == 2]
    return " + ".join(f"{s[0]:,}" for s in shapes)


def _model(kel, keras, layer, fields, lr):
    ids = keras.Input((fields,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(layer(ids))
    model = kel.RowSparseModel(ids, keras.layers.Dense(1)(pooled))
    model.compile(kel.LazyAdam(lr),
                  keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def measure(universe=10**7, rows=10**5, dim=16, fields=4, batch=1024,
            steps=3000, warmup=5, test=50_000, zipf=1.1, lr=0.01, seed=0,
            contenders=tuple(CONTENDERS), log=print):
    """Runs in this process's backend; returns one dict per result."""
    import keras

    import keras_embedlab as kel

    keras.utils.set_random_seed(seed)
    # Every raw id here is below 2**31: int32 ids lose nothing on JAX.
    warnings.filterwarnings("ignore", message=".*runs on JAX without x64")
    started = time.perf_counter()
    train_ids, train_labels, test_ids, test_labels, test_logits = make_data(
        universe, fields, zipf, steps * batch, test, seed)
    log(f"data: {steps * batch:,} training and {test:,} held-out examples,"
        f" {len(np.unique(train_ids)):,} distinct training ids "
        f"({time.perf_counter() - started:.1f} s)")
    backend = keras.backend.backend()
    results = [{"backend": backend, "contender": TRUTH,
                "layer": "the generator's own logits", "rows": "",
                "table_bytes": None,
                "log_loss": round(log_loss(test_labels, test_logits), 5),
                "auc": round(auc(test_labels, test_logits), 5),
                "step_ms": None, "step_ratio": None}]
    models, skipped = {}, []
    for name in contenders:
        build, description = CONTENDERS[name]
        try:
            layer = build(kel, universe, rows, dim)
        except _Skip as why:
            log(f"skipped {name}: {why}")
            skipped.append({"backend": backend, "contender": name,
                            "skipped": str(why)})
            continue
        models[name] = (_model(kel, keras, layer, fields, lr), layer,
                        description)
    times = {name: [] for name in models}
    labels = train_labels.reshape(-1, 1)
    for step in range(steps):
        x = train_ids[step * batch:(step + 1) * batch]
        y = labels[step * batch:(step + 1) * batch]
        for name, (model, _, _) in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"step {step + 1}/{steps}")
    for name, (model, layer, description) in models.items():
        logits = model.predict(test_ids, batch_size=8192, verbose=0)[:, 0]
        step_times = np.array(times[name][warmup:] or times[name])
        row = {"backend": backend, "contender": name, "layer": description,
               "rows": _layer_rows(layer),
               "table_bytes": int(sum(
                   math.prod(w.shape) * np.dtype(w.dtype).itemsize
                   for w in layer.weights)),
               "log_loss": round(log_loss(test_labels, logits), 5),
               "auc": round(auc(test_labels, logits), 5),
               "step_ms": round(1000 * float(np.median(step_times)), 3),
               "step_ratio": None}
        if REFERENCE in times:
            reference = np.array(times[REFERENCE][warmup:]
                                 or times[REFERENCE])
            row["step_ratio"] = round(
                float(np.median(step_times / reference)), 3)
        results.append(row)
    return results + skipped


# -- reporting -------------------------------------------------------------


def _bytes(n):
    if n is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_table(results):
    lines = ["| backend | contender | layer | rows | table bytes | "
             "held-out log-loss | held-out AUC | step (median) | "
             f"step / {REFERENCE} |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['contender']} | skipped: "
                         f"{r['skipped']} | | | | | | |")
            continue
        ms = "-" if r["step_ms"] is None else f"{r['step_ms']:.2f} ms"
        ratio = "-" if r["step_ratio"] is None else f"{r['step_ratio']:.2f}x"
        lines.append(f"| {r['backend']} | {r['contender']} | {r['layer']} | "
                     f"{r['rows']} | {_bytes(r['table_bytes'])} | "
                     f"{r['log_loss']:.4f} | **{r['auc']:.4f}** | {ms} | "
                     f"{ratio} |")
    return "\n".join(lines)


def write_chart(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if "skipped" not in r]
    backends = list(dict.fromkeys(r["backend"] for r in done))
    names = list(dict.fromkeys(r["contender"] for r in done))
    figure, (bars, scatter) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(backends))
    for i, backend in enumerate(backends):
        auc_of = {r["contender"]: r["auc"] for r in done
                  if r["backend"] == backend}
        positions = [j + (i - (len(backends) - 1) / 2) * width
                     for j, name in enumerate(names) if name in auc_of]
        bars.bar(positions, [auc_of[n] for n in names if n in auc_of],
                 width, label=backend)
    bars.set_xticks(range(len(names)), names, rotation=20)
    low = min(r["auc"] for r in done)
    bars.set_ylim(max(0.0, low - 0.02), 1.0)
    bars.set_ylabel("held-out AUC")
    bars.set_title("AUC per contender and backend")
    bars.legend(fontsize=8)
    bars.grid(True, axis="y", alpha=0.3)
    for name in names:
        points = [r for r in done if r["contender"] == name
                  and r["table_bytes"]]
        if points:
            scatter.scatter([r["table_bytes"] for r in points],
                            [r["log_loss"] for r in points], label=name)
    for r in done:
        if r["contender"] == TRUTH:
            scatter.axhline(r["log_loss"], color="gray", linestyle=":",
                            label=f"{TRUTH} ({r['backend']})"
                            if r["backend"] == backends[0] else None)
    scatter.set_xscale("log")
    scatter.set_xlabel("table bytes (all layer variables)")
    scatter.set_ylabel("held-out log-loss (lower is better)")
    scatter.set_title("Quality against memory (every backend)")
    scatter.grid(True, which="both", alpha=0.3)
    scatter.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -- command line ------------------------------------------------------------

SETTINGS = ("universe", "rows", "dim", "fields", "batch", "steps", "warmup",
            "test", "zipf", "lr", "seed")


def _contender_list(text):
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"contenders are {', '.join(CONTENDERS)}; received {text!r}")
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--universe", type=int, default=10**7,
                        help="raw ids are in [0, universe)")
    parser.add_argument("--rows", type=int, default=10**5,
                        help="rows of every contender but the full table")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--fields", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=5,
                        help="first steps left out of the step times")
    parser.add_argument("--test", type=int, default=50_000,
                        help="held-out examples")
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contenders", type=_contender_list,
                        default=list(CONTENDERS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true",
                        help="10^6 ids, 10^4 rows, 300 steps")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for bench-ids.json/.md/.png")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.universe, args.rows, args.steps = 10**6, 10**4, 300
    for name in ("universe", "rows", "dim", "fields", "batch", "steps",
                 "test"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer; received "
                         f"{getattr(args, name)}")
    if args.universe > 2**31 - 1:
        parser.error(f"--universe must be at most 2**31 - 1 (ids are "
                     f"int32); received {args.universe}")
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"--backends: this benchmark runs on "
                     f"{', '.join(BACKENDS)}; received {', '.join(unknown)}")
    args.backends = backends
    return args


def _settings(args):
    return {name: getattr(args, name) for name in SETTINGS}


def run_backend(backend, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               "--contenders", ",".join(args.contenders)]
    for name, value in _settings(args).items():
        command += [f"--{name}", str(value)]
    env = {**os.environ, "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    print(f"[{backend}] training...", file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                          text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()
            if line.startswith("{")]


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        for row in measure(**_settings(args), contenders=args.contenders,
                           log=lambda m: print(m, file=sys.stderr,
                                               flush=True)):
            print(json.dumps(row), flush=True)
        return
    results = []
    for backend in args.backends:
        results += run_backend(backend, args)
    settings = _settings(args)
    title = (f"{args.universe:,} raw ids (Zipf {args.zipf}), {args.rows:,} "
             f"rows x {args.dim}, {args.steps} steps of {args.batch} x "
             f"{args.fields} ids, LazyAdam({args.lr})")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench-ids.json"), "w") as f:
        json.dump({"settings": settings, "machine": {
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version()}, "results": results},
            f, indent=1)
    write_chart(results, os.path.join(args.out, "bench-ids.png"), title)
    table = format_table(results)
    header = (f"Command: `python benchmarks/bench_ids.py "
              f"{' '.join(sys.argv[1:] if argv is None else argv)}`\n"
              f"Machine: {platform.machine()}, {os.cpu_count()} CPUs\n"
              f"Setting: {title}\n\n")
    with open(os.path.join(args.out, "bench-ids.md"), "w") as f:
        f.write(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
