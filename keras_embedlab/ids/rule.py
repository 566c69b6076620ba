"""The invalid-id rule, its one error, and the id dtypes a layer takes.

An id is valid if it is a whole number in `[0, input_dim)`. `valid_ids` is
the rule, written once: it runs on NumPy arrays (host checks) or through
`keras.ops` (compiled checks), so both apply the same rule. Every message
about an invalid id is `invalid_ids_message`. No backend import: the
backends (`keras_embedlab.backend`) import this module.
"""

import keras
import numpy as np


def check_id_dtype(dtype, layer_name):
    """Raises `TypeError` unless ids of `dtype` can be looked up."""
    if dtype == "bool" or "int" in dtype or "float" in dtype:
        return
    raise TypeError(
        f"Layer '{layer_name}' takes integer ids. Received ids of dtype "
        f"{dtype}. Map strings to ids first, e.g. with "
        "keras.layers.StringLookup or keras.layers.TextVectorization."
    )


class InvalidIdError(ValueError):
    """An id outside `[0, input_dim)`, or a float id that is not one."""


def invalid_ids_message(layer_name, input_dim, offending_id):
    """The one wording of the invalid-id error, on every backend."""
    return (
        f"Layer '{layer_name}' received an invalid id: {offending_id}. Ids "
        f"must be whole numbers in the valid range [0, {input_dim}) "
        f"(input_dim={input_dim}): fix the ids, increase `input_dim`, or "
        "pass invalid_ids='zeros' to map invalid ids to all-zero rows."
    )


def valid_ids(ids, input_dim, xp):
    """Bool mask of the ids in `[0, input_dim)`, in the ids' own dtype.

    The invalid-id rule, written once: `xp` is `numpy` for host arrays or
    `keras.ops` for tensors. Float ids count only if they are whole numbers
    (NaN and infinities fail every comparison); unsigned ids are compared
    without a narrowing cast, so 2**32 + 1 never wraps to row 1.
    """
    dtype = keras.backend.standardize_dtype(ids.dtype)
    if "float" in dtype:
        whole = xp.equal(xp.floor(ids), ids)
        return xp.logical_and(whole, xp.logical_and(
            xp.greater_equal(ids, 0), xp.less(ids, input_dim)))
    if dtype.startswith("uint") or dtype == "bool":
        if xp is np:
            return np.less(ids, input_dim)
        # Tensors are compared as int64: PyTorch has no unsigned
        # comparisons, and Keras's type promotion can narrow uint64. The
        # cast keeps every invalid id invalid (2**63 and above turn
        # negative; so do uint32 ids from 2**31 on JAX without x64).
        ids = xp.cast(ids, "int64")
    return xp.logical_and(xp.greater_equal(ids, 0), xp.less(ids, input_dim))


def check_on_host(ids, input_dim, layer_name, valid=None, note=""):
    """Raises `InvalidIdError` naming the first invalid id, as received.

    `note` is added to the message (what a backend needs to say more).
    """
    ids = np.asarray(ids)
    if valid is None:
        valid = valid_ids(ids, input_dim, np)
    valid = np.asarray(valid)
    if not valid.all():
        offending = ids[~valid].flat[0].item()
        raise InvalidIdError(
            invalid_ids_message(layer_name, input_dim, offending) + note
        )


def as_unsigned(ids):
    """Negative ids become huge: one max then finds any id out of range."""
    dtype = keras.backend.standardize_dtype(ids.dtype)
    return keras.ops.cast(ids, "uint64" if dtype == "int64" else "uint32")


def all_ids_valid(ids, input_dim):
    """Scalar bool: every (signed integer) id is in `[0, input_dim)`: one
    reduction, the largest id as an unsigned integer (TensorFlow, JAX)."""
    return keras.ops.less(keras.ops.max(as_unsigned(ids), initial=0),
                          input_dim)
