"""Benchmark: int8/int4 tables against float32, ours against Keras's.

Two measures, each backend in its own process (`KERAS_BACKEND` is read
once), all in one run:

- Memory of the table at 10^6 x 64: the bytes of every variable of a
  `LookupEmbedding` in float32, int8, int4 per-channel and int4 with
  Keras's default 128-wide blocks, as ratios to float32 (targets: int8
  <= 0.27x, int4 <= 0.15x).
- Forward lookup time of 32,768 ids into a 100,000 x 128 table, in a
  compiled `predict_on_batch`: ours in int8 and int4 against ours in
  float32 (target <= 1.3x) and against `keras.layers.Embedding` quantized
  the same way (target <= 1.0x). Medians of `--repeats` calls, contenders
  interleaved so that machine noise hits all of them alike.

Usage:
    python benchmarks/bench_quantized.py                 # all backends
    python benchmarks/bench_quantized.py --backends jax --repeats 10
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {  # name -> (mode, Int4QuantizationConfig block_size)
    "float32": (None, None),
    "int8": ("int8", None),
    "int4": ("int4", None),
    "int4/128": ("int4", 128),
}


def _quantized(layer, name):
    import keras

    mode, block_size = MODES[name]
    if mode == "int8":
        layer.quantize("int8")
    elif mode == "int4":
        layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
            block_size=block_size))
    return layer


def _nbytes(variable):
    import keras

    return keras.ops.convert_to_numpy(variable).nbytes


def lookup_times(repeats):
    import keras
    import numpy as np

    import keras_embedlab as kel

    ids = np.random.default_rng(0).integers(0, 100_000, (32_768,), "int32")
    table = np.random.default_rng(1).normal(size=(100_000, 128)).astype(
        "float32")
    models = {}
    for owner, cls in (("ours", kel.LookupEmbedding),
                       ("keras", keras.layers.Embedding)):
        for name in MODES:
            layer = _quantized(cls(100_000, 128, weights=table), name)
            model = keras.Sequential([keras.Input((), dtype="int32"), layer])
            for _ in range(3):
                model.predict_on_batch(ids)
            models[(owner, name)] = model
    times = {key: [] for key in models}
    for _ in range(repeats):
        for key, model in models.items():
            start = time.perf_counter()
            keras.ops.convert_to_numpy(model.predict_on_batch(ids))
            times[key].append(time.perf_counter() - start)
    return {f"{o}:{n}": statistics.median(t) for (o, n), t in times.items()}


def worker(repeats):
    import keras

    import keras_embedlab as kel

    sizes = {}
    for name in MODES:
        layer = kel.LookupEmbedding(1_000_000, 64)
        layer.build()
        _quantized(layer, name)
        sizes[name] = sum(_nbytes(v) for v in layer.weights)
        del layer
    print(json.dumps({"backend": keras.backend.backend(), "bytes": sizes,
                      "seconds": lookup_times(repeats)}))


def report(results):
    lines = ["| backend | table bytes int8 / float32 | int4 / float32 | "
             "int4/128 / float32 |", "|---|---|---|---|"]
    for r in results:
        b = r["bytes"]
        lines.append(f"| {r['backend']} | {b['int8'] / b['float32']:.3f} | "
                     f"{b['int4'] / b['float32']:.3f} | "
                     f"{b['int4/128'] / b['float32']:.3f} |")
    lines += ["", "| backend | mode | ours ms | ours / ours float32 | "
              "Keras ms | ours / Keras |", "|---|---|---|---|---|---|"]
    for r in results:
        s = r["seconds"]
        for name in MODES:
            ours, theirs = s[f"ours:{name}"], s[f"keras:{name}"]
            lines.append(
                f"| {r['backend']} | {name} | {ours * 1e3:.2f} | "
                f"{ours / s['ours:float32']:.2f}x | {theirs * 1e3:.2f} | "
                f"{ours / theirs:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.repeats)
    results = []
    for backend in args.backends.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--worker",
             f"--repeats={args.repeats}"],
            env={**os.environ, "KERAS_BACKEND": backend,
                 "PYTHONPATH": REPO}, capture_output=True, text=True,
            check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(report(results))


if __name__ == "__main__":
    main()
