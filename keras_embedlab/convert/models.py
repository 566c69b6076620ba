"""`to_keras` and `from_keras`: a model's embedding layers swapped between
ours and Keras's own (`keras.layers.Embedding`/`ReversibleEmbedding`).

Both rebuild the model with `keras.models.clone_model` (nested Functional
and Sequential models included, shared layers stay shared) and copy every
variable as it is stored: our table variables have Keras's names, shapes
and dtypes in every mode (float, int8, int4, LoRA factors; see
`table/storage.py`), so a copy is an assignment by variable name. The
other layers are rebuilt from their configs and get the same weights.
"""

import functools
from typing import NamedTuple

import keras

# Keras has no public accessor for a tensor's mask (see `layers/base.py`).
from keras.src.backend import get_keras_mask

from keras_embedlab.layers.base import INVALID_IDS_MODES, EmbeddingBase
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.one_hot import OneHotDense
from keras_embedlab.utils.argument_checks import check_choice


class _Problem(NamedTuple):
    layer: str
    option: str
    value: object
    why: str
    fix: str

    def __str__(self):
        return (f"- layer '{self.layer}': {self.option}={self.value!r}: "
                f"{self.why} {self.fix}")


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, (Functional, keras.Sequential))


def _walk(model, wanted, problems, kind):
    """The layers of `model` (nested graphs included) that are `wanted`;
    a `wanted` layer inside another layer, which `clone_model` cannot
    rebuild, is a problem."""
    found = []
    for layer in model.layers:
        if wanted(layer):
            found.append(layer)
        elif _is_functional(layer):
            found.extend(_walk(layer, wanted, problems, kind))
        else:
            for inner in layer._flatten_layers(include_self=False):
                if wanted(inner):
                    problems.append(_Problem(
                        inner.name, "inside", layer.name,
                        f"the {kind} is part of the custom layer "
                        f"'{layer.name}' ({type(layer).__name__}), which "
                        "only a Functional or Sequential model's layers "
                        "can be swapped out of.",
                        "Build the model from its layers with the "
                        "functional API, or convert the inner layer "
                        "yourself."))
    return found


def _clone(model, convert):
    """`model` rebuilt with `convert(layer)` for the layers it converts (it
    returns None for the others, which keep their weights)."""
    pairs = []

    def clone_function(layer):
        new = convert(layer)
        if new is None:
            new = layer.__class__.from_config(layer.get_config())
            pairs.append((layer, new))
        return new

    clone = keras.models.clone_model(model, clone_function=clone_function,
                                     recursive=True)
    for old, new in pairs:
        if isinstance(old, keras.layers.Layer) and old.weights:
            new.set_weights(old.get_weights())
    return clone


def _check_model(model, name):
    if not isinstance(model, keras.Model) or not _is_functional(model):
        raise ValueError(
            f"`{name}` converts a Functional or Sequential Keras model, or "
            f"one layer. Received: model={model!r} (of type "
            f"{type(model).__name__}). For a subclassed model, convert its "
            "layers one by one."
        )
    if not model.built:
        raise ValueError(
            f"`{name}` copies weights, so the model must be built. Model "
            f"'{model.name}' is not: call it on some inputs or build it "
            "first.")


# Ours -> Keras's.

def _uses_reverse(layer):
    """Whether `layer` needs `ReversibleEmbedding`: a reverse option is
    set, or a node of the graph calls it with `reverse=True`."""
    if (not getattr(layer, "tie_weights", True)
            or layer.reverse_dtype is not None
            or layer.logit_soft_cap is not None):
        return True
    return any(node.arguments.kwargs.get("reverse")
               for node in layer._inbound_nodes)


