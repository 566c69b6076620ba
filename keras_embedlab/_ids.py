"""Ids: dtypes, the invalid-id rule, and rows that never belong to another id.

Both layers route ids through `prepare_ids` and differ only in how they turn
ids into rows (`take_rows` versus `one_hot_rows` and `matmul`), so they agree
on dtypes, masking and invalid ids by construction.

The rule is written once, in `backend/_common.py` (`valid_ids`, with its
one message): an id is valid if it is a whole number in `[0, input_dim)`.
Every place ids are checked or kept from reaching a row, and why:

    where               runs for                 why there
    ------------------  -----------------------  ----------------------------
    host_ids            NumPy ids and lists      before Keras converts them:
    (EmbeddingBase.                              JAX makes int64 int32 and
    __call__)                                    uint64 uint32 (2**32 + 1
                                                 would arrive as 1)
    prepare_ids         unsigned, float, bool    before the cast to int32
                        tensors                  (NaN, 2**32 + 1 must not
                                                 become rows)
    backend.check_ids   every call, "error"      raises on the host when
                                                 eager; under jax.jit via a
                                                 callback; on PyTorch in
                                                 Python (a graph break)
    _rows, bad-batch    graphs and "zeros":      only a bad batch pays for
    branch              TensorFlow and PyTorch   the assertion and zeroing;
                        lookups, OneHotDense     XLA drops the assertion,
                        everywhere               leaving zero rows
    backend.fill_take   JAX lookups              the gather fills invalid
                                                 ids with zeros itself
    _row_math.          bags                     invalid ids get weight 0:
    bag_weights_of                               they count nowhere
    backend.            PyTorch bags             invalid ids are read as row
    fused_bag_sum                                0 with weight 0
    backend.            row-sparse training      rows outside the table are
    combine_rows                                 never written
"""

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_embedlab import backend


def check_id_dtype(dtype, layer_name):
    """Raises `TypeError` unless ids of `dtype` can be looked up."""
    if dtype == "bool" or "int" in dtype or "float" in dtype:
        return
    raise TypeError(
        f"Layer '{layer_name}' takes integer ids. Received ids of dtype "
        f"{dtype}. Map strings to ids first, e.g. with "
        "keras.layers.StringLookup or keras.layers.TextVectorization."
    )


def prepare_ids(ids, input_dim, invalid_ids, layer_name):
    """Int ids, checked when `invalid_ids="error"` (`backend.check_ids`).

    int32 and int64 ids keep their dtype. Others (unsigned, float, bool, as
    `keras.layers.Embedding` accepts them) are checked in their own dtype
    before any narrowing cast, and become int32 with -1 for each invalid id,
    so that 2**32 + 1 or NaN never reaches the table as a valid row.
    Invalid ids that get past the check (`"zeros"`, or compiled code that
    cannot raise) are handled by `take_rows` and `one_hot_rows`.
    """
    ids = ops.convert_to_tensor(ids)
    dtype = standardize_dtype(ids.dtype)
    check_id_dtype(dtype, layer_name)
    if dtype in ("int32", "int64"):
        if invalid_ids == "error":
            ids = backend.check_ids(ids, input_dim, layer_name)
        return ids
    valid = backend.valid_ids(ids, input_dim, ops)
    if invalid_ids == "error":
        ids = backend.check_ids(ids, input_dim, layer_name, valid)
    if "float" not in dtype:
        ids = ops.cast(ids, "int64")  # Never narrowing: see `valid_ids`.
    safe = ops.cast(ops.where(valid, ids, ops.zeros_like(ids)), "int32")
    return ops.where(valid, safe, ops.full_like(safe, -1))


def host_ids(ids, input_dim, invalid_ids, layer_name):
    """NumPy ids as int32 or int64, checked before any conversion.

    Invalid ids raise (`"error"`) or become -1, which stays invalid in every
    dtype (`"zeros"`). Unsigned, float and bool ids that are valid become
    int32.
    """
    if ids.dtype.kind not in "biuf":
        check_id_dtype(str(ids.dtype), layer_name)
    valid = backend.valid_ids(ids, input_dim, np)
    if not valid.all():
        if invalid_ids == "error":
            backend.check_on_host(ids, input_dim, layer_name, valid)
        return np.where(valid, ids, -1).astype("int32")
    if ids.dtype.kind == "i":
        return ids
    return ids.astype("int32")


def _rows(lookup, ids, input_dim, invalid_ids, layer_name):
    """`lookup(ids)`, with an all-zero row for each invalid id.

    Valid batches, almost all of them, cost a reduction over the ids and a
    branch (`backend.all_ids_valid`). Only a bad batch pays for replacing
    invalid ids by 0 (never wrapping them) and zeroing rows. In `"error"`
    mode, ids that `prepare_ids` already checked on the host are valid (or
    it raised): they skip the branch, and its second trip to the host.
    Eager calls choose the branch in Python, without `ops.cond`'s overhead.
    """
    def bad_batch():
        valid = backend.valid_ids(ids, input_dim, ops)
        rows = lookup(ops.where(valid, ids, ops.zeros_like(ids)))
        rows = ops.where(ops.expand_dims(valid, -1), rows,
                         ops.zeros_like(rows))
        if invalid_ids == "error":
            rows = backend.fail_in_graph(rows, ids, input_dim, layer_name)
        return rows

    if backend.checked_on_host(ids):
        if invalid_ids == "error" or bool(backend.all_ids_valid(ids,
                                                                input_dim)):
            return lookup(ids)
        return bad_batch()
    return ops.cond(backend.all_ids_valid(ids, input_dim),
                    lambda: lookup(ids), bad_batch)


def lookup_rows(read, ids, input_dim, invalid_ids, layer_name):
    """`read(ids)` for any row reader (quantized tables, LoRA), with an
    all-zero row for each invalid id; `read` only ever sees valid ids."""
    return _rows(read, ids, input_dim, invalid_ids, layer_name)


def take_rows(table, ids, input_dim, invalid_ids, layer_name):
    """`table[ids]`, with an all-zero row for each invalid id."""
    if backend.FILL_TAKE:
        return backend.fill_take(table, ids)
    # `take` gathers rows directly: no one-hot matrix, and the gradient only
    # has non-zero rows for the ids in the batch.
    return _rows(lambda i: backend.gather_rows(table, i), ids, input_dim,
                 invalid_ids, layer_name)


def one_hot_rows(ids, input_dim, dtype, invalid_ids, layer_name):
    """`one_hot(ids)`, with an all-zero vector for each invalid id."""
    return _rows(lambda i: ops.one_hot(i, input_dim, dtype=dtype), ids,
                 input_dim, invalid_ids, layer_name)


def embedding_mask(ids, mask_zero):
    if not mask_zero:
        return None
    return ops.not_equal(ids, 0)
