"""Quantized and LoRA tables under `ModelParallel`, run by
`sharding_script.py`.

One model per storage mode (int8, int4 with one scale per row, int4 with
blocks, LoRA), with a `LookupEmbedding`, its `reverse=True` projection and
a `OneHotDense`: the layout map from `layout_map(model, mesh)` (by rows and
by columns) and from `layout_map(mesh)` (naming convention), the shards of
each stored variable, and the outputs next to the same model on one device.
"""

import keras
import numpy as np

import keras_embedlab as kel
from keras_embedlab.distribution import layout_map

VOCABULARY, DIM, LENGTH, SAMPLES, BATCH = 64, 8, 6, 32, 16
# int4 with one scale per row shards as int8 does (rows) and as int4
# blocks do (packed columns): left out to keep the run short.
MODES = ("int8", "int4-blocks", "lora")


def _apply(layer, mode):
    if mode == "lora":
        layer.enable_lora(2)
        # Non-zero factors, so that the LoRA delta shows in the outputs.
        layer.variables[-1].assign(np.full(layer.variables[-1].shape, 0.1,
                                           "float32"))
    elif mode == "int4-blocks":
        layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
            block_size=4))
    elif mode == "int4":
        layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
            block_size=-1))
    else:
        layer.quantize(mode)


def make_model(mode):
    keras.utils.set_random_seed(0)
    ids = keras.Input((LENGTH,), dtype="int32", name="ids")
    lookup = kel.LookupEmbedding(VOCABULARY, DIM)
    one_hot = kel.OneHotDense(VOCABULARY, DIM)
    x = keras.layers.Add()([lookup(ids), one_hot(ids)])
    logits = lookup(x, reverse=True)
    model = keras.Model(ids, logits)
    for layer in (lookup, one_hot):
        _apply(layer, mode)
    return model


def run(mesh, shards, max_diff):
    """The results, as a JSON-ready dict (`shards`, `max_diff`: the
    helpers of `sharding_script.py`)."""
    x = np.random.default_rng(2).integers(0, VOCABULARY, (SAMPLES, LENGTH))
    x = x.astype("int32")
    results = {}
    for mode in MODES:
        model = make_model(mode)
        expected = model.predict(x, batch_size=BATCH, verbose=0)
        weights = model.get_weights()
        result = {"paths": sorted(v.path for v in model.variables)}
        for shard in ("rows", "columns"):
            layouts = layout_map(model, mesh, shard=shard)
            result[f"{shard}_keys"] = sorted(layouts)
            with keras.distribution.ModelParallel(
                    layout_map=layouts, batch_dim_name="batch").scope():
                sharded = keras.models.clone_model(model)
                sharded.set_weights(weights)
                outputs = sharded.predict(x, batch_size=BATCH, verbose=0)
            result[shard] = {"shards": shards(sharded.variables),
                             "diff": max_diff(outputs, expected)}
        # Naming convention: the same model built under the distribution.
        with keras.distribution.ModelParallel(
                layout_map=layout_map(mesh), batch_dim_name="batch").scope():
            fresh = make_model(mode)
        result["mesh_form"] = shards(fresh.variables)
        results[mode] = result
    return results
