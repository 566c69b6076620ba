"""`kel.distribution.layout_map`, and sharded training on 8 JAX devices.

The layout map tests run in this process on every backend: a `DeviceMesh`
given device names is never turned into backend devices until something is
placed on it. The sharding tests need JAX with 8 simulated CPU devices, set
up before JAX starts, so they run `sharding_script.py` (and the example) in a
subprocess with `KERAS_BACKEND=jax`, whatever backend this process uses.
"""

import importlib.util
import io
import itertools
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout

import keras
import pytest

import keras_embedlab as kel
from keras_embedlab.distribution import layout_map

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MESH = keras.distribution.DeviceMesh(
    (2, 4), ("batch", "model"), devices=[f"cpu:{i}" for i in range(8)]
)
ROWS, COLUMNS = ("model", None), (None, "model")


class TiedOutput(keras.layers.Layer):
    """Holds a `reverse_embeddings` variable, as tied output layers do."""

    def build(self, input_shape):
        self.reverse_embeddings = self.add_weight(
            shape=(input_shape[-1], 8), name="reverse_embeddings"
        )

    def call(self, x):
        return keras.ops.matmul(x, self.reverse_embeddings)


def model_with_lookalikes():
    """Four tables, and variables a bare `.*embeddings` key would match."""
    ids = keras.Input((4,), dtype="int32")
    positions = keras.Input((4,), dtype="int32")
    parts = [
        kel.LookupEmbedding(8, 4, name="item_table")(ids),
        kel.OneHotDense(8, 4, use_bias=True)(ids),
        kel.PretrainedEmbedding(8, 4)(ids),
        keras.Sequential([kel.LookupEmbedding(8, 4)], name="tower")(ids),
        keras.layers.Embedding(4, 4, name="position_embedding")(positions),
        keras.layers.Embedding(8, 4)(ids),
    ]
    x = keras.layers.Add()(parts)
    x = TiedOutput(name="token_embedding")(x)
    return keras.Model([ids, positions], keras.layers.Dense(1)(x))


TABLE_PATHS = {
    "item_table/embeddings",
    "one_hot_dense/kernel",
    "pretrained_embedding/embeddings",
    "tower/lookup_embedding/embeddings",
}
LOOKALIKE_PATHS = {
    "one_hot_dense/bias",
    "position_embedding/embeddings",
    "embedding/embeddings",
    "token_embedding/reverse_embeddings",
}


def test_model_paths_are_the_expected_ones():
    paths = {v.path for v in model_with_lookalikes().variables}
    assert TABLE_PATHS | LOOKALIKE_PATHS <= paths


@pytest.mark.parametrize("shard, axes", [("rows", ROWS), ("columns", COLUMNS)])
def test_model_form_matches_the_tables_only(shard, axes):
    model = model_with_lookalikes()
    layouts = layout_map(model, MESH, shard=shard)
    assert len(layouts) == len(TABLE_PATHS)
    for variable in model.variables:
        layout = layouts[variable.path]
        if variable.path in TABLE_PATHS:
            assert layout.axes == axes, variable.path
            assert layout.device_mesh is MESH
        else:
            assert layout is None, variable.path
        # Anchored keys also hold for matchers that use `re.search`.
        hits = [key for key in layouts if re.search(key, variable.path)]
        assert len(hits) == (variable.path in TABLE_PATHS), variable.path


def test_bare_embeddings_key_matches_lookalikes():
    # Why the keys are exact: this is the pitfall `layout_map` avoids.
    model = model_with_lookalikes()
    bare = keras.distribution.LayoutMap(MESH)
    bare[".*embeddings"] = ROWS
    matched = {v.path for v in model.variables if bare[v.path] is not None}
    assert "position_embedding/embeddings" in matched
    assert "token_embedding/reverse_embeddings" in matched
    assert "embedding/embeddings" in matched


