"""Models with our layers exported by Keras's own `model.export`, run in
each format's own runtime (`keras_embedlab.run_exported`).

One model holds every layer and option as a branch of its own, each with
its own ids input, so that one export per (format, `invalid_ids`) covers
them all and an invalid id can be sent to one branch at a time. Keras's
own layers (`Embedding`, `ReversibleEmbedding`) are exported the same way,
as the anchor: a format is tested where theirs exports.

The README's "Export and serving" table is checked against what these
tests observe (`test_readme_table_is_what_the_tests_observe`); run with
`EMBEDLAB_WRITE_EXPORT_TABLE=1` to rewrite this backend's rows.
"""

import os
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_embedlab as kel
from keras_embedlab.serving import EXTENSIONS, RUNTIMES, load_exported
from keras_embedlab.serving import FORMATS as SERVED_FORMATS

BACKEND = keras.backend.backend()
V, D, L, BAG = 12, 4, 3, 2
README = Path(__file__).resolve().parent.parent / "README.md"

# jax2onnx traces Keras's masked pooling with a float64 constant, which
# JAX without x64 narrows to float32 (a warning, not an error).
# PyTorch's tracer warns about Keras's own shape arithmetic (the tests check
# behaviour, so a value baked into a trace would fail them).
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Explicitly requested dtype float64:UserWarning"),
    pytest.mark.filterwarnings("ignore:Converting a tensor to a Python"),
    pytest.mark.filterwarnings("ignore:torch.as_tensor results are"),
]

# The formats under which Keras's own `Embedding` exports and runs on this
# backend (`backend/<name>.py`'s `EXPORT_FORMATS`): `litert` needs
# TensorFlow, or `litert-torch` on PyTorch (not installed: it pins its own
# transformers and typing_extensions); OpenVINO's converter fails on
# Keras's own JAX embedding ("unconverted ops").
FORMATS = list(SERVED_FORMATS)
_MODULES = {"onnx": "onnxruntime", "litert": "ai_edge_litert",
            "openvino": "openvino", "tf_saved_model": "tensorflow",
            "torch": "torch"}


def _branches(mode):
    """(name, ids shape, layer call) for every layer and option."""
    kw = {"invalid_ids": mode}

    def pooled(layer):
        return lambda ids: keras.layers.GlobalAveragePooling1D()(layer(ids))

    def quantized(mode_name):
        layer = kel.LookupEmbedding(V, D, **kw)
        layer.build((None, L))
        layer.quantize(mode_name)
        return layer

    def lora():
        layer = kel.LookupEmbedding(V, D, **kw)
        layer.build((None, L))
        layer.enable_lora(2)
        # Non-zero factors, so that LoRA changes the rows.
        layer.lora_embeddings_b.assign(
            np.random.default_rng(1).normal(size=(2, D)).astype("float32"))
        return layer

    def tied(**options):
        layer = kel.LookupEmbedding(V, D, **options, **kw)

        def call(ids):
            hidden = keras.layers.GlobalAveragePooling1D()(layer(ids))
            return layer(hidden, reverse=True)
        return call

    def bags(ids, weights):
        layer = kel.LookupEmbedding(V, D, combiner="mean", **kw)
        return layer(ids, bag_weights=weights)

    vocabulary = [f"w{i}" for i in range(V)]
    return [
        ("lookup", pooled(kel.LookupEmbedding(V, D, **kw))),
        ("mask_zero", pooled(kel.LookupEmbedding(V, D, mask_zero=True,
                                                 **kw))),
        ("one_hot", pooled(kel.OneHotDense(V, D, **kw))),
        ("pretrained", pooled(kel.PretrainedEmbedding(
            V, D, vocabulary=vocabulary, **kw))),
        ("int8", pooled(quantized("int8"))),
        ("int4", pooled(quantized("int4"))),
        ("lora", pooled(lora())),
        ("tied_soft_cap", tied(logit_soft_cap=2.0)),
        ("untied", tied(tie_weights=False)),
        ("padding_max_norm", pooled(kel.LookupEmbedding(
            V, D, padding_idx=1, max_norm=0.03, **kw))),
        ("one_hot_padding_max_norm", pooled(kel.OneHotDense(
            V, D, padding_idx=1, max_norm=0.03, **kw))),
        ("bags", bags),
    ]


def keras_model():
    ids = keras.Input((L,), dtype="int32", name="ids_embedding")
    tied_ids = keras.Input((L,), dtype="int32", name="ids_reversible")
    embedding = keras.layers.Embedding(V, D, name="anchor")
    reversible = keras.layers.ReversibleEmbedding(V, D, logit_soft_cap=2.0)
    hidden = keras.layers.GlobalAveragePooling1D()(reversible(tied_ids))
    outputs = keras.layers.Concatenate()([
        keras.layers.GlobalAveragePooling1D()(embedding(ids)),
        reversible(hidden, reverse=True)])
    return keras.Model([ids, tied_ids], outputs)


def our_model(mode):
    """One input per branch (`ids_<name>`, plus `weights_bags`) and one
    output: every branch's output, concatenated."""
    keras.utils.set_random_seed(0)
    inputs, outputs = [], []
    for name, call in _branches(mode):
        if name == "bags":
            ids = keras.Input((L, BAG), dtype="int32", name=f"ids_{name}")
            weights = keras.Input((L, BAG), dtype="float32",
                                  name="weights_bags")
            inputs += [ids, weights]
            out = keras.layers.Flatten()(call(ids, weights))
        else:
            ids = keras.Input((L,), dtype="int32", name=f"ids_{name}")
            inputs.append(ids)
            out = call(ids)
        outputs.append(out)
    return keras.Model(inputs, keras.layers.Concatenate()(outputs))


