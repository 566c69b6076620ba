"""How ids become rows: the invalid-id rule, its one error, and the one
row reader, for both layers and every storage.

**The rule.** An id is valid if it is a whole number in `[0, input_dim)`.
`valid_ids` writes it once, for NumPy arrays (host checks) and `keras.ops`
tensors (compiled checks); every message about an invalid id is
`invalid_ids_message`. Backends never apply the rule themselves: they are
handed a `Refusal` (what is invalid, what to say) and supply only the
mechanism that stops a compiled batch (`backend.refuse_in_graph`). In a
graph that a serving format will carry (`backend.serving_graph`), the
rows come from `serving_rows`: there the runtime's own gather refuses.

**The reader.** `prepare_ids` (dtype, narrowing-safe cast, `check_ids`)
and `read_rows` (an all-zero row for each invalid id, around any reader: a
gather, a quantized or LoRA table, a one-hot matrix) are the only way ids
become rows; the row math below them (padding, `max_norm`, combiners) is
what happens to the rows next. Where else ids are kept from reaching a
row: `EmbeddingBase.__call__` checks NumPy ids on the host (`host_ids`,
before JAX narrows int64); JAX's gather fills invalid ids with zeros itself
(`backend.fill_take`); bags give invalid ids weight 0 (`bag_weights_of`,
`backend.fused_bag_sum`); row-sparse training never writes rows outside
the table (`backend.combine_rows`).
"""

import numpy as np
from keras import ops
from keras.backend import result_type as backend_result_type
from keras.backend import standardize_dtype

from keras_embedlab import backend

# The rule, its error and its message.


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
    dtype = standardize_dtype(ids.dtype)
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


def as_unsigned(ids):
    """Negative ids become huge: one max then finds any id out of range."""
    dtype = standardize_dtype(ids.dtype)
    return ops.cast(ids, "uint64" if dtype == "int64" else "uint32")


def all_ids_valid(ids, input_dim):
    """Scalar bool: every (signed integer) id is in `[0, input_dim)`.

    One reduction, the largest id as an unsigned integer, unless the
    backend has a cheaper one (`backend.all_ids_valid`, PyTorch's).
    """
    if backend.all_ids_valid is not None:
        return backend.all_ids_valid(ids, input_dim)
    return ops.less(ops.max(as_unsigned(ids), initial=0), input_dim)


def check_on_host(ids, input_dim, layer_name, valid=None, note=""):
    """Raises `InvalidIdError` naming the first invalid id, as received;
    `note` is added to the message."""
    ids = np.asarray(ids)
    if valid is None:
        valid = valid_ids(ids, input_dim, np)
    valid = np.asarray(valid)
    if not valid.all():
        offending = ids[~valid].flat[0].item()
        raise InvalidIdError(invalid_ids_message(layer_name, input_dim,
                                                 offending) + note)


class Refusal:
    """What a backend needs to refuse a batch of ids in compiled code:
    which ids are invalid (`has_invalid`, `first_invalid`, `valid`) and
    what to say (`error`, `message_parts`). The rule stays here."""

    def __init__(self, ids, input_dim, layer_name, valid=None):
        self.ids = ids
        self.input_dim = input_dim
        self.layer_name = layer_name
        self._valid = valid
        # Whether the caller had the mask already (ids of other dtypes).
        self.valid_given = valid is not None

    def valid(self):
        if self._valid is None:
            self._valid = valid_ids(self.ids, self.input_dim, ops)
        return self._valid

    def has_invalid(self):
        """Scalar bool tensor; for signed ids without a mask, one
        reduction (`all_ids_valid`)."""
        if self._valid is None:
            return ops.logical_not(all_ids_valid(self.ids, self.input_dim))
        return ops.logical_not(ops.all(self._valid))

    def first_invalid(self):
        """The first invalid id, as received (only for a bad batch)."""
        if 0 in tuple(self.ids.shape):
            # No id (the branch that uses this is traced, never taken).
            return ops.zeros((), self.ids.dtype)
        bad = ops.reshape(ops.logical_not(self.valid()), (-1,))
        return ops.take(ops.reshape(self.ids, (-1,)),
                        ops.argmax(ops.cast(bad, "int32")))

    def error(self, offending):
        return InvalidIdError(
            invalid_ids_message(self.layer_name, self.input_dim, offending)
            + backend.INVALID_ID_NOTE
        )

    def cannot_export(self, where):
        """The error of an export whose program could not refuse a batch
        with an invalid id (`where`: the format, and why)."""
        return ValueError(
            f"Layer '{self.layer_name}' has invalid_ids='error', which "
            f"cannot be kept in {where}: its outputs would be silent rows "
            "for invalid ids. Export with invalid_ids='zeros' (set "
            "`layer.invalid_ids = 'zeros'` before exporting: invalid ids "
            "then give all-zero rows), or use a format that refuses them "
            "(see the README's 'Export and serving')."
        )

    def message_parts(self):
        """The message's words before and after the offending id."""
        before, after = invalid_ids_message(self.layer_name, self.input_dim,
                                            "\0").split("\0")
        return before, after + backend.INVALID_ID_NOTE


