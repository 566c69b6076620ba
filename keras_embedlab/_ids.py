"""Shared argument validation and id handling for the embedding layers.

Both layers route ids through `prepare_ids` and differ only in how they turn
ids into rows (`take_rows` versus `one_hot_rows` and `matmul`), so they agree
on dtypes, masking and invalid ids by construction.
"""

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


def _valid_and_safe(ids, input_dim):
    """`valid` mask, and ids with invalid ones replaced by 0 (never wrapped)."""
    valid = ops.logical_and(
        ops.greater_equal(ids, 0), ops.less(ids, input_dim)
    )
    return valid, ops.where(valid, ids, ops.zeros_like(ids))


def _zero_invalid(values, valid):
    """Zeros the rows of `values` (ids shape + one axis) whose id is invalid.

    The `cond` skips the pass over `values` when every id is valid, which is
    almost always: the common case costs two passes over the ids only.
    """
    return ops.cond(
        ops.all(valid),
        lambda: values,
        lambda: ops.where(
            ops.expand_dims(valid, -1), values, ops.zeros_like(values)
        ),
    )


def take_rows(table, ids, input_dim):
    """`table[ids]`, with an all-zero row for each invalid id."""
    if _backend.has_fill_take():
        return _backend.fill_take(table, ids)
    valid, safe_ids = _valid_and_safe(ids, input_dim)
    # `take` gathers rows directly: no one-hot matrix, and the gradient only
    # has non-zero rows for the ids in the batch.
    return _zero_invalid(ops.take(table, safe_ids, axis=0), valid)


def one_hot_rows(ids, input_dim, dtype):
    """`one_hot(ids)`, with an all-zero vector for each invalid id."""
    valid, safe_ids = _valid_and_safe(ids, input_dim)
    one_hot = ops.one_hot(safe_ids, input_dim, dtype=dtype)
    return _zero_invalid(one_hot, valid)


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
