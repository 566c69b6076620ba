"""Row-sparse training under `ModelParallel`, run by `sharding_script.py`.

The same `RowSparseModel` (a row-sharded `sparse=True` table, invalid ids
mapped to zeros) trained with `LazyAdam` and `SparseSGD(momentum)` on the
8-device mesh and on one device; and a batch with an invalid id in
`"error"` mode, which must raise on every device rather than hang.
"""

import keras
import numpy as np

import keras_embedlab as kel
from keras_embedlab.distribution import layout_map

VOCABULARY, DIM, LENGTH, SAMPLES, BATCH = 64, 8, 6, 64, 16
USED = 48  # ids below this; rows 48..63 are never looked up


def make_model(invalid_ids="zeros"):
    ids = keras.Input((LENGTH,), dtype="int32", name="ids")
    rows = kel.LookupEmbedding(VOCABULARY, DIM, sparse=True,
                               invalid_ids=invalid_ids,
                               name="sparse_table")(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(rows)
    return kel.RowSparseModel(ids, keras.layers.Dense(1)(pooled))


def make_data():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, USED, (SAMPLES, LENGTH)).astype("int32")
    ids[::5, 0] = -2  # invalid: zero rows, no update, never wrapping
    ids[1::7, 1] = VOCABULARY + 3
    return ids, rng.normal(size=(SAMPLES, 1)).astype("float32")


OPTIMIZERS = {
    "LazyAdam": lambda: kel.LazyAdam(0.01),
    "SparseSGD": lambda: kel.SparseSGD(0.1, momentum=0.9),
}


def train(model, name, x, y):
    model.compile(OPTIMIZERS[name](), "mse")
    history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False,
                        verbose=0)
    return history.history["loss"]


def run(mesh, shards, max_diff):
    """The results, as a JSON-ready dict (`shards`, `max_diff`: the
    script's helpers)."""
    keras.utils.set_random_seed(1)
    template = make_model()
    initial = template.get_weights()
    x, y = make_data()
    result = {}
    for name in OPTIMIZERS:
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map(template, mesh), batch_dim_name="batch"
        )
        with distribution.scope():
            sharded = keras.models.clone_model(template)
            sharded.set_weights(initial)
            sharded_loss = train(sharded, name, x, y)
        single = keras.models.clone_model(template)
        single.set_weights(initial)
        loss = train(single, name, x, y)
        table = sharded.get_layer("sparse_table").embeddings
        result[name] = {
            "table": shards([table])[table.path],
            "slots": shards([v for v in sharded.optimizer.variables
                             if v.shape == table.shape]),
            "loss_diff": max_diff(sharded_loss, loss),
            "weights_diff": max(max_diff(a, b) for a, b in zip(
                sharded.get_weights(), single.get_weights())),
            "weights_moved": max_diff(single.get_weights()[0], initial[0]),
            "unused_rows_diff": max_diff(
                sharded.get_weights()[0][USED:], initial[0][USED:]),
        }

    # "error" mode: every device raises on the bad batch, the process goes
    # on (the next model trains).
    strict = make_model("error")
    distribution = keras.distribution.ModelParallel(
        layout_map=layout_map(strict, mesh), batch_dim_name="batch"
    )
    bad = np.abs(x[:BATCH]) % USED
    bad[3, 2] = VOCABULARY + 5
    with distribution.scope():
        probe = keras.models.clone_model(strict)
        probe.compile(kel.LazyAdam(0.01), "mse")
        try:
            history = probe.fit(bad, y[:BATCH], batch_size=BATCH, verbose=0)
            # Across devices the step is dispatched asynchronously: its
            # error surfaces when a result is read (as with a dense table).
            float(history.history["loss"][0])
            result["error_mode"] = None
        except Exception as error:  # JaxRuntimeError or ValueError
            result["error_mode"] = str(error)[-1200:]
        after = keras.models.clone_model(template)
        after.set_weights(initial)
        result["loss_after_error"] = train(after, "SparseSGD", x, y)[-1]
    return result
