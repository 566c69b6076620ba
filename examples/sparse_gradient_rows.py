"""Claim: "an embedding only updates the rows in the batch".

True for the gradient and for plain SGD: after one SGD step only the rows
whose ids were in the batch change. Not true for Adam (or any optimizer with
momentum) with dense gradients, which is what Keras uses: rows touched in an
earlier batch keep moving, so each Adam step costs the whole table. Exits
non-zero if the evidence says otherwise.

    KERAS_BACKEND=jax python examples/sparse_gradient_rows.py
"""

import argparse
import sys

import keras
import numpy as np

import keras_embedlab as kel


def changed_rows(before, after):
    return set(np.flatnonzero(np.any(before != after, axis=1)).tolist())


def one_model(vocabulary, optimizer):
    inputs = keras.Input((None,), dtype="int32")
    table = kel.LookupEmbedding(vocabulary, 8, name="table")
    x = keras.layers.GlobalAveragePooling1D()(table(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer, "mse")
    return model, table


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocabulary", type=int, default=1000)
    args = parser.parse_args(argv)
    batch_a = np.array([[3, 17, 17, 256]], "int32")
    batch_b = np.array([[5, 99, 500, 5]], "int32")
    y = np.ones((1, 1), "float32")
    ok = True
    print(f"backend {keras.backend.backend()}, table of {args.vocabulary} "
          f"rows; batch A ids {sorted(set(batch_a.ravel().tolist()))}, "
          f"batch B ids {sorted(set(batch_b.ravel().tolist()))}")

    model, table = one_model(args.vocabulary, keras.optimizers.SGD(0.1))
    before = keras.ops.convert_to_numpy(table.embeddings).copy()
    model.train_on_batch(batch_a, y)
    rows = changed_rows(before, keras.ops.convert_to_numpy(table.embeddings))
    print(f"SGD, one step on A: rows changed {sorted(rows)}")
    ok &= rows == set(batch_a.ravel().tolist())

    model, table = one_model(args.vocabulary, keras.optimizers.Adam(0.01))
    model.train_on_batch(batch_a, y)
    before = keras.ops.convert_to_numpy(table.embeddings).copy()
    model.train_on_batch(batch_b, y)
    rows = changed_rows(before, keras.ops.convert_to_numpy(table.embeddings))
    expected = set(batch_a.ravel().tolist()) | set(batch_b.ravel().tolist())
    print(f"Adam, step on A then step on B: rows changed by the B step "
          f"{sorted(rows)}")
    print("  rows from A keep moving on momentum: the dense Adam update "
          f"touches all {args.vocabulary} rows' state every step")
    ok &= rows == expected
    print("evidence agrees with the README" if ok else "CONTRADICTION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