backend.quiet_callback_errors(InvalidIdError)


# The reader.


def check_ids(ids, input_dim, layer_name, valid=None):
    """`ids`, refused if any is invalid (`invalid_ids="error"`).

    Eager ids are checked on the host (`backend.ids_for_host_check`
    copies them, or on PyTorch only a bad batch); compiled ids are handed
    to the backend with a `Refusal`.
    """
    if backend.checked_on_host(ids):
        host = backend.ids_for_host_check(ids, input_dim, valid)
        if host is not None:
            check_on_host(host, input_dim, layer_name,
                          note=backend.INVALID_ID_NOTE)
        return ids
    return backend.refuse_in_graph(ids, Refusal(ids, input_dim, layer_name,
                                                valid))


def prepare_ids(ids, input_dim, invalid_ids, layer_name):
    """Int ids, checked when `invalid_ids="error"` (`check_ids`).

    int32 and int64 ids keep their dtype. Others (unsigned, float, bool, as
    `keras.layers.Embedding` accepts them) are checked in their own dtype
    before any narrowing cast, and become int32 with -1 for each invalid id,
    so that 2**32 + 1 or NaN never reaches the table as a valid row.
    Invalid ids that get past the check (`"zeros"`, or compiled code that
    cannot raise) are handled by `read_rows`.
    """
    ids = ops.convert_to_tensor(ids)
    dtype = standardize_dtype(ids.dtype)
    check_id_dtype(dtype, layer_name)
    if dtype in ("int32", "int64"):
        if invalid_ids == "error":
            ids = check_ids(ids, input_dim, layer_name)
        return ids
    valid = valid_ids(ids, input_dim, ops)
    if invalid_ids == "error":
        ids = check_ids(ids, input_dim, layer_name, valid)
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
    valid = valid_ids(ids, input_dim, np)
    if not valid.all():
        if invalid_ids == "error":
            check_on_host(ids, input_dim, layer_name, valid)
        return np.where(valid, ids, -1).astype("int32")
    if ids.dtype.kind == "i":
        return ids
    return ids.astype("int32")


def read_rows(lookup, ids, input_dim, invalid_ids, layer_name,
              guard_table=None):
    """`lookup(ids)`, with an all-zero row for each invalid id.

    Valid batches, almost all of them, cost a reduction over the ids and a
    branch (`all_ids_valid`). Only a bad batch pays for replacing
    invalid ids by 0 (never wrapping them) and zeroing rows. In `"error"`
    mode, ids that `prepare_ids` already checked on the host are valid (or
    it raised): they skip the branch, and its second trip to the host.
    Eager calls choose the branch in Python, without `ops.cond`'s overhead.
    Graphs that a serving format will carry take `serving_rows` instead
    (`guard_table`: see there).
    """
    def bad_batch():
        valid = valid_ids(ids, input_dim, ops)
        rows = lookup(ops.where(valid, ids, ops.zeros_like(ids)))
        return ops.where(ops.expand_dims(valid, -1), rows,
                         ops.zeros_like(rows))

    if backend.checked_on_host(ids):
        if invalid_ids == "error" or bool(all_ids_valid(ids,
                                                                input_dim)):
            return lookup(ids)
        return bad_batch()
    if backend.serving_graph(ids):
        return serving_rows(lookup, ids, input_dim, invalid_ids,
                            guard_table)
    return ops.cond(all_ids_valid(ids, input_dim),
                    lambda: lookup(ids), bad_batch)


