"""`.keras` files, and the same model across backends."""

import json
import os
import subprocess
import sys

import cross_backend
import keras
import numpy as np
import pytest
from helpers import BACKEND, WORKED_WEIGHTS, assert_equal

import keras_embedlab as kel
from keras_embedlab.layers.pretrained.layer import Coverage

TESTED_BACKENDS = ["tensorflow", "jax", "torch"]
# Each backend's session pairs with the next one in this ring (TensorFlow
# with JAX, JAX with PyTorch, PyTorch with TensorFlow): one subprocess per
# session, and the three sessions of `make test` still cover every ordered
# pair of saving and loading backends and every pair of trainings.
OTHER_BACKENDS = [TESTED_BACKENDS[(TESTED_BACKENDS.index(BACKEND) + 1)
                                  % len(TESTED_BACKENDS)]]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param(
            lambda: kel.LookupEmbedding(3, 4, weights=WORKED_WEIGHTS,
                                        mask_zero=True, trainable=False),
            id="LookupEmbedding",
        ),
        pytest.param(
            lambda: kel.OneHotDense(3, 4, use_bias=True, activation="relu",
                                    weights=[WORKED_WEIGHTS, np.ones(4)],
                                    invalid_ids="zeros"),
            id="OneHotDense",
        ),
        pytest.param(
            lambda: kel.PretrainedEmbedding(
                3, 4, vocabulary=["", "ab", "cd"], weights=WORKED_WEIGHTS,
                coverage=Coverage(1, 2, 0, ["cd"]), mask_zero=True),
            id="PretrainedEmbedding",
        ),
    ],
)
def test_keras_file_round_trip(tmp_path, layer):
    layer = layer()
    model = keras.Sequential([keras.Input((5,), dtype="int32"), layer])
    ids = np.array([[0, 2, 1, 2, 0]], "int32")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_layer = loaded.layers[0]
    assert type(loaded_layer) is type(layer)
    assert loaded_layer.get_config() == layer.get_config()
    assert_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    if layer.mask_zero:
        assert_equal(loaded_layer.compute_mask(ids), ids != 0)
    else:
        assert loaded_layer.compute_mask(ids) is None
    assert loaded_layer.count_params() == layer.count_params()
    assert len(loaded.trainable_weights) == len(model.trainable_weights)


PRETRAINED_WORDS = ["king", "queen", "paris", "london"]
PRETRAINED_MATRIX = np.array(
    [[1.0, 0.0, 0.1], [0.9, 0.3, 0.0], [0.0, 1.0, 0.2], [0.1, 0.9, 0.3]],
    dtype="float32",
)
PRETRAINED_VOCABULARY = ["", "[UNK]", "king", "Queen", "paris", "london",
                         "nowhere", "café"]


def pretrained_model():
    layer = kel.PretrainedEmbedding.from_vectors(
        kel.Vectors(PRETRAINED_WORDS, PRETRAINED_MATRIX),
        vocabulary=PRETRAINED_VOCABULARY, oov="zeros", verbose=0,
    )
    inputs = keras.Input((3,), dtype="int32")
    return keras.Model(inputs, layer(inputs)), layer


EXPECTED_COVERAGE = Coverage(4, 6, 1, ["nowhere", "café"])


def test_pretrained_config_keeps_vocabulary_and_coverage():
    _, layer = pretrained_model()
    config = layer.get_config()
    assert config["vocabulary"] == PRETRAINED_VOCABULARY
    assert config["coverage"] == {"found": 4, "total": 6, "lowercase": 1,
                                  "missing": ["nowhere", "café"]}
    # Plain JSON data: what a .keras config.json holds.
    config = json.loads(json.dumps(config))
    copy = kel.PretrainedEmbedding.from_config(config)
    assert copy.vocabulary == PRETRAINED_VOCABULARY
    assert copy.coverage == EXPECTED_COVERAGE
    assert copy.get_config() == layer.get_config()
    copy.build()
    copy.set_weights(layer.get_weights())
    assert copy.most_similar("king", k=2) == layer.most_similar("king", k=2)
    assert [w for w, _ in copy.most_similar("king", k=2)] == ["Queen",
                                                               "london"]


def test_clone_model_keeps_vocabulary_and_coverage():
    # The README's sharding recipe: clone_model, then set_weights.
    model, layer = pretrained_model()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    cloned = clone.layers[1]
    assert isinstance(cloned, kel.PretrainedEmbedding)
    assert cloned.vocabulary == PRETRAINED_VOCABULARY
    assert cloned.coverage == EXPECTED_COVERAGE
    assert cloned.most_similar("king", k=3) == layer.most_similar("king", k=3)
    sequential = keras.Sequential([keras.Input((3,), dtype="int32"),
                                   kel.PretrainedEmbedding.from_config(
                                       layer.get_config())])
    assert keras.models.clone_model(sequential).layers[0].vocabulary == \
        PRETRAINED_VOCABULARY


