"""Claim: a Dense layer on one-hot input can do more than an embedding.

For one id at a time, both compute a table: `activation(kernel + bias)[id]`
is again a lookup. What differs is the parametrisation: the bias is shared by
all ids, so training on id 0 moves the output for id 1, which a lookup never
does; and the activation constrains the outputs (relu: never negative). With
no activation, `kernel + bias` folds back into a lookup table exactly. Exits
non-zero if the evidence says otherwise.

    python examples/bias_and_activation.py
"""

import argparse
import sys

import keras
import numpy as np

import keras_embedlab as kel


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocabulary", type=int, default=6)
    parser.add_argument("--dim", type=int, default=3)
    args = parser.parse_args(argv)
    v, d = args.vocabulary, args.dim
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(v, d)).astype("float32")
    bias = rng.normal(size=(d,)).astype("float32")
    ids = np.arange(v, dtype="int32")
    ok = True

    dense = kel.OneHotDense(v, d, use_bias=True, weights=[kernel, bias])
    folded = kel.LookupEmbedding(v, d, weights=kernel + bias)
    gap = float(np.abs(numpy_of(dense(ids)) - numpy_of(folded(ids))).max())
    print(f"1. no activation: OneHotDense(kernel, bias) vs LookupEmbedding("
          f"kernel + bias): max difference {gap:.1e}")
    ok &= gap <= 1e-6
    try:
        kel.LookupEmbedding.from_one_hot_dense(dense)
        ok = False
    except ValueError as error:
        print(f"   from_one_hot_dense refuses to drop the bias: {error}")

    relu = kel.OneHotDense(v, d, use_bias=True, activation="relu",
                           weights=[kernel, bias])
    outputs = numpy_of(relu(ids))
    table = np.maximum(kernel + bias, 0)
    print(f"2. relu: outputs are never negative (min {outputs.min():.3f}), "
          f"and still a table: max |relu(kernel + bias)[ids] - outputs| = "
          f"{np.abs(table - outputs).max():.1e}")
    ok &= outputs.min() >= 0 and np.allclose(table, outputs, atol=1e-6)

    print("3. shared bias: one SGD step on id 0 only")
    for layer in (kel.OneHotDense(v, d, use_bias=True,
                                  weights=[kernel, bias]),
                  kel.LookupEmbedding(v, d, weights=kernel + bias)):
        model = keras.Sequential([keras.Input((1,), dtype="int32"), layer,
                                  keras.layers.Flatten()])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        before = model.predict(ids[:, None], verbose=0)
        model.train_on_batch(np.array([[0]], "int32"), np.ones((1, d)))
        after = model.predict(ids[:, None], verbose=0)
        moved = np.flatnonzero(np.any(before != after, axis=1)).tolist()
        print(f"   {type(layer).__name__:16s} outputs that moved: ids "
              f"{moved}")
        expected = list(range(v)) if isinstance(layer, kel.OneHotDense) \
            else [0]
        ok &= moved == expected
    print("evidence agrees with the README" if ok else "CONTRADICTION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