@pytest.mark.parametrize(
    "path, is_table",
    [
        ("lookup_embedding/embeddings", True),
        ("lookup_embedding_12/embeddings", True),
        ("pretrained_embedding_1/embeddings", True),
        ("one_hot_dense/kernel", True),
        ("sequential/one_hot_dense_3/kernel", True),
        ("functional/tower/lookup_embedding/embeddings", True),
        ("one_hot_dense/bias", False),
        ("embedding/embeddings", False),
        ("position_embedding/embeddings", False),
        ("token_embedding/reverse_embeddings", False),
        ("lookup_embedding/reverse_embeddings", False),
        ("my_lookup_embedding/embeddings", False),
        ("lookup_embedding_tied/embeddings", False),
        ("dense/kernel", False),
        ("item_table/embeddings", False),  # Named by the user: use a model.
    ],
)
def test_mesh_form_matches_default_names(path, is_table):
    layouts = layout_map(MESH)
    assert (layouts[path] is not None) == is_table
    hits = [key for key in layouts if re.search(key, path)]
    assert len(hits) == is_table


def test_mesh_form_on_a_model_with_default_names():
    model = model_with_lookalikes()
    layouts = layout_map(MESH, shard="columns")
    matched = {v.path for v in model.variables if layouts[v.path] is not None}
    assert matched == TABLE_PATHS - {"item_table/embeddings"}
    assert {layouts[p].axes for p in matched} == {COLUMNS}


def test_other_axis_name_and_added_keys():
    mesh = keras.distribution.DeviceMesh(
        (4, 2), ("data", "tables"), devices=[f"cpu:{i}" for i in range(8)]
    )
    layouts = layout_map(model_with_lookalikes(), mesh, model_axis="tables")
    layouts["^dense/kernel$"] = (None, "tables")
    assert layouts["one_hot_dense/kernel"].axes == ("tables", None)
    assert layouts["dense/kernel"].axes == (None, "tables")


def single_layer_model(layer):
    ids = keras.Input((3,), dtype="int32")
    return keras.Model(ids, layer(ids))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        pytest.param(("MODEL", MESH), {"shard": "diagonal"},
                     "`shard` must be one of 'rows', 'columns'. Received: "
                     "shard='diagonal'", id="unknown-shard"),
        pytest.param(("MODEL", MESH), {"model_axis": "tensor"},
                     "`model_axis` must name an axis of the mesh, one of "
                     "('batch', 'model'). Received: model_axis='tensor'",
                     id="unknown-axis"),
        pytest.param(("MODEL",), {}, "`mesh` must be a "
                     "`keras.distribution.DeviceMesh` when `model_or_mesh` "
                     "is a model. Received: mesh=None", id="model-no-mesh"),
        pytest.param((MESH, MESH), {}, "Pass the mesh once", id="mesh-twice"),
        pytest.param(("model.keras", MESH), {}, "`model_or_mesh` must be a "
                     "built Keras model or a `keras.distribution.DeviceMesh`."
                     " Received: model_or_mesh='model.keras' (of type str)",
                     id="not-a-model"),
    ],
)
def test_bad_arguments(args, kwargs, message):
    args = [model_with_lookalikes() if a == "MODEL" else a for a in args]
    with pytest.raises(ValueError, match=re.escape(message)):
        layout_map(*args, **kwargs)


@pytest.mark.parametrize(
    "layer, shard, message",
    [
        pytest.param(kel.LookupEmbedding(10, 4, name="ten_rows"), "rows",
                     "Cannot shard the rows of layer 'ten_rows' (variable "
                     "'ten_rows/embeddings' of shape (10, 4)) across the 4 "
                     "devices of mesh axis 'model': 10 is not divisible by "
                     "4.", id="rows"),
        pytest.param(kel.OneHotDense(8, 6, name="six_columns"), "columns",
                     "Cannot shard the columns of layer 'six_columns' "
                     "(variable 'six_columns/kernel' of shape (8, 6)) across "
                     "the 4 devices of mesh axis 'model': 6 is not divisible "
                     "by 4.", id="columns"),
    ],
)
def test_indivisible_table(layer, shard, message):
    # JAX cannot place such a table (IndivisibleError when it is created).
    with pytest.raises(ValueError, match=re.escape(message)):
        layout_map(single_layer_model(layer), MESH, shard=shard)


def quantized_or_lora(layer, mode):
    """`layer`, built in a one-layer model, in storage `mode`."""
    single_layer_model(layer)
    if mode == "lora":
        layer.enable_lora(2)
    elif mode == "int4-rows":
        layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
            block_size=-1))
    elif mode == "int4-blocks":
        layer.quantize("int4", config=keras.quantizers.Int4QuantizationConfig(
            block_size=4))
    elif mode != "float":
        layer.quantize(mode)
    return layer


