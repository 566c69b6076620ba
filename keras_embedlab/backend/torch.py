"""PyTorch: what `keras.ops` cannot do.

- The invalid-id check: one reduction on the device and a single scalar
  read back (Keras runs PyTorch eagerly; under `torch.compile` the check is
  a graph break, so it still raises).
- A bag sum that never holds the gathered `(batch, bag, dim)` rows:
  `embedding_bag(mode="sum", per_sample_weights=...)`.
- Row-sparse training is not supported yet (`ROW_SPARSE_TRAINING`).
"""

import keras
import torch
import torch.nn.functional as F

from keras_embedlab.backend._common import (  # noqa: F401
    check_on_host,
    densify_ragged_bags,
    fill_take,
    gather_rows,
    gradient_inputs,
    indexed_slices,
    is_ragged,
    value_and_grad,
    variable_handle,
)

SUPPORTS_JIT_WITH_CHECKS = True
ROW_SPARSE_TRAINING = False
TRACES_ROWS = False
FILL_TAKE = False


def all_ids_valid(ids, input_dim):
    """Python bool: every (signed integer) id is in `[0, input_dim)`.

    One `aminmax` and one read of its two numbers: the fixed cost of a
    PyTorch eager call is per op, and this runs on every call. (PyTorch has
    no unsigned 64-bit max, the one reduction TensorFlow and JAX use.)
    """
    if ids.numel() == 0 or ids.device.type == "meta":
        return True  # No id, or Keras's symbolic pass (no values).
    lowest, highest = torch.stack(torch.aminmax(ids)).tolist()
    return lowest >= 0 and highest < input_dim


def fail_in_graph(rows, ids, input_dim, layer_name):
    return rows  # `check_ids` raises in Python.


def checked_on_host(ids):
    return True  # The check always runs in Python (a graph break).


def check_ids(ids, input_dim, layer_name, valid=None):
    # Only a bad batch is copied to the host, to name its first invalid id.
    ok = all_ids_valid(ids, input_dim) if valid is None else bool(
        keras.ops.all(valid))
    if not ok:
        check_on_host(keras.ops.convert_to_numpy(ids), input_dim, layer_name)
    return ids


def dense_gradient(table):
    return table  # PyTorch gradients of a lookup are dense already.


def fused_bag_sum(table, ids, weights):
    """`sum(weights[..., None] * table[ids], axis=-2)` in one kernel.

    Ids out of range must have weight 0: they are read as row 0.
    """
    if ids.shape[-1] == 0:
        return None
    table = keras.ops.convert_to_tensor(table)
    bag = ids.shape[-1]
    valid = (ids >= 0) & (ids < table.shape[0])
    flat_ids = torch.where(valid, ids, 0).reshape(-1, bag)
    flat_weights = weights.to(table.dtype).reshape(-1, bag)
    sums = F.embedding_bag(flat_ids, table, mode="sum",
                           per_sample_weights=flat_weights)
    return sums.reshape(*ids.shape[:-1], table.shape[-1])


# Row-sparse training: not on PyTorch yet.


def _not_supported(*args, **kwargs):
    raise NotImplementedError("Row-sparse training runs on TensorFlow and "
                              "JAX only.")


combine_rows = read_rows = write_rows = _not_supported


def layer_gradients(layer, ids, cotangent, compiled=False, **call_kwargs):
    # Eager, as Keras runs PyTorch (`compiled` changes nothing here).
    ids, cotangent = gradient_inputs(layer, ids, cotangent)
    for v in layer.trainable_weights:
        v.value.grad = None
    torch.sum(layer(ids, **call_kwargs) * cotangent).backward()
    return [v.value.grad.detach().cpu().numpy()
            for v in layer.trainable_weights]
