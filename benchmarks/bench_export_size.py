"""Exported file sizes of float32, int8 and int4 tables (issue 25).

One model (ids -> `LookupEmbedding(vocabulary, dim)` -> average), its
table float32 or quantized with `layer.quantize`, exported with Keras's
`model.export` to every format this backend has, run in the format's own
runtime (`keras_embedlab.run_exported`): the file's size (the folder's, for
SavedModels and OpenVINO's .xml + .bin) as a ratio to the float32 file of
the same format, and the largest difference from `model.predict`. Target:
an int8 ONNX file at most 0.3x the float32 one, with equal outputs.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/bench_export_size.py
"""

import argparse
import os
import tempfile

import keras
import numpy as np

import keras_embedlab as kel
from keras_embedlab.serving import EXTENSIONS, FORMATS


def build(vocabulary, dim, length, quantization):
    ids = keras.Input((length,), dtype="int32", name="ids")
    layer = kel.LookupEmbedding(vocabulary, dim, invalid_ids="zeros")
    layer.build((None, length))
    if quantization != "float32":
        layer.quantize(quantization)
    model = keras.Model(ids, keras.layers.GlobalAveragePooling1D()(
        layer(ids)))
    model(np.zeros((1, length), "int32"))
    return model


def size_of(path):
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabulary", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    backend = keras.backend.backend()
    length = 8
    x = np.random.default_rng(0).integers(
        0, args.vocabulary, (1, length)).astype("int32")
    print(f"backend {backend}, table {args.vocabulary} x {args.dim}\n")
    print("| format | table | file bytes | / float32 | max abs diff |")
    print("|---|---|---|---|---|")
    for fmt in FORMATS:
        base = None
        for quantization in ("float32", "int8", "int4"):
            model = build(args.vocabulary, args.dim, length, quantization)
            folder = tempfile.mkdtemp()
            path = os.path.join(folder, "model" + EXTENSIONS[fmt])
            try:
                model.export(path, format=fmt, verbose=False)
            except Exception as error:  # Report the cell, go on.
                print(f"| `{fmt}` | {quantization} | export failed: "
                      f"{type(error).__name__} | | |")
                continue
            size = size_of(path)
            base = size if quantization == "float32" else base
            out = kel.run_exported(path, fmt, [x])[0]
            diff = np.abs(out - model.predict(x, verbose=0)).max()
            ratio = f"{size / base:.3f}x" if base else "-"
            print(f"| `{fmt}` | {quantization} | {size:,} | {ratio} | "
                  f"{diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