def _to_keras_problems(layer):
    """What stops `layer` from being a Keras `Embedding`."""
    problems = []

    def add(option, value, why, fix):
        problems.append(_Problem(layer.name, option, value, why, fix))

    if not layer.built:
        add("built", False, "its weights do not exist yet.",
            "Build the model (call it on some ids) first.")
    if layer.combiner is not None:
        add("combiner", layer.combiner,
            "Keras's Embedding has no bags (it returns one row per id).",
            "Look up with combiner=None and reduce the rows with a Keras "
            "layer (e.g. a masked GlobalAveragePooling1D).")
    if layer.padding_idx is not None:
        add("padding_idx", layer.padding_idx,
            "Keras's Embedding returns the padding id's row as it is "
            "stored, not zeros.",
            "Use mask_zero=True with id 0 as padding, or keep "
            "keras_embedlab.")
    if layer.max_norm is not None:
        add("max_norm", layer.max_norm,
            "Keras's Embedding does not clip looked-up rows.",
            "Drop max_norm (outputs change for rows above it), or keep "
            "keras_embedlab.")
    if layer.invalid_ids == "zeros":
        add("invalid_ids", "zeros",
            "Keras's Embedding gives no zero rows for invalid ids (each "
            "backend does its own thing: an error, a clamped row, NaN).",
            "Use invalid_ids='error' if every id is valid, or keep "
            "keras_embedlab.")
    if (layer.lora_enabled and layer.quantization_mode in ("int8", "int4")
            and _uses_reverse(layer)):
        add("lora_rank", layer.lora_rank,
            f"Keras's ReversibleEmbedding leaves LoRA out of its "
            f"{layer.quantization_mode} reverse projection (its forward "
            "lookup has it), so the logits would differ.",
            "Save and reload the model first (saving merges LoRA into the "
            "quantized table), or convert before enabling LoRA.")
    mode = layer.quantization_mode
    if (layer.mask_zero and mode in ("int8", "int4")
            and not _masks(_uses_reverse(layer), mode)):
        add("mask_zero", True,
            f"Keras's {_keras_class(_uses_reverse(layer)).__name__} gives "
            f"no mask when it is {mode}-quantized (its quantized lookup "
            "skips the mask), so masked layers after it would see every "
            "position.",
            "Use mask_zero=False and pass the mask (ids != 0) to the "
            "layers that take one, or keep keras_embedlab.")
    if isinstance(layer, OneHotDense):
        if layer.activation is not keras.activations.linear:
            add("activation", keras.activations.serialize(layer.activation),
                "an Embedding is a plain lookup, without an activation.",
                "Use activation=None, or add a keras.layers.Activation "
                "after the layer yourself.")
        if (layer.built and layer.use_bias
                and keras.ops.convert_to_numpy(layer.bias).any()):
            add("use_bias", True,
                "an Embedding has no bias, and this one is not zero.",
                "Fold the bias into the kernel (kernel + bias is a lookup "
                "table), or use use_bias=False.")
    return problems


def _keras_class(reverse):
    return (keras.layers.ReversibleEmbedding if reverse
            else keras.layers.Embedding)


def _gives_mask(layer):
    """Whether `layer` (built, `mask_zero=True`) gives its rows a mask."""
    rows = layer(keras.ops.zeros((1, 1), "int32"))
    return get_keras_mask(rows) is not None


@functools.lru_cache(maxsize=None)
def _masks(reverse, mode):
    """Whether Keras's layer (`_keras_class(reverse)`) quantized to `mode`
    gives a mask with `mask_zero=True` (asked, not assumed: a Keras
    version may change it)."""
    probe = _keras_class(reverse)(2, 2, mask_zero=True)
    probe.build()
    probe.quantize(mode)
    return _gives_mask(probe)


def _to_keras_layer(layer):
    """The Keras `Embedding` (`ReversibleEmbedding` where reversed) equal
    to `layer` (checked by `_to_keras_problems`), weights copied."""
    reverse = _uses_reverse(layer)
    prefix = "kernel" if isinstance(layer, OneHotDense) else "embeddings"
    kwargs = dict(
        input_dim=layer.input_dim, output_dim=layer.output_dim,
        embeddings_initializer=getattr(layer, f"{prefix}_initializer"),
        embeddings_regularizer=getattr(layer, f"{prefix}_regularizer"),
        embeddings_constraint=getattr(layer, f"{prefix}_constraint"),
        mask_zero=layer.mask_zero,
        lora_rank=layer.lora_rank if layer.lora_enabled else None,
        lora_alpha=layer.lora_alpha if layer.lora_enabled else None,
        quantization_config=layer.quantization_config,
        name=layer.name, dtype=layer.dtype_policy,
        trainable=layer.trainable,
    )
    cls = _keras_class(reverse)
    if reverse:
        kwargs.update(tie_weights=getattr(layer, "tie_weights", True),
                      reverse_dtype=layer.reverse_dtype,
                      logit_soft_cap=layer.logit_soft_cap)
    new = cls(**kwargs)
    new.build()
    if layer.lora_enabled:
        # Keras's `build` enables LoRA with alpha = rank.
        new.lora_alpha = layer.lora_alpha
    ours = {name.replace(prefix, "embeddings", 1): variable
            for name, variable in layer._stored_variables().items()}
    _copy_by_name(ours, {v.name: v for v in new.weights}, layer.name)
    return new


def _copy_by_name(source, target, name):
    if set(source) != set(target):
        raise ValueError(  # A Keras version with other variables.
            f"Cannot copy the variables of layer '{name}': it stores "
            f"{sorted(source)}, its copy {sorted(target)}.")
    for key, variable in target.items():
        variable.assign(keras.ops.convert_to_numpy(source[key]))


