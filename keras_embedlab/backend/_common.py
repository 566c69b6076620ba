"""What every backend shares: the defaults a backend without ragged tensors,
sparse gradients or traced rows answers, and `layer_gradients` set-up.

The invalid-id rule is `keras_embedlab.ids.reader`'s; backends only refuse.
"""

import contextlib
import sys

import keras


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


def gather_rows(table, ids):
    return keras.ops.take(table, ids, axis=0)


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