M = "model"
# Per mode, by rows and by columns: the layout of each stored variable of a
# table `{t}` (8 rows, 8 columns) that is split; the others are replicated.
STORED_LAYOUTS = {
    "float": ({"{t}": (M, None)}, {"{t}": (None, M)}),
    "int8": ({"{t}": (M, None), "{t}_scale": (M,)}, {"{t}": (None, M)}),
    "int4-rows": ({"{t}": (M, None), "{t}_scale": (M,)}, {"{t}": (None, M)}),
    "int4-blocks": ({"{t}": (M, None), "{t}_scale": (M, None),
                     "{t}_zero": (M, None)}, {"{t}": (None, M)}),
    "lora": ({"{t}": (M, None), "lora_{t}_a": (M, None)},
             {"{t}": (None, M), "lora_{t}_b": (None, M)}),
}


def stored_layouts(mode, shard, layer_name, table):
    """`{path: axes}` of the split variables (`STORED_LAYOUTS`)."""
    layouts = STORED_LAYOUTS[mode][shard == "columns"]
    return {f"{layer_name}/" + name.format(t=table): axes
            for name, axes in layouts.items()}


def split_variables(layouts, layer):
    return {v.path: layouts[v.path].axes for v in layer.variables
            if layouts[v.path] is not None}


@pytest.mark.parametrize("shard", ["rows", "columns"])
@pytest.mark.parametrize("mode", list(STORED_LAYOUTS))
@pytest.mark.parametrize("cls, table", [
    pytest.param(kel.LookupEmbedding, "embeddings", id="lookup"),
    pytest.param(kel.OneHotDense, "kernel", id="one_hot"),
])
def test_model_form_shards_the_stored_variables_of_every_mode(cls, table,
                                                              mode, shard):
    # The stored variables, never the computed `embeddings`/`kernel`
    # property (int4 unpacks it, LoRA merges it: no variable, no path).
    layer = quantized_or_lora(cls(8, 8, name="layer"), mode)
    layouts = layout_map(layer, MESH, shard=shard)
    expected = stored_layouts(mode, shard, "layer", table)
    assert split_variables(layouts, layer) == expected
    assert len(layouts) == len(expected)


@pytest.mark.parametrize("shard", ["rows", "columns"])
@pytest.mark.parametrize("mode", ["int8", "int4-blocks", "lora"])
def test_mesh_form_matches_the_stored_variables(mode, shard):
    # A scale has one axis (one per row) or two (per row and block): its
    # key leaves the axes after the row axis out, which replicates them
    # too, as trailing `None`s would.
    def trimmed(layouts):
        return {path: tuple(reversed(tuple(itertools.dropwhile(
            lambda axis: axis is None, reversed(axes)))))
            for path, axes in layouts.items()}

    layer = quantized_or_lora(kel.OneHotDense(8, 8), mode)
    layouts = layout_map(MESH, shard=shard)
    assert trimmed(split_variables(layouts, layer)) == trimmed(
        stored_layouts(mode, shard, layer.name, "kernel"))


def test_packed_int4_columns_not_divisible():
    # int4 packs two values per byte: 8 columns are 4 bytes, not 8.
    layer = quantized_or_lora(kel.LookupEmbedding(8, 4, name="packed"),
                              "int4-rows")
    with pytest.raises(ValueError, match=re.escape(
            "Cannot shard the columns of layer 'packed' (variable "
            "'packed/embeddings' of shape (8, 2)) across the 4 devices of "
            "mesh axis 'model': 2 is not divisible by 4.")):
        layout_map(layer, MESH, shard="columns")


def test_model_without_tables():
    model = single_layer_model(keras.layers.Embedding(8, 4))
    with pytest.raises(ValueError, match="contains no LookupEmbedding"):
        layout_map(model, MESH)


def test_unbuilt_table():
    model = keras.Sequential([kel.LookupEmbedding(8, 4, name="lazy")])
    with pytest.raises(ValueError, match="Layer 'lazy' in `model_or_mesh` is "
                       "not built"):
        layout_map(model, MESH)


# Sharded training: JAX, 8 simulated CPU devices, in a subprocess.


def jax_env():
    flags = os.environ.get("XLA_FLAGS", "").split()
    flags = [f for f in flags if "host_platform_device_count" not in f]
    flags.append("--xla_force_host_platform_device_count=8")
    # The checkout under test, not whichever copy is installed.
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH"))
                           if p)
    return dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                XLA_FLAGS=" ".join(flags), TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONPATH=path)