def _is_ours(obj):
    return type(obj).__module__.startswith("keras_embedlab.")


def _our_model_classes(model):
    """The model classes and optimizer of keras_embedlab that a clone of
    `model` would keep (`clone_model` keeps a Functional subclass)."""
    problems = []
    models = [model, *(layer for layer in model._flatten_layers()
                       if _is_functional(layer) and layer is not model)]
    for inner in models:
        if _is_ours(inner):
            problems.append(_Problem(
                inner.name, "class", type(inner).__name__,
                "the converted model would keep this keras_embedlab class.",
                "Convert `keras.Model(model.inputs, model.outputs)` (the "
                "same graph, as a plain Keras model) instead."))
    optimizer = getattr(model, "optimizer", None)
    if model.compiled and _is_ours(optimizer):
        problems.append(_Problem(
            model.name, "optimizer", type(optimizer).__name__,
            "the converted model would be compiled with this keras_embedlab "
            "optimizer.",
            "Compile the model with a Keras optimizer (e.g. "
            "keras.optimizers.Adam for LazyAdam) before converting, or "
            "convert an uncompiled copy."))
    return problems


def to_keras(model):
    """An equal model made only of Keras's own layers, for running and
    saving where keras_embedlab is not installed.

    Each `LookupEmbedding`, `PretrainedEmbedding` and `OneHotDense` becomes
    a `keras.layers.Embedding`, or a `keras.layers.ReversibleEmbedding`
    where it is called with `reverse=True` or sets `tie_weights=False`,
    `reverse_dtype` or `logit_soft_cap`. Weights are copied as they are
    stored, so outputs are equal: float, int8 and int4 tables (every int4
    block size) keep their integers and scales, LoRA stays LoRA (Keras's
    layer computes the same `table + lora_alpha / lora_rank * a @ b`; as in
    Keras, saving merges it into the table). The other layers are copies
    with the same weights; nested Functional and Sequential models are
    converted too, shared layers stay shared. A Functional subclass with
    its own constructor (a keras-hub backbone) comes back as a plain
    Functional model with the same graph (as `keras.models.clone_model`
    does); a compiled model stays compiled.

    What Keras's layers cannot express raises one `ValueError` listing
    every layer and option: bags (`combiner`), `padding_idx`, `max_norm`,
    `invalid_ids="zeros"`, a `OneHotDense` with an activation or a
    non-zero bias, a quantized table with LoRA used in reverse (Keras's
    quantized reverse projection leaves LoRA out) or with `mask_zero`
    where Keras's quantized layer gives no mask (3.15's
    `ReversibleEmbedding`), our layers inside
    custom layers, and our model classes (`RowSparseModel`) or optimizers
    in the model.

    Converted as they are, with these consequences:
    - `invalid_ids="error"`: Keras's layer does not refuse invalid ids
      (depending on the backend it raises, clamps or gives NaN), so ship
      only with valid ids.
    - `sparse=True`: the Keras layer trains its table densely.
    - `PretrainedEmbedding`: the vocabulary stays behind (the ids are
      the same); keep it with your `StringLookup`.

    Args:
        model: A built Functional or Sequential model, or one of our
            layers (built).

    Returns:
        The converted model (or layer); `model` is left as it is.
    """
    if isinstance(model, EmbeddingBase):
        problems = _to_keras_problems(model)
        layers = [model]
    else:
        _check_model(model, "to_keras")
        problems = []
        layers = _walk(model, lambda x: isinstance(x, EmbeddingBase),
                       problems, "keras_embedlab layer")
        problems.extend(_our_model_classes(model))
        for layer in layers:
            problems.extend(_to_keras_problems(layer))
    if problems:
        raise ValueError(
            "`to_keras` cannot express these layers with Keras's own "
            f"classes ({len(problems)} problem(s)):\n"
            + "\n".join(str(p) for p in problems))
    if isinstance(model, EmbeddingBase):
        return _to_keras_layer(model)
    return _clone(model, lambda layer: _to_keras_layer(layer)
                  if isinstance(layer, EmbeddingBase) else None)


# Keras's -> ours.

def _is_keras_embedding(layer):
    return isinstance(layer, keras.layers.Embedding)


