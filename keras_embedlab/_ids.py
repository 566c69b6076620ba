"""Shared argument validation and id handling for the embedding layers.

Both layers route ids through `prepare_ids` and differ only in how they turn
ids into rows (`take_rows` versus `one_hot_rows` and `matmul`), so they agree
on dtypes, masking and invalid ids by construction.
"""

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_embedlab import _backend

INVALID_IDS_MODES = ("error", "zeros")


def check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. "
            f"Received: {name}={value!r} (of type {type(value).__name__})."
        )


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be True or False. "
            f"Received: {name}={value!r} (of type {type(value).__name__})."
        )


def check_invalid_ids(value):
    if not isinstance(value, str) or value not in INVALID_IDS_MODES:
        raise ValueError(
            "`invalid_ids` must be one of "
            f"{', '.join(repr(m) for m in INVALID_IDS_MODES)}. "
            f"Received: invalid_ids={value!r}."
        )


def check_padding_idx(padding_idx, input_dim):
    if padding_idx is None:
        return
    if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
            or not 0 <= padding_idx < input_dim):
        raise ValueError(
            "`padding_idx` must be None or an integer id in [0, input_dim) "
            f"= [0, {input_dim}). Received: padding_idx={padding_idx!r} "
            f"(of type {type(padding_idx).__name__})."
        )


def zero_padding(values, ids, padding_idx):
    """Zeros the rows of `values` whose id is `padding_idx` (if set).

    A `where`, so those rows also pass no gradient back: the table's padding
    row never trains.
    """
    if padding_idx is None:
        return values
    is_padding = ops.expand_dims(ops.equal(ids, padding_idx), -1)
    return ops.where(is_padding, ops.zeros_like(values), values)


def as_weight_list(weights):
    """`weights=` as Keras accepts it: an array or a list of arrays."""
    if isinstance(weights, (list, tuple)):
        return list(weights)
    return [weights]


def prepare_ids(ids, input_dim, invalid_ids, layer_name):
    """Int ids, checked when `invalid_ids="error"` (see `_backend.check_ids`).

    Invalid ids that get past the check (`"zeros"`, or compiled code that
    cannot raise) are handled by `take_rows` and `one_hot_rows`.
    """
    ids = ops.convert_to_tensor(ids)
    if standardize_dtype(ids.dtype) not in ("int32", "int64"):
        ids = ops.cast(ids, "int32")
    if invalid_ids == "error":
        ids = _backend.check_ids(ids, input_dim, layer_name)
    return ids


def _host_ids(ids, input_dim, invalid_ids, layer_name):
    """NumPy ids, checked before any conversion can change them.

    JAX without `jax_enable_x64` truncates int64 to int32, so an id of 2**32
    would become 0: checked here, invalid ids raise (`"error"`) or become -1,
    which stays invalid in every dtype (`"zeros"`).
    """
    if ids.dtype.kind not in "iu":
        return ids
    valid = (ids >= 0) & (ids < input_dim)
    if valid.all():
        return ids
    if invalid_ids == "error":
        _backend.check_on_host(ids, input_dim, layer_name)
    return np.where(valid, ids, -1).astype("int32")


def _rows(lookup, ids, input_dim, invalid_ids, layer_name):
    """`lookup(ids)`, with an all-zero row for each invalid id.

    Valid batches, almost all of them, cost a reduction over the ids and a
    branch (`_backend.all_ids_valid`). Only a bad batch pays for replacing
    invalid ids by 0 (never wrapping them) and zeroing rows.
    """
    def bad_batch():
        valid = ops.logical_and(
            ops.greater_equal(ids, 0), ops.less(ids, input_dim)
        )
        rows = lookup(ops.where(valid, ids, ops.zeros_like(ids)))
        rows = ops.where(ops.expand_dims(valid, -1), rows,
                         ops.zeros_like(rows))
        if invalid_ids == "error":
            rows = _backend.fail_in_graph(rows, ids, input_dim, layer_name)
        return rows

    return ops.cond(_backend.all_ids_valid(ids, input_dim),
                    lambda: lookup(ids), bad_batch)


def take_rows(table, ids, input_dim, invalid_ids, layer_name):
    """`table[ids]`, with an all-zero row for each invalid id."""
    if _backend.has_fill_take():
        return _backend.fill_take(table, ids)
    # `take` gathers rows directly: no one-hot matrix, and the gradient only
    # has non-zero rows for the ids in the batch.
    return _rows(lambda i: _backend.gather_rows(table, i), ids, input_dim,
                 invalid_ids, layer_name)


def one_hot_rows(ids, input_dim, dtype, invalid_ids, layer_name):
    """`one_hot(ids)`, with an all-zero vector for each invalid id."""
    return _rows(lambda i: ops.one_hot(i, input_dim, dtype=dtype), ids,
                 input_dim, invalid_ids, layer_name)


def embedding_mask(ids, mask_zero):
    if not mask_zero:
        return None
    return ops.not_equal(ids, 0)


def check_built(layer, method):
    if not layer.built:
        raise ValueError(
            f"`{method}` needs a built layer so it can copy its weights. "
            f"Layer '{layer.name}' is not built yet: call it on some ids or "
            "call `layer.build()` first."
        )


class IdsLayer(keras.layers.Layer):
    """What both layers share: id arguments, masks and output shapes."""

    def __init__(self, input_dim, output_dim, mask_zero, invalid_ids,
                 padding_idx=None, **kwargs):
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        check_bool("mask_zero", mask_zero)
        check_invalid_ids(invalid_ids)
        check_padding_idx(padding_idx, input_dim)
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self.invalid_ids = invalid_ids
        self.padding_idx = padding_idx
        if invalid_ids == "error" and keras.backend.backend() == "tensorflow":
            # XLA drops assertions: keep Keras's compiled steps off XLA.
            self.supports_jit = False

    def __call__(self, inputs, *args, **kwargs):
        # Before Keras converts them (and JAX truncates int64 to int32).
        if isinstance(inputs, (np.ndarray, list, tuple)):
            inputs = _host_ids(np.asarray(inputs), self.input_dim,
                               self.invalid_ids, self.name)
        return super().__call__(inputs, *args, **kwargs)

    def _prepare_ids(self, inputs):
        return prepare_ids(inputs, self.input_dim, self.invalid_ids, self.name)

    def compute_mask(self, inputs, mask=None):
        return embedding_mask(inputs, self.mask_zero)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )
