"""Sharded versus single-device training, run by `test_distribution.py`.

Needs the JAX backend and eight devices, which must be set up before JAX
starts, so the test runs it in a subprocess with `KERAS_BACKEND=jax` and
`XLA_FLAGS=--xla_force_host_platform_device_count=8`. Prints one JSON object
on its last line of output; the test makes the assertions.
"""

import json

import jax
import keras
import numpy as np
import sparse_sharding
import table_modes_sharding

from keras_embedlab import LookupEmbedding, OneHotDense
from keras_embedlab.distribution import layout_map

VOCABULARY, DIM, LENGTH, SAMPLES, BATCH = 64, 8, 6, 64, 16


def make_model():
    ids = keras.Input((LENGTH,), dtype="int32", name="ids")
    positions = keras.Input((LENGTH,), dtype="int32", name="positions")
    lookup = LookupEmbedding(VOCABULARY, DIM)(ids)
    one_hot = OneHotDense(VOCABULARY, DIM, use_bias=True)(ids)
    # A Keras Embedding named like a table: it must stay replicated.
    position = keras.layers.Embedding(LENGTH, 2 * DIM,
                                      name="position_embedding")(positions)
    x = keras.layers.Concatenate()([lookup, one_hot])
    x = keras.layers.Add()([x, position])
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model([ids, positions], keras.layers.Dense(1)(x))


def make_data():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCABULARY, (SAMPLES, LENGTH)).astype("int32")
    positions = np.tile(np.arange(LENGTH, dtype="int32"), (SAMPLES, 1))
    y = rng.normal(size=(SAMPLES, 1)).astype("float32")
    return [ids, positions], y


def train(model, x, y):
    model.compile(keras.optimizers.Adam(0.01), "mse")
    history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False,
                        verbose=0)
    return history.history["loss"]


def predict(model, x):
    return model.predict(x, batch_size=BATCH, verbose=0)


def shards(variables):
    """Per variable: its sharding and the shapes of its per-device shards.

    `blocks` counts the different parts of the array the devices hold: 4 for
    a table split in 4 (each part held by the 2 devices of a model column), 1
    for a replicated variable.
    """
    info = {}
    for v in variables:
        array = v.value
        info[v.path] = {
            "spec": str(getattr(array.sharding, "spec", None)),
            "devices": len(array.sharding.device_set),
            "shapes": sorted({tuple(s.data.shape)
                              for s in array.addressable_shards}),
            "blocks": len({str(s.index) for s in array.addressable_shards}),
            "shape": tuple(array.shape),
        }
    return info


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def main():
    keras.utils.set_random_seed(0)
    model = make_model()
    initial = model.get_weights()
    x, y = make_data()
    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"))
    result = {"devices": jax.device_count(), "backend": keras.backend.backend()}

    distribution = keras.distribution.ModelParallel(
        layout_map=layout_map(model, mesh), batch_dim_name="batch"
    )
    with distribution.scope():
        sharded = keras.models.clone_model(model)
        sharded.set_weights(initial)
        sharded_before = predict(sharded, x)
        sharded_loss = train(sharded, x, y)
        sharded_after = predict(sharded, x)
        # An invalid id with invalid_ids="error": every device raises, and
        # the process goes on (predict on a fresh clone afterwards). A clone
        # takes the error: after any exception in `predict`, Keras's JAX
        # trainer leaves that model's variables detached.
        bad = [x[0].copy(), x[1]]
        bad[0][3, 2] = VOCABULARY + 5
        probe = keras.models.clone_model(model)
        probe.set_weights(initial)
        try:
            predict(probe, bad)
            result["invalid_id_error"] = None
        except Exception as error:  # JaxRuntimeError or ValueError
            result["invalid_id_error"] = str(error)[-1200:]
        after_error = keras.models.clone_model(model)
        after_error.set_weights(initial)
        result["predict_after_error"] = max_diff(
            predict(after_error, x), sharded_before
        )
    result["shards"] = shards(sharded.variables)
    result["optimizer_shards"] = shards(sharded.optimizer.variables)

    # Keys by naming convention: a model built fresh under the distribution.
    with keras.distribution.ModelParallel(layout_map=layout_map(mesh)).scope():
        fresh = make_model()
    result["mesh_form_shards"] = shards(fresh.variables)

    # Columns: same outputs as the untrained model.
    columns = keras.distribution.ModelParallel(
        layout_map=layout_map(model, mesh, shard="columns")
    )
    with columns.scope():
        by_columns = keras.models.clone_model(model)
        by_columns.set_weights(initial)
        columns_before = predict(by_columns, x)
    result["column_shards"] = shards(by_columns.variables)

    # The same model, weights, data and optimizer on one device.
    result["distribution_after_scopes"] = repr(
        keras.distribution.distribution()
    )
    before = predict(model, x)
    loss = train(model, x, y)
    after = predict(model, x)
    result["single_device_shards"] = shards(model.variables)
    result["diff"] = {
        "outputs_before": max_diff(sharded_before, before),
        "columns_outputs_before": max_diff(columns_before, before),
        "loss": max_diff(sharded_loss, loss),
        "outputs_after": max_diff(sharded_after, after),
        "weights_moved": max_diff(model.get_weights()[0], initial[0]),
    }
    result["weights_diff"] = {
        v.path: max_diff(v.numpy(), w.numpy())
        for v, w in zip(sharded.variables, model.variables)
    }
    result["row_sparse"] = sparse_sharding.run(mesh, shards, max_diff)
    result["table_modes"] = table_modes_sharding.run(mesh, shards, max_diff)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