def serving_rows(lookup, ids, input_dim, invalid_ids, guard_table=None):
    """`lookup(ids)` in the form every serving format carries.

    Comparisons, `where` and the gather itself: no reduction over the ids
    (ONNX Runtime has no unsigned one), no branch and no callback (neither
    serializes from JAX). With `"zeros"`, invalid ids read row 0 and their
    rows become zeros. With `"error"`, they read row `input_dim`, which
    the runtime's own gather refuses (ONNX Runtime, LiteRT, PyTorch,
    TensorFlow on CPU). Never a negative index: ONNX and PyTorch gathers
    wrap those. Their rows are still zeroed, for runtimes whose gathers
    clamp or fill instead (XLA, OpenVINO): there the backend's own check
    (`refuse_in_graph`) is the refusal, if it has one. A `lookup` that is
    not a gather (a one-hot matrix) names the table it multiplies
    (`guard_table`): the refused index is gathered from it, and its first
    column adds nothing to valid ids' rows. (A constant guard would not do:
    converters fold or clamp gathers from constants.)
    """
    valid = valid_ids(ids, input_dim, ops)
    fill = 0 if invalid_ids == "zeros" else input_dim
    index = ops.where(valid, ids, ops.full_like(ids, fill))
    if guard_table is None:
        rows = lookup(index)
    else:
        rows = lookup(ops.where(valid, ids, ops.zeros_like(ids)))
        if invalid_ids == "error":
            guard = ops.take(guard_table, index, axis=0)[..., :1]
            guard = ops.where(ops.expand_dims(valid, -1),
                              ops.zeros_like(guard), guard)
            rows = ops.add(rows, ops.cast(guard, rows.dtype))
    return ops.where(ops.expand_dims(valid, -1), rows, ops.zeros_like(rows))


def fills_invalid_ids(ids):
    """Whether the backend's own gather (`backend.fill_take`) gives the
    rows of `ids`: JAX, except in graphs for a serving format, whose
    converters have no filling gather."""
    return backend.FILL_TAKE and not backend.serving_graph(ids)


def take_rows(table, ids, input_dim, invalid_ids, layer_name):
    """`table[ids]`, with an all-zero row for each invalid id."""
    if fills_invalid_ids(ids):
        return backend.fill_take(table, ids)
    # `take` gathers rows directly: no one-hot matrix, and the gradient only
    # has non-zero rows for the ids in the batch.
    return read_rows(lambda i: backend.gather_rows(table, i), ids, input_dim,
                     invalid_ids, layer_name)


def one_hot_rows(ids, input_dim, dtype, invalid_ids, layer_name, table):
    """`one_hot(ids)`, with an all-zero vector for each invalid id;
    `table`: the matrix the vectors will multiply (`serving_rows`)."""
    return read_rows(lambda i: ops.one_hot(i, input_dim, dtype=dtype), ids,
                     input_dim, invalid_ids, layer_name, guard_table=table)


def embedding_mask(ids, mask_zero):
    if not mask_zero:
        return None
    return ops.not_equal(ids, 0)


# What happens to looked-up rows: norm limits and bags of ids. Shared by
# both layers, so that a lookup and its one-hot twin clip and combine rows
# the same way.


def _powered_sums(rows, norm_type):
    """`sum(abs(rows) ** norm_type)` over the last axis."""
    if norm_type == 2:
        return ops.sum(ops.square(rows), axis=-1)
    magnitudes = ops.abs(rows)
    if norm_type == 1:
        return ops.sum(magnitudes, axis=-1)
    if norm_type > 1:
        return ops.sum(ops.power(magnitudes, norm_type), axis=-1)
    # For p < 1, `x ** p` has an infinite derivative at 0: zeros are kept
    # away from `power`.
    nonzero = ops.greater(magnitudes, 0)
    safe = ops.where(nonzero, magnitudes, ops.ones_like(magnitudes))
    return ops.sum(ops.where(nonzero, ops.power(safe, norm_type),
                             ops.zeros_like(magnitudes)), axis=-1)


