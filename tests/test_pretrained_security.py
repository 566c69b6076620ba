"""Loading a `.keras` file never reads outside the archive.

A `.keras` file is a zip whose `config.json` the loader turns into
constructor arguments. `PretrainedEmbedding` once accepted a vocabulary path
there, so a crafted file could make `keras.saving.load_model` (even with
`safe_mode=True`) open any local path: a secret file, a FIFO (blocks
forever) or `/dev/zero` (grows without bound). These tests build such files
and check that they are refused without the path ever being opened.
"""

import builtins
import io
import json
import os
import threading
import zipfile

import keras
import numpy as np
import pytest

import keras_embedlab as kel
from keras_embedlab.layers.pretrained.layer import PretrainedEmbedding

TOKENS = ["", "[UNK]", "king", "queen"]
WORDS = ["king", "queen"]
MATRIX = np.array([[1.0, 0.0], [0.8, 0.6]], dtype="float32")
MARKER = "do-not-leak-7f3a"

# When a layer of a Functional model fails to load, Keras retries it through
# the model's `_operations_by_depth` container and warns about that before
# raising the layer's error, which is what these tests check.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Skipping nested container:UserWarning"
)


def make_layer(**kwargs):
    return PretrainedEmbedding.from_vectors(
        kel.Vectors(WORDS, MATRIX), vocabulary=TOKENS, verbose=0, **kwargs
    )


