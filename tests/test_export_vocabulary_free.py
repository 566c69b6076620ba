"""The layers for ids without a vocabulary (`HashedEmbedding`,
`QREmbedding`, `DynamicEmbedding`) exported by Keras's `model.export` and
run in each format's own runtime, with `model.predict`'s outputs.

One model per format, one branch per layer (pooled, concatenated), on one
ids input: one export per format. The harness is `test_export`'s.
"""

import keras
import numpy as np
import pytest
from test_export import BACKEND, FORMATS, _batch, _export, _load

import keras_embedlab as kel

D = 4
pytestmark = [
    pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64"),
    pytest.mark.filterwarnings("ignore:Converting a tensor to a Python"),
    pytest.mark.filterwarnings("ignore:torch.as_tensor results are"),
    pytest.mark.filterwarnings("ignore:Layer '.*' .* runs on JAX without"),
]
BRANCHES = ("hashed_1", "hashed_4", "qr", "dynamic")
# Cells that do not work, and why. The export never gives other outputs
# than `predict`: these fail to export or to load.
BROKEN = {
    ("tensorflow", "onnx", "hashed"): "tf2onnx writes ONNX opset 15, "
    "which has no BitwiseAnd (the hash's one bit operation in serving "
    "graphs): onnxruntime refuses the file",
    ("tensorflow", "litert", "hashed"): "the hash's int64 BitwiseAnd is "
    "not a LiteRT builtin op (needs the Flex delegate)",
}
# Refused at export: OpenVINO's CPU runtime computes int64 in 32 bits.
REFUSED = {("tensorflow", "openvino", "hashed"), ("torch", "openvino",
                                                  "hashed")}
# Raw ids, every branch reads the same: QR's vocabulary is [0, 1000), so
# -7 and 2**31 - 1 read zero rows there (invalid_ids="zeros").
IDS = np.array([[1, 5, 999], [-7, 2**31 - 1, 3]], "int32")
TRAIN = ([[1, 5, 999]], [[7, 8, 9]], [[999, 12345, -7]], [[3, 7, 7]])


def _kind(branch):
    return branch.split("_")[0]


def _model(branches):
    keras.utils.set_random_seed(0)
    ids = keras.Input((3,), dtype="int32", name="ids")
    layers = {"hashed_1": kel.HashedEmbedding(50, D, num_hashes=1),
              "hashed_4": kel.HashedEmbedding(50, D, num_hashes=4, seed=7),
              "qr": kel.QREmbedding(1000, D, num_collisions=10,
                                    invalid_ids="zeros"),
              "dynamic": kel.DynamicEmbedding(8, D)}
    pool = keras.layers.GlobalAveragePooling1D
    outputs = [pool()(layers[b](ids)) for b in branches]
    model = keras.Model(ids, keras.layers.Concatenate()(outputs)
                        if len(outputs) > 1 else outputs[0])
    if "dynamic" in branches:
        for batch in TRAIN:  # A map of several slots, one id left out.
            layers["dynamic"](np.array(batch, "int32"), training=True)
        slots = keras.ops.convert_to_numpy(layers["dynamic"].slots(IDS))
        assert len(set(slots.ravel().tolist())) >= 4, slots
    model(IDS)
    return model


def _working(fmt):
    return [b for b in BRANCHES
            if (BACKEND, fmt, _kind(b)) not in {*BROKEN, *REFUSED}]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Per format: (predict's outputs, the runtime's outputs, branches)."""
    results = {}

    def get(fmt):
        if fmt not in results:
            branches = _working(fmt)
            model = _model(branches)
            values = IDS[:_batch(fmt)]
            path = _export(model, tmp_path_factory.mktemp(fmt), fmt,
                           "vocabulary_free")
            results[fmt] = (model.predict(values, verbose=0),
                            _load(model, path, fmt)([values]), branches)
        return results[fmt]
    return get


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_layer_exports_with_predicts_outputs(exported, fmt, branch):
    cell = (BACKEND, fmt, _kind(branch))
    if cell in BROKEN:
        pytest.skip(BROKEN[cell])
    if cell in REFUSED:
        pytest.skip("export refused: see "
                    "test_hashed_openvino_export_is_refused")
    expected, out, branches = exported(fmt)
    at = branches.index(branch) * D
    np.testing.assert_allclose(out[:, at:at + D], expected[:, at:at + D],
                               atol=1e-6, rtol=1e-6)
    # Not trivially equal: the ids' vectors differ from example to example
    # and from zero.
    assert not np.allclose(expected[0, at:at + D], 0)
    if len(expected) > 1:
        assert not np.allclose(expected[0, at:at + D],
                               expected[1, at:at + D])


@pytest.mark.skipif("openvino" not in FORMATS,
                    reason=f"no OpenVINO export on {BACKEND}")
def test_hashed_openvino_export_is_refused(tmp_path):
    """OpenVINO's CPU runtime computes int64 in 32 bits: the hash would
    give other buckets, so the export says so instead."""
    model = _model(["hashed_1"])
    with pytest.raises(ValueError, match="format='openvino'"):
        _export(model, tmp_path, "openvino", "hashed")
