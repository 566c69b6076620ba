"""Claim: an Embedding layer is a Dense layer on one-hot input.

Same matrix, same ids: `LookupEmbedding`, `OneHotDense` and
`keras.layers.Embedding` return the same outputs, and the two keras_embedlab
layers have the same gradient with respect to the matrix. Exits non-zero if
the evidence says otherwise.

    KERAS_BACKEND=jax python examples/embedding_is_dense_on_one_hot.py
"""

import argparse
import sys

import keras
import numpy as np

import keras_embedlab as kel
from keras_embedlab.testing import layer_gradients


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocabulary", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--ids", type=int, default=512)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    table = rng.normal(size=(args.vocabulary, args.dim)).astype("float32")
    ids = rng.integers(0, args.vocabulary, size=(args.ids,)).astype("int32")
    cotangent = rng.normal(size=(args.ids, args.dim)).astype("float32")

    lookup = kel.LookupEmbedding(args.vocabulary, args.dim, weights=table)
    dense = kel.OneHotDense(args.vocabulary, args.dim, weights=table)
    keras_layer = keras.layers.Embedding(args.vocabulary, args.dim,
                                         weights=table)
    outputs = {
        name: keras.ops.convert_to_numpy(layer(ids))
        for name, layer in [("LookupEmbedding", lookup),
                            ("OneHotDense", dense),
                            ("keras.layers.Embedding", keras_layer)]
    }
    print(f"backend {keras.backend.backend()}: {args.ids} ids into a "
          f"{args.vocabulary} x {args.dim} table")
    ok = True
    for name, value in outputs.items():
        same = np.array_equal(value, table[ids])
        ok &= same
        print(f"  {name:24s} output == table[ids] bit for bit: {same}")

    (g_lookup,) = layer_gradients(lookup, ids, cotangent)
    (g_dense,) = layer_gradients(dense, ids, cotangent)
    diff = float(np.abs(g_lookup - g_dense).max())
    rows = np.flatnonzero(np.abs(g_lookup).sum(1))
    print(f"  gradient wrt the matrix, max |lookup - one-hot| = {diff:.2e}")
    print(f"  rows with a non-zero gradient: {rows.size} of "
          f"{args.vocabulary} (= distinct ids in the batch: "
          f"{np.unique(ids).size})")
    ok &= diff <= 1e-5 and rows.size == np.unique(ids).size
    print("evidence agrees with the README" if ok else "CONTRADICTION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
