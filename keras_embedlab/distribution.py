"""Layout maps that shard keras_embedlab tables with `keras.distribution`.

Keras does the sharding (on JAX, `keras.distribution.ModelParallel`); this
module only writes the `LayoutMap` keys, so that they match the tables and
nothing else. A bare key such as `".*embeddings"` also matches a
`keras.layers.Embedding` used for positions and a `reverse_embeddings`
variable, which would then be sharded too (or make Keras raise because a path
matches two keys).
"""

import re
from typing import Any

import keras

from keras_embedlab.layers import lookup, one_hot
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.one_hot import OneHotDense

SHARD_OPTIONS = ("rows", "columns")

# Default layer names (`lookup_embedding`, `pretrained_embedding_2`, ...),
# possibly nested, and the variables their table may be stored in.
_DEFAULT_NAMES = (
    (r"(?:lookup_embedding|pretrained_embedding)(?:_\d+)?",
     lookup.TABLE_VARIABLES),
    (r"one_hot_dense(?:_\d+)?", one_hot.TABLE_VARIABLES),
)


def _naming_convention_keys():
    """`{key: StoredVariable}` for every variable a table may be stored in
    (float, int8, int4, LoRA), under the default layer names."""
    return {rf"^(?:.*/)?{layer_name}/{stored.name}$": stored
            for layer_name, kinds in _DEFAULT_NAMES
            for stored in kinds}


# Variable paths of keras_embedlab tables under the default layer names,
# each with its rank and the axes that hold the table's rows and columns.
NAMING_CONVENTION_KEYS = _naming_convention_keys()


def _axes(axis, rank, model_axis):
    """A layout splitting `axis` across `model_axis`; `rank=None` (not
    known, e.g. a scale of one or two axes) leaves the axes after `axis`
    out, which replicates them."""
    axes = [None] * (axis + 1 if rank is None else rank)
    axes[axis] = model_axis
    return tuple(axes)


def _stored(layer):
    """`(variable, StoredVariable)` of each variable `layer` stores
    its table in (the float or quantized matrix, scales, zero points, LoRA
    factors): never the `embeddings`/`kernel` property, which is computed
    in int4 and LoRA modes."""
    variables = layer._stored_variables()
    return [(variables[kind.name], kind)
            for kind in layer._stored_table_variables()
            if kind.name in variables]


def _tables(model):
    """The keras_embedlab layers of `model` with their stored variables."""
    tables = []
    # `_flatten_layers` is how Keras itself walks nested layers and models.
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if not isinstance(layer, (LookupEmbedding, OneHotDense)):
            continue
        if not layer.built:
            raise ValueError(
                f"Layer '{layer.name}' in `model_or_mesh` is not built, so "
                "its table has no variable path yet. Build the model first "
                "(call it on some ids or call `model.build()`), or pass the "
                "mesh alone to match tables by their default names."
            )
        tables.append((layer, _stored(layer)))
    return tables


