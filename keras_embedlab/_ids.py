"""Shared argument validation and id handling for the embedding layers.

Both layers route ids through `prepare_ids` and differ only in how they turn
valid ids into rows (`take` versus one-hot `matmul`), so they agree on
dtypes, masking and invalid ids by construction.
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
    """Returns `(safe_ids, valid)`.

    `safe_ids` are int ids in `[0, input_dim)` (invalid ones replaced by 0), so
    no backend ever wraps, clamps or fills them. `valid` is a boolean tensor of
    the same shape, or `None` when every id is known to be checked. With
    `invalid_ids="error"`, invalid ids raise (see `_backend.check_ids`); under
    compiled code that cannot raise, they still give zero rows.
    """
    ids = ops.convert_to_tensor(ids)
    if standardize_dtype(ids.dtype) not in ("int32", "int64"):
        ids = ops.cast(ids, "int32")
    if invalid_ids == "error":
        ids = _backend.check_ids(ids, input_dim, layer_name)
    valid = ops.logical_and(
        ops.greater_equal(ids, 0), ops.less(ids, input_dim)
    )
    safe_ids = ops.where(valid, ids, ops.zeros_like(ids))
    return safe_ids, valid


def zero_invalid(values, valid):
    """Zeros the rows of `values` (ids shape + one axis) whose id is invalid."""
    return ops.where(
        ops.expand_dims(valid, -1), values, ops.zeros_like(values)
    )


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