@pytest.fixture(scope="module")
def sharded():
    if keras.backend.backend() != "jax":
        # The script is the same JAX program whatever this session's
        # backend is (the subprocess sets KERAS_BACKEND=jax): it runs once.
        pytest.skip("sharding_script.py runs KERAS_BACKEND=jax in a "
                    "subprocess whatever this session's backend is: its "
                    "tests run once, in the JAX session")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "sharding_script.py")],
        env=jax_env(), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


TABLES = ["lookup_embedding/embeddings", "one_hot_dense/kernel"]


def test_sharded_training_matches_one_device(sharded):
    assert sharded["backend"] == "jax" and sharded["devices"] == 8
    diff = sharded["diff"]
    assert diff["outputs_before"] <= 1e-5
    assert diff["loss"] <= 1e-5
    assert diff["outputs_after"] <= 1e-5
    assert diff["weights_moved"] > 1e-3  # Training did change the table.
    assert len(sharded["weights_diff"]) == 6
    assert max(sharded["weights_diff"].values()) <= 1e-5


def test_each_device_holds_a_quarter_of_each_table(sharded):
    for path, info in sharded["shards"].items():
        assert info["devices"] == 8, path
        if path in TABLES:
            assert info["spec"] == "P('model', None)"
            assert info["shapes"] == [[16, 8]] and info["blocks"] == 4
        else:  # Replicated, the position embedding included.
            assert info["shapes"] == [info["shape"]], path
            assert info["blocks"] == 1, path
    slots = {p: i for p, i in sharded["optimizer_shards"].items()
             if "embeddings_" in p or "kernel_" in p}
    for path, info in slots.items():
        table = path.startswith(("adam/lookup_embedding_embeddings",
                                 "adam/one_hot_dense_kernel"))
        assert info["blocks"] == (4 if table else 1), path
    assert len([p for p in slots if slots[p]["blocks"] == 4]) == 4


def test_single_device_model_is_not_sharded(sharded):
    assert sharded["distribution_after_scopes"] == "None"
    for path, info in sharded["single_device_shards"].items():
        assert info["devices"] == 1 and info["shapes"] == [info["shape"]]


def test_mesh_form_and_column_sharding(sharded):
    fresh = sharded["mesh_form_shards"]
    for path in ["lookup_embedding_1/embeddings", "one_hot_dense_1/kernel"]:
        assert fresh[path]["shapes"] == [[16, 8]], path
    assert fresh["position_embedding/embeddings"]["blocks"] == 1
    columns = sharded["column_shards"]
    for path in TABLES:
        assert columns[path]["spec"] == "P(None, 'model')"
        assert columns[path]["shapes"] == [[64, 2]], path
    assert sharded["diff"]["columns_outputs_before"] <= 1e-5