def save_model(tmp_path):
    layer = make_layer()
    inputs = keras.Input((2,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "good.keras")
    model.save(path)
    return path


def layer_configs(node):
    """Every `PretrainedEmbedding` config dict inside a model config."""
    if isinstance(node, dict):
        if node.get("class_name") == "PretrainedEmbedding":
            yield node["config"]
        for value in node.values():
            yield from layer_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from layer_configs(value)


def rewrite_archive(source, target, edit_layer_config=None, drop=(),
                    replace=None):
    """A copy of the `.keras` zip `source`, with its layer configs edited,
    the members named in `drop` left out and those in `replace` given new
    bytes."""
    replace = replace or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = replace.get(item.filename, zin.read(item.filename))
            if item.filename == "config.json" and edit_layer_config:
                config = json.loads(data)
                layers = list(layer_configs(config))
                assert layers, "the model has a PretrainedEmbedding"
                for layer_config in layers:
                    edit_layer_config(layer_config)
                data = json.dumps(config).encode("utf-8")
            zout.writestr(item, data)
    return target


def craft(tmp_path, vocabulary):
    def edit(config):
        config["vocabulary"] = vocabulary

    return rewrite_archive(save_model(tmp_path),
                           str(tmp_path / "crafted.keras"), edit)


@pytest.fixture
def opened_paths(monkeypatch):
    """The paths passed to `open` (builtins and io) during the test; a test
    clears it once its files are written."""
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            opened.append(os.path.realpath(os.fsdecode(file)))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    return opened


def secret_file(tmp_path):
    # As many distinct lines as the layer has rows: before the fix such a
    # file loaded silently (the asset then overwrote what was read).
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text("".join(f"{MARKER}-{i}\n" for i in range(len(TOKENS))),
                    encoding="utf-8")
    return str(path)


def test_load_model_refuses_a_vocabulary_path_without_opening_it(
    tmp_path, opened_paths
):
    secret = secret_file(tmp_path)
    crafted = craft(tmp_path, secret)
    opened_paths.clear()
    with pytest.raises(ValueError) as info:
        keras.saving.load_model(crafted)
    message = str(info.value)
    assert "`vocabulary`" in message
    assert repr(secret) in message  # names the value ...
    assert "never opens" in message and "from_file" in message  # ... the fix
    assert MARKER not in message  # nothing of the file's content
    assert os.path.realpath(secret) not in opened_paths
    # The same archive with the config left alone loads.
    assert keras.saving.load_model(save_model(tmp_path)).layers[1].vocabulary \
        == TOKENS


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_as_vocabulary_does_not_block_load_model(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    crafted = craft(tmp_path, fifo)
    outcome = {}

    def load():
        try:
            keras.saving.load_model(crafted)
            outcome["result"] = "loaded"
        except Exception as error:  # reported below
            outcome["result"] = error

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    blocked = thread.is_alive()
    if blocked:
        # Give the blocked reader a writer and EOF so the thread can end.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=30)
    assert not blocked, "load_model opened the FIFO and blocked on it"
    assert isinstance(outcome["result"], ValueError), outcome["result"]
    assert repr(fifo) in str(outcome["result"])


@pytest.mark.parametrize(
    "vocabulary",
    [
        pytest.param("secret", id="path"),
        pytest.param("/dev/zero", id="dev-zero"),
        pytest.param({"class_name": "StringLookup",
                      "config": {"vocabulary": "secret"}}, id="layer-dict"),
        pytest.param(["king", 3, "x", "y"], id="not-strings"),
    ],
)
def test_from_config_takes_only_a_list_of_strings(tmp_path, opened_paths,
                                                  vocabulary):
    secret = secret_file(tmp_path)
    if vocabulary == "secret":
        vocabulary = secret
    elif isinstance(vocabulary, dict):
        vocabulary["config"]["vocabulary"] = secret
    config = {**make_layer().get_config(), "vocabulary": vocabulary}
    opened_paths.clear()
    with pytest.raises(ValueError, match="`vocabulary`") as info:
        PretrainedEmbedding.from_config(config)
    assert MARKER not in str(info.value)
    serialized = keras.layers.serialize(make_layer())
    serialized["config"]["vocabulary"] = vocabulary
    with pytest.raises(ValueError, match="`vocabulary`"):
        keras.layers.deserialize(serialized)
    assert os.path.realpath(secret) not in opened_paths
    assert "/dev/zero" not in opened_paths


def test_the_constructor_takes_a_list_and_points_to_from_file(tmp_path):
    secret = secret_file(tmp_path)
    with pytest.raises(ValueError) as info:
        PretrainedEmbedding(4, 2, vocabulary=secret)
    message = str(info.value)
    assert f"vocabulary={secret!r}" in message and "(of type str)" in message
    assert "from_file" in message
    # Lists and tuples of strings are data.
    assert PretrainedEmbedding(2, 2, vocabulary=("a", "b")).vocabulary == \
        ["a", "b"]
    # Reading a file stays available where the user asks for it.
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("king\nqueen\n", encoding="utf-8")
    layer = PretrainedEmbedding.from_vectors(kel.Vectors(WORDS, MATRIX),
                                             vocabulary=str(vocab), verbose=0)
    assert layer.vocabulary == ["king", "queen"]


ASSET = "assets/layers/pretrained_embedding/vocabulary.json"
GOOD_COVERAGE = {"found": 2, "total": 2, "lowercase": 0, "missing": []}


def forget_vocabulary(config):
    """A config as keras_embedlab 0.1.0 wrote it: vocabulary only in the
    asset."""
    config.pop("vocabulary", None)
    config.pop("coverage", None)


def with_asset(tmp_path, content, legacy=False):
    data = (content if isinstance(content, bytes)
            else json.dumps(content).encode("utf-8"))
    return rewrite_archive(
        save_model(tmp_path), str(tmp_path / "edited.keras"),
        forget_vocabulary if legacy else None, replace={ASSET: data},
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["config", "legacy"])
@pytest.mark.parametrize(
    "content,message",
    [
        pytest.param({"vocabulary": [1, 2, 3, 4], "coverage": None},
                     "'vocabulary' must contain only strings. Received: 1 "
                     "(of type int) at row 0", id="integers"),
        pytest.param({"vocabulary": TOKENS}, "has no key 'coverage'",
                     id="missing-key"),
        pytest.param({"vocabulary": TOKENS, "coverage": GOOD_COVERAGE,
                      "extra": 1}, "unexpected key 'extra'", id="extra-key"),
        pytest.param(["", "[UNK]", "king", "queen"],
                     "must hold a JSON object", id="not-an-object"),
        pytest.param(b"{not json", "is not valid JSON", id="not-json"),
        pytest.param(b"\xff\xfe{}", "is not valid JSON", id="not-utf8"),
        pytest.param({"vocabulary": TOKENS[:3], "coverage": None},
                     "has 3 tokens but input_dim=4", id="wrong-length"),
        pytest.param({"vocabulary": ["", "[UNK]", "king", "king"],
                      "coverage": None}, "token 'king' twice",
                     id="duplicate"),
        pytest.param({"vocabulary": TOKENS,
                      "coverage": {**GOOD_COVERAGE, "found": "2"}},
                     "`found` must be a non-negative integer",
                     id="bad-coverage"),
    ],
)
def test_asset_contents_are_validated(tmp_path, content, message, legacy):
    with pytest.raises(ValueError) as info:
        keras.saving.load_model(with_asset(tmp_path, content, legacy))
    text = str(info.value)
    assert ASSET in text  # the file inside the archive
    assert message in text


def test_asset_must_agree_with_the_config(tmp_path):
    other = {"vocabulary": ["", "[UNK]", "king", "queens"],
             "coverage": GOOD_COVERAGE}
    with pytest.raises(ValueError) as info:
        keras.saving.load_model(with_asset(tmp_path, other))
    text = str(info.value)
    assert ASSET in text
    assert "row 3" in text and "'queens'" in text and "'queen'" in text


def test_a_legacy_asset_still_loads(tmp_path):
    good = {"vocabulary": TOKENS, "coverage": GOOD_COVERAGE}
    layer = keras.saving.load_model(
        with_asset(tmp_path, good, legacy=True)).layers[1]
    assert layer.vocabulary == TOKENS
    assert tuple(layer.coverage) == (2, 2, 0, [])
    assert layer.most_similar("king", k=1)[0][0] == "queen"


def test_a_deleted_asset_never_loads_as_an_empty_vocabulary(tmp_path):
    source = save_model(tmp_path)
    # The config holds the vocabulary: the layer is whole without the asset.
    whole = rewrite_archive(source, str(tmp_path / "a.keras"), drop=[ASSET])
    layer = keras.saving.load_model(whole).layers[1]
    assert layer.vocabulary == TOKENS
    assert tuple(layer.coverage) == (2, 2, 0, [])
    # A legacy config without it: the vocabulary is gone, and every use
    # says where it should have been (Keras does not call load_assets when
    # an archive has no asset at all).
    legacy = rewrite_archive(source, str(tmp_path / "b.keras"),
                             forget_vocabulary, drop=[ASSET])
    layer = keras.saving.load_model(legacy).layers[1]
    with pytest.raises(ValueError, match="vocabulary.json"):
        layer.most_similar("king")


def test_a_deleted_asset_beside_other_assets_is_named(tmp_path):
    inputs = keras.Input((2,), dtype="int32")
    first, second = make_layer(name="first"), make_layer(name="second")
    model = keras.Model(inputs, [first(inputs), second(inputs)])
    path = str(tmp_path / "two.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assets = [n for n in archive.namelist() if n.startswith("assets/")]
    assert len(assets) == 2 and ASSET in assets
    legacy = rewrite_archive(path, str(tmp_path / "legacy.keras"),
                             forget_vocabulary, drop=[ASSET])
    with pytest.raises(ValueError) as info:
        keras.saving.load_model(legacy)
    message = str(info.value)
    assert "The archive has no assets/.../vocabulary.json for layer '" \
        in message
    assert "'first'" in message or "'second'" in message