def _from_keras_layer(layer, invalid_ids):
    if not layer.built:
        raise ValueError(
            f"`from_keras` copies weights, so layer '{layer.name}' must be "
            "built. Build the model (call it on some ids) first.")
    lora = layer.lora_enabled
    # A Keras layer that gives no mask despite `mask_zero` (3.15's
    # quantized `ReversibleEmbedding`) becomes one without: same outputs.
    mask_zero = layer.mask_zero and _gives_mask(layer)
    new = LookupEmbedding(
        layer.input_dim, layer.output_dim,
        embeddings_initializer=layer.embeddings_initializer,
        embeddings_regularizer=layer.embeddings_regularizer,
        embeddings_constraint=layer.embeddings_constraint,
        mask_zero=mask_zero,
        lora_rank=layer.lora_rank if lora else None,
        lora_alpha=layer.lora_alpha if lora else None,
        quantization_config=layer.quantization_config,
        tie_weights=getattr(layer, "tie_weights", True),
        reverse_dtype=getattr(layer, "reverse_dtype", None),
        logit_soft_cap=getattr(layer, "logit_soft_cap", None),
        invalid_ids=invalid_ids,
        name=layer.name, dtype=layer.dtype_policy, trainable=layer.trainable,
    )
    new.build()
    _copy_by_name({v.name: v for v in layer.weights},
                  new._stored_variables(), layer.name)
    return new


def from_keras(model, invalid_ids="error"):
    """`model` with its Keras `Embedding`/`ReversibleEmbedding` layers
    replaced by `LookupEmbedding`s: the way back from `to_keras`, or into
    keras_embedlab from any Keras model (e.g. a keras-hub backbone).

    Every option of Keras's layers has its equal (`mask_zero`, LoRA with
    its rank and alpha, int8 and int4 storage, `tie_weights`,
    `reverse_dtype`, `logit_soft_cap`); weights are copied as they are
    stored, so outputs for valid ids are equal. Where Keras's layer gives
    no mask despite `mask_zero=True` (Keras 3.15's quantized
    `ReversibleEmbedding`), the new layer has `mask_zero=False`, so that
    the layers after it still see what they saw. Subclasses of
    `keras.layers.Embedding` are converted as an `Embedding`. Nested
    Functional and Sequential models are converted too; an Embedding
    inside another (custom) layer raises.

    Args:
        model: A built Functional or Sequential model, or a built Keras
            `Embedding` layer.
        invalid_ids: `"error"` (default) or `"zeros"`: what the new layers
            do with ids outside `[0, input_dim)` (Keras's layer leaves
            that to the backend).

    Returns:
        The converted model (or layer); `model` is left as it is.
    """
    check_choice("invalid_ids", invalid_ids, INVALID_IDS_MODES)
    if _is_keras_embedding(model):
        return _from_keras_layer(model, invalid_ids)
    _check_model(model, "from_keras")
    problems = []
    _walk(model, _is_keras_embedding, problems, "Keras Embedding")
    if problems:
        raise ValueError(
            "`from_keras` cannot replace these layers "
            f"({len(problems)} problem(s)):\n"
            + "\n".join(str(p) for p in problems))
    return _clone(model, lambda layer: _from_keras_layer(layer, invalid_ids)
                  if _is_keras_embedding(layer) else None)


# Weights files across the two sides.

def _leaves(model):
    """`model`'s layers in order, nested Functional/Sequential models
    opened."""
    for layer in model.layers:
        if _is_functional(layer):
            yield from _leaves(layer)
        else:
            yield layer


def _names(layer):
    """`{Keras's variable name: variable}` of an embedding layer, ours or
    Keras's, for a copy between the two."""
    if isinstance(layer, EmbeddingBase):
        prefix = "kernel" if isinstance(layer, OneHotDense) else "embeddings"
        return {name.replace(prefix, "embeddings", 1): variable
                for name, variable in layer._stored_variables().items()}
    return {v.name: v for v in layer.weights}


def load_converted_weights(model, filepath):
    """Loads into `model` a weights file (`save_weights`) written by the
    same model on the other side of `to_keras`/`from_keras`.

    Keras keys the variables in a weights file by each layer's class, so a
    file written with `keras.layers.Embedding` does not load into a model
    of `LookupEmbedding`s, and the reverse. This loads the file into
    `model`'s twin on the other side (`to_keras(model)` if `model` has our
    layers, else `from_keras(model)`), with Keras's own loading, then
    copies the twin's variables into `model` as they are stored.

    Args:
        model: A built Functional or Sequential model.
        filepath: A `.weights.h5` file written by the converted twin of a
            model of the same architecture.
    """
    _check_model(model, "load_converted_weights")
    ours = any(isinstance(layer, EmbeddingBase) for layer in _leaves(model))
    twin = to_keras(model) if ours else from_keras(model)
    twin.load_weights(filepath)
    for mine, theirs in zip(_leaves(model), _leaves(twin)):
        if isinstance(mine, EmbeddingBase) != isinstance(theirs,
                                                         EmbeddingBase):
            _copy_by_name(_names(theirs), _names(mine), mine.name)
        elif mine.weights:
            mine.set_weights(theirs.get_weights())
