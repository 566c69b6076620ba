"""The package imports lazily yet registers its classes with Keras."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_embedlab as kel


def run_python(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_vectors_import_without_keras():
    run_python("import sys, keras_embedlab.vectors\n"
               "assert 'keras' not in sys.modules, sorted(sys.modules)\n"
               "assert 'tensorflow' not in sys.modules\n")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    inputs = keras.Input((3,), dtype="int32")
    outputs = kel.LookupEmbedding(5, 2, name="emb")(inputs)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path_factory.mktemp("package") / "model.keras")
    model.save(path)
    ids = np.array([[1, 2, 4]], "int32")
    return path, ids, keras.ops.convert_to_numpy(model(ids))


@pytest.mark.parametrize("first", ["keras_embedlab", "keras"])
def test_load_model_whichever_import_comes_first(saved_model, first):
    path, ids, expected = saved_model
    second = "keras" if first == "keras_embedlab" else "keras_embedlab"
    out = run_python(
        f"import {first}\nimport {second}\nimport json, keras, numpy as np\n"
        f"model = keras.saving.load_model({path!r})\n"
        f"print(type(model.layers[1]).__name__)\n"
        f"out = keras.ops.convert_to_numpy(model(np.array({ids.tolist()})))\n"
        "print(json.dumps(out.tolist()))\n",
        KERAS_BACKEND=keras.backend.backend(),
    )
    name, values = out.strip().splitlines()[-2:]
    assert name == "LookupEmbedding"
    np.testing.assert_array_equal(np.array(json.loads(values)), expected)


def test_public_names():
    assert kel.LookupEmbedding.__module__ == "keras_embedlab.lookup_embedding"
    assert kel.load_vectors is kel.vectors.load_vectors
    assert set(kel.__all__) <= set(dir(kel))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        kel.Nope
