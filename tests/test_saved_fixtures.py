"""`.keras` files written by main before the redesign still load.

The fixtures were written by `tests/fixtures/make_saved_by_main.py` (see
its docstring for the commit): registered class names, `get_config` keys
and saved variable names must stay as they were.
"""

import pathlib

import keras
import numpy as np
import pytest

import keras_embedlab as kel

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / \
    "saved_by_main"
NAMES = ["lookup_options", "one_hot_bias", "int8", "int4", "lora",
         "tied_reverse", "pretrained", "row_sparse_lazy_adam"]


def test_every_fixture_is_listed():
    assert sorted(p.stem for p in FIXTURES.glob("*.keras")) == sorted(NAMES)


# Saved on JAX, the compile config holds `jit_compile=True`; loaded on
# TensorFlow, Keras warns that the model does not support it and goes on.
JIT_WARNING = "ignore:Model doesn't support `jit_compile=True`"


@pytest.mark.filterwarnings(JIT_WARNING)
@pytest.mark.parametrize("name", NAMES)
def test_saved_by_main_loads_and_predicts_the_same(name):
    model = keras.saving.load_model(FIXTURES / f"{name}.keras")
    data = np.load(FIXTURES / f"{name}.npz")
    inputs = [data[f"x{i}"] for i in range(len(data.files) - 1)]
    y = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    np.testing.assert_allclose(np.asarray(y), data["y"], atol=1e-6)


@pytest.mark.filterwarnings(JIT_WARNING)
def test_saved_row_sparse_model_keeps_its_optimizer_state():
    model = keras.saving.load_model(
        FIXTURES / "row_sparse_lazy_adam.keras")
    assert isinstance(model, kel.RowSparseModel)
    assert isinstance(model.optimizer, kel.LazyAdam)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1


def test_saved_pretrained_keeps_its_vocabulary():
    model = keras.saving.load_model(FIXTURES / "pretrained.keras")
    layer = next(layer for layer in model.layers
                 if isinstance(layer, kel.PretrainedEmbedding))
    assert layer.vocabulary == ["c", "a", "zz", "g"]


@pytest.mark.parametrize("name,mode", [("int8", "int8"), ("int4", "int4")])
def test_saved_quantized_tables_stay_quantized(name, mode):
    model = keras.saving.load_model(FIXTURES / f"{name}.keras")
    layer = next(layer for layer in model.layers
                 if isinstance(layer, kel.LookupEmbedding))
    assert layer.quantization_mode == mode
