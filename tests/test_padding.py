"""`padding_idx`: a zero output row that never trains, on both layers."""

import keras
import numpy as np
import pytest
from helpers import (
    ID_CASES,
    LAYERS,
    assert_close,
    assert_equal,
    random_ids,
    random_table,
    to_numpy,
)

import keras_embedlab as kel
from keras_embedlab.testing import layer_gradients


@pytest.mark.parametrize("shape,dtype", ID_CASES)
def test_padding_row_is_zero_and_gets_no_gradient(shape, dtype):
    table = random_table(9, 4)
    ids = random_ids(shape, dtype, 9)
    ids.reshape(-1)[:3] = 5
    lookup = kel.LookupEmbedding(9, 4, weights=table, padding_idx=5)
    dense = kel.OneHotDense(9, 4, weights=table, padding_idx=5)
    expected = table[ids] * (ids != 5)[..., None]
    assert_equal(lookup(ids), expected)
    assert_equal(dense(ids), expected)
    cotangent = np.ones(shape + (4,), "float32")
    (g_lookup,) = layer_gradients(lookup, ids, cotangent)
    (g_dense,) = layer_gradients(dense, ids, cotangent)
    assert not g_lookup[5].any() and not g_dense[5].any()
    np.testing.assert_allclose(g_lookup, g_dense, atol=1e-5)
    reference = np.zeros_like(table)
    np.add.at(reference, ids[ids != 5], 1.0)
    np.testing.assert_allclose(g_lookup, reference, atol=1e-5)


def test_one_hot_dense_padding_gives_activation_of_bias():
    bias = np.array([0.5, -0.5], "float32")
    layer = kel.OneHotDense(3, 2, use_bias=True, activation="relu",
                            weights=[np.ones((3, 2)), bias], padding_idx=0)
    assert_equal(layer(np.array([0, 1])), [[0.5, 0.0], [1.5, 0.5]])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("padding_idx,mask_zero", [
    pytest.param(4, False, id="padding4"),
    # With the mask, pooling also leaves id 0 out; padding_idx=4 is not
    # masked and must still get no gradient.
    pytest.param(4, True, id="padding4-mask_zero"),
])
def test_padding_row_never_trains(optimizer, padding_idx, mask_zero):
    table = random_table(10, 3)
    ids = np.random.default_rng(0).integers(0, 10, (32, 5)).astype("int32")
    ids[:, -1] = padding_idx  # padding in every example
    y = np.random.default_rng(1).normal(size=(32, 1)).astype("float32")
    weights = []
    for layer_cls in (kel.LookupEmbedding, kel.OneHotDense):
        inputs = keras.Input((5,), dtype="int32")
        layer = layer_cls(10, 3, weights=table, padding_idx=padding_idx,
                          mask_zero=mask_zero)
        # The mask (id 0) never hides the padding id 4 from the pooling.
        x = keras.layers.GlobalAveragePooling1D()(layer(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(x))
        model.layers[-1].set_weights([np.ones((3, 1)), np.zeros(1)])
        model.compile(optimizer, "mse")
        model.fit(ids, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        trained = to_numpy(layer.weights[0])
        np.testing.assert_array_equal(trained[padding_idx],
                                      table[padding_idx])
        others = np.arange(10) != padding_idx
        assert not np.allclose(trained[others], table[others], atol=1e-4)
        weights.append(trained)
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-5)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("value", [-1, 3, 1.0, True, "0"])
def test_bad_padding_idx(layer_cls, value):
    with pytest.raises(ValueError, match=r"`padding_idx` must be None or an "
                       r"integer id in \[0, input_dim\) = \[0, 3\)"):
        layer_cls(3, 2, padding_idx=value)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_padding_idx_config_save_and_conversion(layer_cls, tmp_path):
    layer = layer_cls(4, 2, padding_idx=2, weights=np.ones((4, 2)))
    assert layer.get_config()["padding_idx"] == 2
    assert layer_cls.from_config(layer.get_config()).padding_idx == 2
    model = keras.Sequential([keras.Input((3,), dtype="int32"), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    ids = np.array([[2, 1, 2]], "int32")
    assert_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    assert_close(loaded.predict(ids, verbose=0)[0, 0], [0.0, 0.0])
    twin = (kel.OneHotDense.from_embedding(layer)
            if layer_cls is kel.LookupEmbedding
            else kel.LookupEmbedding.from_one_hot_dense(layer))
    assert twin.padding_idx == 2
    assert_equal(twin(ids), layer(ids))