def test_example_runs_and_agrees():
    # Usually this process is not JAX or has one JAX device: then the
    # example runs itself again with 8 simulated devices, as users see it.
    rerun = (keras.backend.backend() != "jax"
             or len(keras.distribution.list_devices()) < 2)
    path = os.path.join(ROOT, "examples", "sharded_embedding.py")
    spec = importlib.util.spec_from_file_location("sharded_embedding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = module.main(["--vocabulary", "1022", "--steps", "2"])
    text = buffer.getvalue()
    assert status == 0, text
    assert ("Running it that way now." in text) == rerun
    assert "vocabulary padded from 1022 to 1024 rows" in text
    assert "item_table/embeddings            split in 4 blocks of (256, 32)" \
        in text
    assert "position_embedding/embeddings    replicated: 8 copies" in text
    assert text.count("shape (256, 32)") == 8
    assert "(agree to 1e-5)" in text


def test_invalid_id_under_sharding_raises_and_does_not_hang(sharded):
    # Every device runs the check, so all of them fail together.
    assert sharded["invalid_id_error"] is not None
    assert "invalid id: 69. Ids must be whole numbers in the valid range " \
        "[0, 64)" in (
        sharded["invalid_id_error"]
    )
    assert sharded["predict_after_error"] <= 1e-6


# Row-sparse training across devices (tests/sparse_sharding.py).


@pytest.mark.parametrize("optimizer", ["LazyAdam", "SparseSGD"])
def test_row_sparse_training_matches_one_device(sharded, optimizer):
    run = sharded["row_sparse"][optimizer]
    assert run["weights_moved"] > 1e-3  # Training did change the table.
    assert run["loss_diff"] <= 1e-5
    assert run["weights_diff"] <= 1e-5
    # Rows never looked up (and invalid ids, "zeros") changed nothing.
    assert run["unused_rows_diff"] == 0.0


@pytest.mark.parametrize("optimizer, slots", [
    ("LazyAdam", ["lazy_adam/sparse_table_embeddings_momentum",
                  "lazy_adam/sparse_table_embeddings_velocity"]),
    ("SparseSGD", ["sparse_sgd/sparse_table_embeddings_momentum"]),
])
def test_row_sparse_slots_stay_sharded_like_the_table(sharded, optimizer,
                                                      slots):
    run = sharded["row_sparse"][optimizer]
    assert run["table"]["spec"] == "P('model', None)"
    assert sorted(run["slots"]) == slots
    for path in slots:
        info = run["slots"][path]
        assert info["spec"] == "P('model', None)", path
        assert info["shapes"] == [[16, 8]] and info["blocks"] == 4, path


def test_row_sparse_invalid_id_raises_on_every_device(sharded):
    error = sharded["row_sparse"]["error_mode"]
    assert error is not None
    assert "'sparse_table' received an invalid id: 69" in error
    assert sharded["row_sparse"]["loss_after_error"] > 0


# Quantized and LoRA tables across devices (tests/table_modes_sharding.py).


@pytest.mark.parametrize("mode", ["int8", "int4-blocks", "lora"])
@pytest.mark.parametrize("shard", ["rows", "columns"])
def test_quantized_and_lora_tables_shard_and_match_one_device(sharded, mode,
                                                              shard):
    run = sharded["table_modes"][mode]
    # Lookups, one-hot matmuls and the reverse projection, as on one device.
    assert run[shard]["diff"] <= 1e-5
    split = {}
    for path, info in run[shard]["shards"].items():
        layer, name = path.split("/")
        table = "embeddings" if layer.startswith("lookup") else "kernel"
        if info["blocks"] == 1:
            assert info["shapes"] == [info["shape"]], path  # replicated
            continue
        split[name.replace(table, "{t}")] = info["spec"]
        assert info["blocks"] == 4, path
    # The stored variables split, the same in both layers.
    expected = {name: "P" + str(axes) for name, axes in
                STORED_LAYOUTS[mode][shard == "columns"].items()}
    assert split == expected


@pytest.mark.parametrize("mode", ["int8", "int4-blocks", "lora"])
def test_mesh_form_shards_quantized_and_lora_tables(sharded, mode):
    fresh = sharded["table_modes"][mode]["mesh_form"]
    split = {path.split("/")[-1] for path, info in fresh.items()
             if info["blocks"] == 4}
    rows = {name.format(t=t) for name in STORED_LAYOUTS[mode][0]
            for t in ("embeddings", "kernel")}
    assert split == rows


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the example starts its own JAX processes whatever this "
    "session's backend is: it runs once, in the JAX session",
)
def test_table_split_across_two_processes_trains_as_on_one_device():
    # Two processes of 2 CPU devices joined by jax.distributed: the table's
    # rows live half in each process; dense and row-sparse training agree
    # with one device, and an invalid id is refused in both processes.
    path = os.path.join(ROOT, "examples", "multiprocess_embedding.py")
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, path, "--timeout", "400"], env=env,
        capture_output=True, text=True, timeout=500,
    )
    text = result.stdout
    assert result.returncode == 0, text[-4000:] + result.stderr[-4000:]
    held = {0: "[(0, 64), (64, 128)]", 1: "[(128, 192), (192, 256)]"}
    for process, rows in held.items():
        assert f"[process {process}] process {process} of 2: 2 local " \
            "devices of 4" in text
        for label in ("dense table, Adam", "sparse table, LazyAdam",
                      "sparse table, SparseSGD"):
            line = next(line for line in text.splitlines()
                        if line.startswith(f"[process {process}] {label}:"))
            assert f"holds table rows {rows};" in line
            assert "(agree to 1e-5)" in line
        assert f"[process {process}] invalid id refused here: ...invalid " \
            "id: 261." in text
    assert text.rstrip().endswith("all processes agree with one device")
