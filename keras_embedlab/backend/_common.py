"""The invalid-id rule and its error, shared by the three backends.

Backend-agnostic: `valid_ids` runs on NumPy arrays or through `keras.ops`,
so host checks and compiled checks apply the same rule.
"""

import contextlib

import keras
import numpy as np


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


def gradient_inputs(layer, ids, cotangent, **call_kwargs):
    """`layer_gradients` set-up: ids and cotangent as tensors, layer built."""
    ids = keras.ops.convert_to_tensor(ids)
    cotangent = keras.ops.convert_to_tensor(cotangent, layer.compute_dtype)
    if not layer.built:
        layer.build(tuple(ids.shape))
    return ids, cotangent

def all_ids_valid(ids, input_dim):
    """Scalar bool: every (signed integer) id is in `[0, input_dim)`: one
    reduction, the largest id as an unsigned integer (TensorFlow, JAX)."""
    return keras.ops.less(keras.ops.max(as_unsigned(ids), initial=0),
                          input_dim)


# What a backend without ragged tensors or sparse gradients answers.


def is_ragged(x):
    return False


def densify_ragged_bags(ids, bag_weights, dtype):
    raise NotImplementedError("Ragged tensors are TensorFlow's.")


def map_ragged_values(ids, fn):
    raise NotImplementedError("Ragged tensors are TensorFlow's.")


def is_sparse(x):
    return False


def densify_sparse(x):
    return x


def indexed_slices(gradient):
    return None


def fill_take(table, ids, fill_value=0):
    raise NotImplementedError("JAX only (`FILL_TAKE`).")


def value_and_grad(*args, **kwargs):
    raise NotImplementedError("Only JAX's row-sparse step traces rows.")


def row_leaf(rows):
    raise NotImplementedError("Only PyTorch's row-sparse step has leaves.")


def gradients(loss, tensors):
    raise NotImplementedError("Only PyTorch's row-sparse step has leaves.")


def no_grad():
    return contextlib.nullcontext()


def gather_rows(table, ids):
    return keras.ops.take(table, ids, axis=0)


def variable_handle(variable):
    return variable
