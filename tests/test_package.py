"""The package imports lazily yet registers its classes with Keras."""

import json
import os
import pathlib
import re
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


REGISTERED = ("LookupEmbedding", "OneHotDense", "PretrainedEmbedding",
              "HashedEmbedding", "QREmbedding",
              "LazyAdam", "SparseAdagrad", "SparseSGD", "RowSparseModel")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A `.keras` file that holds one of each registered kind of class."""
    inputs = keras.Input((3,), dtype="int32")
    looked_up = kel.LookupEmbedding(5, 2, sparse=True, name="emb")(inputs)
    words = kel.PretrainedEmbedding(3, 2, vocabulary=["", "[UNK]", "a"],
                                    name="pre")(keras.ops.minimum(inputs, 2))
    one_hot = kel.OneHotDense(5, 2, name="onehot")(inputs)
    model = kel.RowSparseModel(inputs, looked_up + words + one_hot)
    model.compile(optimizer=kel.LazyAdam(0.1), loss="mse")
    path = str(tmp_path_factory.mktemp("package") / "model.keras")
    model.save(path)
    ids = np.array([[1, 2, 4]], "int32")
    return path, ids, keras.ops.convert_to_numpy(model(ids))


@pytest.mark.parametrize("first", [
    pytest.param("import keras_embedlab", id="package"),
    pytest.param("import keras\nimport keras_embedlab", id="keras-first"),
    pytest.param("import keras_embedlab.distribution", id="distribution"),
    pytest.param("from keras_embedlab.sparse_updates import LazyAdam",
                 id="sparse_updates"),
    pytest.param("import keras_embedlab.testing", id="testing"),
])
def test_every_import_order_registers_everything(saved_model, first):
    """Whatever of ours is imported, before or after `keras`, registers all.

    Each order runs in a fresh process: registration happens once per
    process. The script touches no attribute of `keras_embedlab` after its
    first line (that would import the rest lazily and hide a gap).
    """
    path, ids, expected = saved_model
    out = run_python(
        f"{first}\nimport json, keras, numpy as np\n"
        f"names = {list(REGISTERED)!r}\n"
        "found = [keras.saving.get_registered_object('keras_embedlab>' + n)"
        " for n in names]\n"
        "print(json.dumps([getattr(c, '__name__', None) for c in found]))\n"
        f"model = keras.saving.load_model({path!r})\n"
        "print(json.dumps([type(model).__name__,"
        " type(model.optimizer).__name__,"
        " sorted(type(x).__name__ for x in model.layers)]))\n"
        f"out = keras.ops.convert_to_numpy(model(np.array({ids.tolist()})))\n"
        "print(json.dumps(out.tolist()))\n",
        KERAS_BACKEND=keras.backend.backend(),
    )
    registered, classes, values = (
        json.loads(line) for line in out.strip().splitlines()[-3:])
    assert registered == list(REGISTERED)
    model_class, optimizer_class, layer_classes = classes
    assert (model_class, optimizer_class) == ("RowSparseModel", "LazyAdam")
    for name in ("LookupEmbedding", "OneHotDense", "PretrainedEmbedding"):
        assert name in layer_classes
    np.testing.assert_array_equal(np.array(values), expected)


def test_public_names():
    assert kel.LookupEmbedding.__module__ == "keras_embedlab.layers.lookup"
    assert kel.load_vectors is kel.vectors.load_vectors
    assert set(kel.__all__) <= set(dir(kel))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        kel.Nope


def test_floor_pins_are_the_stated_floors():
    # `make test-floor` (run by .ci/run) proves the floors pyproject.toml
    # states only if it installs exactly those versions.
    root = pathlib.Path(__file__).resolve().parent.parent
    pyproject = (root / "pyproject.toml").read_text()
    floors = dict(re.findall(r'"([a-z]+)(?:\[cpu\])?>=([0-9.]+)"', pyproject))
    makefile = (root / "Makefile").read_text()
    pins_line = re.search(r"^FLOOR_PINS \?= (.*)$", makefile, re.M).group(1)
    pins = dict(re.findall(r"([a-z]+)(?:\[cpu\])?==([0-9.]+)", pins_line))
    assert set(pins) == {"keras", "jax", "numpy"}, pins
    for name, version in pins.items():
        stated = floors[name].split(".")
        assert version.split(".")[:len(stated)] == stated, (name, version,
                                                            floors[name])


def test_unsupported_backend_does_not_break_the_users_import():
    # Registration runs inside the user's `import keras`: with a backend we
    # do not support, that import and the NumPy-only vectors still work,
    # with a warning; using a layer raises the clear ImportError.
    out = run_python(
        "import warnings\n"
        "import keras_embedlab.vectors as v\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    import keras\n"
        "print(len(seen), 'not registered' in str(seen[0].message))\n"
        "import keras_embedlab as kel\n"
        "try:\n"
        "    kel.LookupEmbedding\n"
        "except ImportError as error:\n"
        "    print('refused:', 'tensorflow, jax and torch' in str(error))\n",
        KERAS_BACKEND="numpy")
    assert out.split("\n")[:2] == ["1 True", "refused: True"], out