def norm_scales(rows, max_norm, norm_type):
    """`min(1, max_norm / norm)` for each row (last axis) of `rows`.

    Differentiated, as TensorFlow's `embedding_lookup(max_norm=...)` is.
    Only rows over the limit (norm > max_norm > 0) reach the root and the
    division; the others get exactly 1 and no NaN, all-zero rows included.
    One number per row, so that a combiner can fold it into the bag weights
    instead of materialising scaled rows. Computed in float32 or wider
    (every storage, every dtype policy: the one safe norm), returned in
    that dtype.
    """
    # At least float32, whatever the rows' dtype (float16 from a
    # quantized table or a float16 policy): a float16 sum of squares
    # overflows for rows of norm above 256, and so does `max_norm ** 2`.
    rows = ops.convert_to_tensor(rows)
    dtype = backend_result_type(rows.dtype, "float32")
    sums = _powered_sums(ops.cast(rows, dtype), norm_type)
    over = ops.greater(sums, ops.cast(max_norm ** norm_type, dtype))
    safe = ops.where(over, sums, ops.ones_like(sums))
    norms = (ops.sqrt(safe) if norm_type == 2
             else ops.power(safe, 1.0 / norm_type))
    return ops.where(over, ops.divide(max_norm, norms), ops.ones_like(sums))


def clip_rows(rows, max_norm, norm_type):
    """Each row (last axis) whose norm exceeds `max_norm`, scaled down to it.

    Rows within the limit are returned unchanged.
    """
    if max_norm is None:
        return rows
    rows = ops.convert_to_tensor(rows)
    scales = ops.cast(norm_scales(rows, max_norm, norm_type), rows.dtype)
    return ops.multiply(rows, ops.expand_dims(scales, -1))


def bag_weights_of(ids, weights, input_dim, padding_idx, mask_zero, dtype):
    """The weight of each id in its bag: 0 for ids that must not count.

    `weights` (or 1) except for invalid ids, `padding_idx` and, with
    `mask_zero`, id 0: those get 0, so they count neither in the sum nor
    in the `"mean"` and `"sqrtn"` denominators.
    """
    keep = valid_ids(ids, input_dim, ops)
    if padding_idx is not None:
        keep = ops.logical_and(keep, ops.not_equal(ids, padding_idx))
    if mask_zero:
        keep = ops.logical_and(keep, ops.not_equal(ids, 0))
    if weights is None:
        return ops.cast(keep, dtype)
    weights = ops.cast(weights, dtype)
    return ops.where(keep, weights, ops.zeros_like(weights))


def combine(rows, weights, combiner, max_norm, norm_type):
    """Rows `(..., bag, dim)` reduced over the bag axis to `(..., dim)`.

    Each row is clipped to `max_norm` before it is summed: its scale is
    folded into its weight, not into a second `(..., bag, dim)` tensor.
    """
    scaled = weights
    if max_norm is not None:
        scales = norm_scales(rows, max_norm, norm_type)
        scaled = ops.multiply(weights, ops.cast(scales, weights.dtype))
    return normalise_bags(weighted_sum(rows, scaled), weights, combiner)


def weighted_sum(values, weights):
    """`sum(weights[..., None] * values, axis=-2)`: the bag axis reduced.

    A multiply and a reduction, which XLA fuses into one pass, rather than
    a matmul, which GPUs may run in TF32 and so round the rows.
    """
    return ops.sum(ops.multiply(values, ops.expand_dims(weights, -1)),
                   axis=-2)


def normalise_bags(sums, weights, combiner):
    """Divides weighted sums by `sum(weights)` ("mean") or
    `sqrt(sum(weights ** 2))` ("sqrtn"); a zero denominator gives zeros."""
    if combiner == "sum":
        return sums
    if combiner == "mean":
        denominator = ops.sum(weights, axis=-1, keepdims=True)
    else:
        denominator = ops.sum(ops.square(weights), axis=-1, keepdims=True)
    empty = ops.equal(denominator, 0)
    # Divide by 1 in empty bags, so that neither the value nor the gradient
    # (of the division or the square root) is NaN.
    safe = ops.where(empty, ops.ones_like(denominator), denominator)
    if combiner == "sqrtn":
        safe = ops.sqrt(safe)
    return ops.where(empty, ops.zeros_like(sums), ops.divide(sums, safe))


def zero_padding(values, ids, padding_idx):
    """Zeros the rows of `values` whose id is `padding_idx` (if set).

    A `where`, so those rows also pass no gradient back: the table's padding
    row never trains.
    """
    if padding_idx is None:
        return values
    is_padding = ops.expand_dims(ops.equal(ids, padding_idx), -1)
    return ops.where(is_padding, ops.zeros_like(values), values)