def test_layer_serialize_deserialize_keeps_vocabulary_and_coverage():
    _, layer = pretrained_model()
    serialized = json.loads(json.dumps(keras.layers.serialize(layer)))
    restored = keras.layers.deserialize(serialized)
    assert type(restored) is kel.PretrainedEmbedding
    assert restored.vocabulary == PRETRAINED_VOCABULARY
    assert restored.coverage == EXPECTED_COVERAGE
    assert restored.trainable is False and restored.mask_zero is True


@pytest.mark.parametrize(
    "change,message",
    [
        ({"coverage": {"found": 4, "total": 6, "lowercase": 1}},
         "must have exactly the fields found, total, lowercase, missing"),
        ({"coverage": [4, 6, 1, []]}, "must be None, a Coverage"),
        ({"coverage": {**EXPECTED_COVERAGE._asdict(), "found": -1}},
         "`found` must be a non-negative integer. Received: found=-1"),
        ({"coverage": {**EXPECTED_COVERAGE._asdict(),
                       "missing": ["nowhere", "berlin"]}},
         "Received: 'berlin'"),
        ({"coverage": {**EXPECTED_COVERAGE._asdict(), "total": 7,
                       "missing": ["nowhere", "café", "king"]}},
         "total=7, but the vocabulary has 6 tokens"),
        ({"coverage": {**EXPECTED_COVERAGE._asdict(), "found": 5}},
         "found + len(missing) == total"),
        ({"vocabulary": None}, "describes how a vectors file covered a "
         "vocabulary, but the layer has none"),
        ({"vocabulary": PRETRAINED_VOCABULARY[:-1]},
         "`vocabulary` has 7 tokens but input_dim=8"),
        ({"vocabulary": ["", "[UNK]"] + ["king"] * 6}, "token 'king' twice"),
    ],
)
def test_pretrained_from_config_validates_vocabulary_and_coverage(change,
                                                                  message):
    _, layer = pretrained_model()
    config = {**layer.get_config(), **change}
    with pytest.raises(ValueError) as info:
        kel.PretrainedEmbedding.from_config(config)
    assert message in str(info.value)


@pytest.fixture(scope="module")
def cross_backend_runs(tmp_path_factory):
    """This backend's results, and the next backend's from a subprocess."""
    workdir = str(tmp_path_factory.mktemp("cross_backend"))
    cross_backend.main(workdir)
    ours = os.path.join(workdir, f"model-{BACKEND}.keras")
    for other in OTHER_BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": other,
               "PYTHONPATH": REPO_ROOT}
        script = os.path.join(REPO_ROOT, "tests", "cross_backend.py")
        result = subprocess.run(
            [sys.executable, script, workdir, ours],
            env=env, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.parametrize("other", OTHER_BACKENDS)
def test_training_gives_the_same_weights_on_every_backend(
    cross_backend_runs, other
):
    ours = np.load(os.path.join(cross_backend_runs, f"train-{BACKEND}.npz"))
    theirs = np.load(os.path.join(cross_backend_runs, f"train-{other}.npz"))
    assert sorted(ours.files) == sorted(theirs.files)
    initial = cross_backend.initial_weights(
        cross_backend.training_model(kel.LookupEmbedding(20, 4))
    )
    for key in ours.files:
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5,
                                   err_msg=key)
    for i in range(len(initial)):
        # Training moved the weights, and both layers trained identically.
        assert not np.allclose(ours[f"lookup/{i}"], initial[i], atol=1e-3)
        np.testing.assert_allclose(ours[f"lookup/{i}"], ours[f"one_hot/{i}"],
                                   atol=1e-5)


@pytest.mark.parametrize("other", OTHER_BACKENDS)
def test_model_saved_here_loads_there(cross_backend_runs, other):
    expected = np.load(os.path.join(cross_backend_runs,
                                    f"predict-{BACKEND}.npy"))
    loaded = np.load(os.path.join(
        cross_backend_runs, f"loaded-model-{BACKEND}-by-{other}.npy"
    ))
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(loaded, expected, atol=1e-6)


@pytest.mark.parametrize("other", OTHER_BACKENDS)
def test_model_saved_there_loads_here(cross_backend_runs, other):
    path = os.path.join(cross_backend_runs, f"model-{other}.keras")
    model = cross_backend.load(cross_backend_runs, path)
    assert isinstance(model.get_layer("lookup"), kel.LookupEmbedding)
    assert isinstance(model.get_layer("one_hot"), kel.OneHotDense)
    expected = np.load(os.path.join(cross_backend_runs,
                                    f"predict-{other}.npy"))
    np.testing.assert_allclose(cross_backend.predict(model), expected,
                               atol=1e-6)