def layout_map(
    model_or_mesh: Any,
    mesh: Any = None,
    model_axis: str = "model",
    shard: str = "rows",
) -> keras.distribution.LayoutMap:
    """A `keras.distribution.LayoutMap` sharding every keras_embedlab table.

    Tables are the `embeddings` of `LookupEmbedding` and
    `PretrainedEmbedding` and the `kernel` of `OneHotDense`. Each is split
    across the `model_axis` of the mesh, by rows (`(model_axis, None)`, each
    device holds `input_dim / n` whole rows) or by columns
    (`(None, model_axis)`). The variables a table is stored in are split
    with it in every mode: int8 and int4 integers (int4 columns count packed
    bytes, two values each), the scales and int4 zero points of the rows
    (by rows only; by columns they are replicated), and the LoRA factors
    (`lora_*_a`, `(input_dim, rank)`, by rows; `lora_*_b`,
    `(rank, output_dim)`, by columns). Every other variable (an untied
    `reverse_embeddings`, a bias, int4's `g_idx`) has no key, so
    `ModelParallel` replicates it. Add your own keys to the returned map for
    other layers.

    Two forms:

    - `layout_map(model, mesh)`: one key per table, the exact variable path
      (`"^" + re.escape(path) + "$"`), whatever the layers are named. Keras
      applies layouts when variables are created, so re-create the model
      under the distribution with the same paths, e.g. with
      `keras.models.clone_model(model)` then `set_weights`, or by running
      your model-building code again with the same layer names.
    - `layout_map(mesh)`: keys by naming convention (`NAMING_CONVENTION_KEYS`),
      for a model not built yet: they match tables whose layers keep their
      default names (`lookup_embedding`, `one_hot_dense_3`, ...), and miss
      tables of layers you named yourself.

    Keras 3.15 applies layout maps on the JAX backend only: on TensorFlow
    `ModelParallel` is accepted but variables are created unsharded, and on
    PyTorch `keras.distribution` has no devices to list.

    Args:
        model_or_mesh: A built `keras.Model` (or layer) containing
            keras_embedlab layers, or a `keras.distribution.DeviceMesh`.
        mesh: The `DeviceMesh` when `model_or_mesh` is a model; else `None`.
        model_axis: Name of the mesh axis the tables are split across.
        shard: `"rows"` (default) or `"columns"`.

    Returns:
        A `keras.distribution.LayoutMap` for
        `keras.distribution.ModelParallel(layout_map=...)`.

    Raises:
        ValueError: for an unknown `shard`, a `model_axis` not in the mesh,
            a model without keras_embedlab tables or not built, or (model
            form) a sharded dimension of a stored variable not divisible by
            the axis size, which JAX cannot shard.

    Example:

    ```python
    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"))
    layouts = kel.distribution.layout_map(model, mesh)
    with keras.distribution.ModelParallel(layout_map=layouts).scope():
        sharded = keras.models.clone_model(model)
        sharded.set_weights(model.get_weights())
    ```
    """
    if isinstance(model_or_mesh, keras.distribution.DeviceMesh):
        if mesh is not None:
            raise ValueError(
                "Pass the mesh once: as `model_or_mesh` (keys by naming "
                "convention) or as `mesh` with a model as `model_or_mesh`. "
                f"Received: model_or_mesh={model_or_mesh}, mesh={mesh}."
            )
        model, mesh = None, model_or_mesh
    elif isinstance(model_or_mesh, keras.layers.Layer):
        model = model_or_mesh
        if not isinstance(mesh, keras.distribution.DeviceMesh):
            raise ValueError(
                "`mesh` must be a `keras.distribution.DeviceMesh` when "
                f"`model_or_mesh` is a model. Received: mesh={mesh!r} (of "
                f"type {type(mesh).__name__})."
            )
    else:
        raise ValueError(
            "`model_or_mesh` must be a built Keras model or a "
            "`keras.distribution.DeviceMesh`. Received: "
            f"model_or_mesh={model_or_mesh!r} (of type "
            f"{type(model_or_mesh).__name__})."
        )
    if shard not in SHARD_OPTIONS:
        raise ValueError(
            f"`shard` must be one of {', '.join(map(repr, SHARD_OPTIONS))}. "
            f"Received: shard={shard!r}."
        )
    if model_axis not in mesh.axis_names:
        raise ValueError(
            f"`model_axis` must name an axis of the mesh, one of "
            f"{tuple(mesh.axis_names)}. Received: model_axis={model_axis!r}."
        )
    by_rows = shard == "rows"
    layouts = keras.distribution.LayoutMap(mesh)
    if model is None:
        for key, kind in NAMING_CONVENTION_KEYS.items():
            axis = kind.rows if by_rows else kind.columns
            if axis is not None:
                layouts[key] = _axes(axis, kind.rank, model_axis)
        return layouts

    tables = _tables(model)
    if not tables:
        raise ValueError(
            f"`model_or_mesh` (model '{model.name}') contains no "
            "LookupEmbedding, PretrainedEmbedding or OneHotDense layer, so "
            "there is no table to shard."
        )
    size = mesh.shape[list(mesh.axis_names).index(model_axis)]
    for layer, stored in tables:
        for variable, kind in stored:
            axis = kind.rows if by_rows else kind.columns
            if axis is None:
                continue  # No key: replicated.
            shape = tuple(variable.shape)
            if shape[axis] % size:
                raise ValueError(
                    f"Cannot shard the {shard} of layer '{layer.name}' "
                    f"(variable '{variable.path}' of shape {shape}) across "
                    f"the {size} devices of mesh axis {model_axis!r}: "
                    f"{shape[axis]} is not divisible by {size}. Pad the "
                    "table to a multiple of the axis size, change the mesh "
                    "shape, or shard the other dimension."
                )
            layouts["^" + re.escape(variable.path) + "$"] = _axes(
                axis, len(shape), model_axis)
    return layouts
