"""What happens to looked-up rows: norm limits and bags of ids.

Shared by both layers, so that a lookup and its one-hot twin clip and
combine rows the same way. `keras.ops` only.
"""

from keras import ops
from keras.backend import result_type as backend_result_type

from keras_embedlab.backend._common import valid_ids


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
