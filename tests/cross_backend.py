"""Runs under one backend; writes results other backends' tests compare.

Used by `test_saving.py` both in-process and as a subprocess:

    KERAS_BACKEND=jax python tests/cross_backend.py WORKDIR [MODEL.keras ...]

writes `WORKDIR/train-<backend>.npz` (weights after training),
`WORKDIR/model-<backend>.keras` with `WORKDIR/predict-<backend>.npz`, and for
each MODEL.keras given, `WORKDIR/loaded-<name>-by-<backend>.npz`.
"""

import os
import sys

import keras
import numpy as np

import keras_embedlab as kel

BACKEND = keras.backend.backend()
INPUT_DIM, OUTPUT_DIM, SEQ_LEN = 20, 4, 6


def data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 16, size=(n, SEQ_LEN)).astype("int32")
    ids[:, -2:] = 0  # trailing padding, masked where mask_zero=True
    targets = rng.normal(size=(n, 1)).astype("float32")
    return ids, targets


def initial_weights(model, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=w.shape).astype("float32") * 0.3
            for w in model.get_weights()]


def training_model(layer):
    inputs = keras.Input((SEQ_LEN,), dtype="int32")
    x = keras.layers.GlobalAveragePooling1D()(layer(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def train(workdir):
    """Trains both layers with Adam from the same weights and data."""
    ids, targets = data()
    results = {}
    for name, layer in [
        ("lookup", kel.LookupEmbedding(INPUT_DIM, OUTPUT_DIM)),
        ("one_hot", kel.OneHotDense(INPUT_DIM, OUTPUT_DIM)),
    ]:
        model = training_model(layer)
        model.set_weights(initial_weights(model))
        model.compile(keras.optimizers.Adam(0.05), "mse")
        model.fit(ids, targets, batch_size=8, epochs=2, shuffle=False,
                  verbose=0)
        for i, w in enumerate(model.get_weights()):
            results[f"{name}/{i}"] = w
    np.savez(os.path.join(workdir, f"train-{BACKEND}.npz"), **results)
    return results


def saving_model():
    inputs = keras.Input((SEQ_LEN,), dtype="int32")
    a = kel.LookupEmbedding(INPUT_DIM, OUTPUT_DIM, mask_zero=True,
                            invalid_ids="zeros", name="lookup")(inputs)
    b = kel.OneHotDense(INPUT_DIM, OUTPUT_DIM, use_bias=True,
                        activation="tanh", mask_zero=True,
                        invalid_ids="zeros", name="one_hot")(inputs)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.set_weights(initial_weights(model, seed=2))
    return model


def predict(model):
    ids, _ = data(seed=5, n=16)
    ids[0, 0] = INPUT_DIM + 3  # an invalid id, handled by invalid_ids="zeros"
    return model.predict(ids, verbose=0)


def save(workdir):
    model = saving_model()
    model.save(os.path.join(workdir, f"model-{BACKEND}.keras"))
    np.save(os.path.join(workdir, f"predict-{BACKEND}.npy"), predict(model))


def load(workdir, path):
    model = keras.saving.load_model(path)
    name = os.path.basename(path).removesuffix(".keras")
    out = os.path.join(workdir, f"loaded-{name}-by-{BACKEND}.npy")
    np.save(out, predict(model))
    return model


def main(workdir, *models):
    keras.utils.set_random_seed(0)
    train(workdir)
    save(workdir)
    for path in models:
        load(workdir, path)


if __name__ == "__main__":
    main(*sys.argv[1:])
