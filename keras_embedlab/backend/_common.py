"""What every backend shares: the defaults a backend without ragged tensors,
sparse gradients or traced rows answers, and `layer_gradients` set-up.

The invalid-id rule is `keras_embedlab.ids.reader`'s; backends only refuse.
"""

import contextlib
import functools
import sys

import keras
import numpy as np


def gradient_inputs(layer, ids, cotangent, **call_kwargs):
    """`layer_gradients` set-up: ids and cotangent as tensors, layer built."""
    ids = keras.ops.convert_to_tensor(ids)
    cotangent = keras.ops.convert_to_tensor(cotangent, layer.compute_dtype)
    if not layer.built:
        layer.build(tuple(ids.shape))
    return ids, cotangent


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


def adam_rows(m_rows, v_rows, grads, beta_1, beta_2, alpha, epsilon):
    """Adam's rule for gathered rows: `(m, v, change of the rows)`.

    `m + (g - m) * (1 - beta_1)`, `v + (g**2 - v) * (1 - beta_2)` and
    `m * -alpha / (sqrt(v) + epsilon)`, in `keras.ops` (XLA fuses them on
    JAX). A backend may overwrite `m_rows` and `v_rows` (gathered copies).
    """
    ops = keras.ops
    m_rows = m_rows + (grads - m_rows) * (1 - beta_1)
    v_rows = v_rows + (ops.square(grads) - v_rows) * (1 - beta_2)
    return m_rows, v_rows, m_rows * -alpha / (ops.sqrt(v_rows) + epsilon)


def gather_rows(table, ids):
    return keras.ops.take(table, ids, axis=0)


def bag_sum(table, ids, weights):
    """A fused `sum(weights[..., None] * table[ids], axis=-2)` for 2-D ids
    in range, or `None` where the backend has none or it would be slower
    (the caller gathers)."""
    return None


def int4_rows(packed, channels, dtype, scale=None, portable=False):
    """Rows of int4 values packed two a byte along the last axis (low
    nibble first, as `keras.quantizers.pack_int4`) as floats of `dtype`,
    divided by `scale[..., None]` when `scale` is given: the values and
    the arithmetic of Keras's int4 `Embedding` (`unpack_int4`, cast, then
    divide). Bytes are read two at a time as uint16 indices into
    `int4_pair_table` (one gather, no transposes); an odd number of packed
    bytes is unpacked with shifts (an arithmetic right shift sign-extends:
    `(b << 4) >> 4` is the low nibble as a signed int4, `b >> 4` the high
    one). `portable`: for a graph a serving format will carry, whose
    converters have no bitcast (ONNX, OpenVINO): one gather per byte from
    a 256 x 2 table instead."""
    ops = keras.ops
    shape = tuple(ops.shape(packed)[:-1]) + (-1,)
    if portable:
        index = ops.add(ops.cast(packed, "int32"), 128)
        values = ops.take(ops.cast(_nibble_table(), dtype), index, axis=0)
    elif packed.shape[-1] % 2:
        low = ops.right_shift(ops.left_shift(packed, 4), 4)
        high = ops.right_shift(packed, 4)
        values = ops.cast(ops.stack([low, high], axis=-1), dtype)
    else:
        pairs = ops.cast(ops.view(packed, "uint16"), "int32")
        values = ops.take(ops.cast(int4_pair_table(), dtype), pairs, axis=0)
    values = ops.reshape(values, shape)
    if 2 * packed.shape[-1] != channels:
        values = values[..., :channels]
    if scale is None:
        return values
    return ops.divide(values, ops.expand_dims(ops.cast(scale, dtype), -1))


@functools.cache
def _nibble_table():
    """`(256, 2)` float32: the two signed int4 values of each byte, low
    nibble first, indexed by the byte as an int8 plus 128."""
    byte = np.arange(-128, 128).astype("int8")
    low = np.right_shift(np.left_shift(byte, 4), 4)
    return np.stack([low, np.right_shift(byte, 4)], -1).astype("float32")


@functools.cache
def int4_pair_table():
    """`(65536, 4)` float32: the four signed int4 values of each pair of packed
    bytes, indexed by the pair read as a little-endian uint16 (first byte
    low, low nibble first): one gather unpacks two bytes."""
    pair = np.arange(65536, dtype="<u2").view("int8").reshape(-1, 2)
    low = np.right_shift(np.left_shift(pair, 4), 4)
    high = np.right_shift(pair, 4)
    return np.stack([low, high], axis=-1).reshape(-1, 4).astype("float32")


def variable_handle(variable):
    return variable


def keeps_int64():
    """Whether int64 tensors keep 64 bits (JAX without x64: no)."""
    return True


def nonnegative_divide(x, divisor):
    """`floor_divide(x, divisor)` for `x >= 0` and a positive Python int
    `divisor` (there truncation is flooring)."""
    return keras.ops.floor_divide(
        x, keras.ops.convert_to_tensor(divisor, dtype=x.dtype))


def exporting_to_openvino():
    """Whether Keras's `export_openvino` is tracing the caller: OpenVINO's
    CPU runtime computes int64 arithmetic in 32 bits, so a program that
    needs 64-bit integers cannot go there. (No tracer says which format
    it traces for: the call stack does.)"""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "export_openvino"
                and frame.f_globals.get("__name__", "").startswith("keras")):
            return True
        frame = frame.f_back
    return False