def good_inputs(model, batch):
    rng = np.random.default_rng(2)
    values = []
    for tensor in model.inputs:
        shape = (batch, *tensor.shape[1:])
        if tensor.dtype == "float32":
            values.append(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            values.append(rng.integers(0, V, shape).astype("int32"))
    return values


def with_invalid_id(values, index, bad):
    values = [v.copy() for v in values]
    values[index][(0,) * values[index].ndim] = bad
    return values


def _batch(fmt):
    # Keras's `torch` export specialises the batch size to the sample's.
    return 1 if fmt == "torch" else 2


def _export(model, tmp_path, fmt, name):
    pytest.importorskip(_MODULES[fmt], reason=f"{fmt} runtime missing")
    path = str(tmp_path / f"{name}{EXTENSIONS[fmt]}")
    model.export(path, format=fmt, verbose=False)
    return path


def _load(model, path, fmt):
    run = load_exported(path, fmt, [t.name for t in model.inputs])
    return lambda values: run(values)[0]


def _id_outcome(model, run, values, index, bad):
    """What the runtime does with one invalid id: "refused", "NaN", or
    the output."""
    values = with_invalid_id(values, index, bad)
    try:
        out = run(values)
    except Exception:  # Each runtime raises its own error type.
        return "refused"
    if np.isnan(out).any():
        return "NaN"
    return out


# Observed cells, gathered for the README table (one process per backend).
OBSERVED = {}


@pytest.fixture(scope="module")
def built():
    models = {"keras": keras_model(), "error": our_model("error"),
              "zeros": our_model("zeros")}
    for model in models.values():
        model(good_inputs(model, 2))  # Keras's JAX ONNX export needs it.
    return models


@pytest.mark.parametrize("fmt", FORMATS)
def test_keras_layers_export_and_equal_predict(built, tmp_path, fmt):
    """The anchor: Keras's own layers export and run in this format."""
    model = built["keras"]
    values = good_inputs(model, _batch(fmt))
    expected = model.predict(values, verbose=0)
    run = _load(model, _export(model, tmp_path, fmt, "keras"), fmt)
    np.testing.assert_allclose(run(values), expected, atol=1e-6, rtol=1e-6)
    cells = []
    for bad in (-1, V):
        out = _id_outcome(model, run, values, 0, bad)
        if isinstance(out, str):
            cells.append(f"{bad}: {out}")
            continue
        # -1 wraps to the last row; V is clamped to it, or filled.
        table = keras.ops.convert_to_numpy(
            model.get_layer("anchor").embeddings)
        first = values[0][0]
        kept = table[first[1:]].sum(axis=0) / L
        if np.allclose(out[0, :D], kept, atol=1e-6):
            cells.append(f"{bad}: zero row")
        elif np.allclose(out[0, :D], kept + table[V - 1] / L, atol=1e-6):
            cells.append(f"{bad}: the last row")
        else:
            cells.append(f"{bad}: another row")
    OBSERVED[(fmt, "keras")] = ", ".join(cells)


@pytest.mark.parametrize("mode", ["zeros", "error"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_our_layers_export_and_keep_the_invalid_id_contract(
        built, tmp_path, fmt, mode):
    model = built[mode]
    values = good_inputs(model, _batch(fmt))
    expected = model.predict(values, verbose=0)
    refusing_export = ((BACKEND, fmt) in (("jax", "tf_saved_model"),
                                          ("torch", "openvino"))
                       and mode == "error")
    if refusing_export:
        # No operation of the format can refuse a batch: the export says so
        # rather than write a model that returns rows for invalid ids.
        with pytest.raises(ValueError, match="invalid_ids='zeros'"):
            _export(model, tmp_path, fmt, f"ours_{mode}")
        OBSERVED[(fmt, mode)] = "export refused"
        return
    run = _load(model, _export(model, tmp_path, fmt, f"ours_{mode}"), fmt)
    np.testing.assert_allclose(run(values), expected, atol=1e-6, rtol=1e-6)
    # Each branch gets ids -1 and V; the first also the largest int32 (the
    # same comparison everywhere).
    cases = [(index, bad) for index, t in enumerate(model.inputs)
             if t.name.startswith("ids_")
             for bad in ((-1, V, 2**31 - 1) if index == 0 else (-1, V))]
    if mode == "error":
        for index, bad in cases:
            out = _id_outcome(model, run, values, index, bad)
            assert isinstance(out, str) and out == "refused", (
                f"{model.inputs[index].name}, id {bad}: {out}")
        OBSERVED[(fmt, mode)] = "refused"
        return
    # "zeros": one batch with one invalid id per example, whose outputs
    # must be `predict`'s (zero rows); one example at a time where the
    # export fixed the batch size.
    step = _batch(fmt) if fmt == "torch" else len(cases)
    batch = [np.repeat(v[:1], len(cases), axis=0) for v in values]
    for row, (index, bad) in enumerate(cases):
        batch[index][(row,) + (0,) * (batch[index].ndim - 1)] = bad
    expected = model.predict(batch, verbose=0)
    for start in range(0, len(cases), step):
        out = run([v[start:start + step] for v in batch])
        np.testing.assert_allclose(out, expected[start:start + step],
                                   atol=1e-6, rtol=1e-6,
                                   err_msg=str(cases[start:start + step]))
    OBSERVED[(fmt, mode)] = "zero rows"


def test_int8_table_stays_int8_in_onnx(tmp_path):
    """Beyond Keras: an int8 (int4) table is written as its integers and
    scales, so the file is about a quarter (an eighth) of the float32 one,
    with the quantized model's outputs."""
    pytest.importorskip("onnxruntime", reason="onnxruntime missing")
    x = np.random.default_rng(3).integers(0, 4000, (2, 8)).astype("int32")
    sizes = {}
    for quantization in ("float32", "int8", "int4"):
        ids = keras.Input((8,), dtype="int32", name="ids")
        layer = kel.LookupEmbedding(4000, 64, invalid_ids="zeros")
        layer.build((None, 8))
        if quantization != "float32":
            layer.quantize(quantization)
        model = keras.Model(ids, layer(ids))
        model(x)
        path = tmp_path / f"{quantization}.onnx"
        model.export(str(path), format="onnx", verbose=False)
        sizes[quantization] = os.path.getsize(path)
        np.testing.assert_allclose(
            _load(model, str(path), "onnx")([x]),
            model.predict(x, verbose=0), atol=1e-6, rtol=1e-6)
    assert sizes["int8"] <= 0.3 * sizes["float32"], sizes
    assert sizes["int4"] <= 0.2 * sizes["float32"], sizes


def _table_rows():
    rows = []
    for fmt in FORMATS:
        cells = [OBSERVED.get((fmt, key), "not run")
                 for key in ("keras", "error", "zeros")]
        rows.append(f"| {BACKEND} | `{fmt}` | {RUNTIMES[fmt]} | "
                    + " | ".join(cells) + " |")
    return rows


def test_readme_table_is_what_the_tests_observe():
    """Runs last in this module (pytest keeps file order; xdist's
    `loadscope` keeps a module on one worker)."""
    missing = [(fmt, key) for fmt in FORMATS
               for key in ("keras", "error", "zeros")
               if (fmt, key) not in OBSERVED]
    if missing:
        pytest.skip(f"export tests not run in this session: {missing}")
    rows = _table_rows()
    text = README.read_text()
    pattern = re.compile(rf"^\| {BACKEND} \| `.*$", re.M)
    if os.environ.get("EMBEDLAB_WRITE_EXPORT_TABLE"):
        current = pattern.findall(text)
        if current:
            start = text.index(current[0])
            end = text.index(current[-1]) + len(current[-1])
            text = text[:start] + "\n".join(rows) + text[end:]
            README.write_text(text)
    assert pattern.findall(README.read_text()) == rows, (
        "The README's export table differs from what the tests observe; "
        "rerun with EMBEDLAB_WRITE_EXPORT_TABLE=1. Observed:\n"
        + "\n".join(rows))
