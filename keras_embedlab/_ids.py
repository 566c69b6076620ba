"""Shared argument validation and id handling for the embedding layers.

Both layers route ids through `prepare_ids` and differ only in how they turn
ids into rows (`take_rows` versus `one_hot_rows` and `matmul`), so they agree
on dtypes, masking and invalid ids by construction. What happens to the rows
afterwards (`max_norm`, `combiner`) is shared the same way, in `_row_math`.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_embedlab import _backend, _row_math

INVALID_IDS_MODES = ("error", "zeros")
SUPPORTED_COMBINERS = ("sum", "mean", "sqrtn")
_COMBINER_CHOICES = " or ".join(repr(c) for c in SUPPORTED_COMBINERS)


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


def check_padding_idx(padding_idx, input_dim):
    if padding_idx is None:
        return
    if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
            or not 0 <= padding_idx < input_dim):
        raise ValueError(
            "`padding_idx` must be None or an integer id in [0, input_dim) "
            f"= [0, {input_dim}). Received: padding_idx={padding_idx!r} "
            f"(of type {type(padding_idx).__name__})."
        )


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_max_norm(max_norm):
    if max_norm is not None and not (_is_number(max_norm) and max_norm > 0):
        raise ValueError(
            "`max_norm` must be None or a positive number. "
            f"Received: max_norm={max_norm!r} "
            f"(of type {type(max_norm).__name__})."
        )


def check_norm_type(norm_type):
    if not (_is_number(norm_type) and norm_type > 0):
        raise ValueError(
            "`norm_type` must be a positive number (the p of the p-norm, "
            "e.g. 2.0 or 1.0). "
            f"Received: norm_type={norm_type!r} "
            f"(of type {type(norm_type).__name__})."
        )


def check_combiner(combiner):
    if combiner is not None and (not isinstance(combiner, str)
                                 or combiner not in SUPPORTED_COMBINERS):
        raise ValueError(
            "`combiner` must be None or one of "
            f"{', '.join(repr(c) for c in SUPPORTED_COMBINERS)}. "
            f"Received: combiner={combiner!r}."
        )


def check_bag_weights(bag_weights, ids, layer_name):
    """Raises unless `bag_weights` has the (known dims of the) ids' shape."""
    expected, received = tuple(ids.shape), tuple(bag_weights.shape)
    if len(expected) != len(received) or any(
        a is not None and b is not None and a != b
        for a, b in zip(expected, received)
    ):
        raise ValueError(
            f"`bag_weights` must have the shape of the ids, one weight per "
            f"id. Received: bag_weights of shape {received} for ids of "
            f"shape {expected} on layer '{layer_name}'. Pass one weight per "
            "id (e.g. `ones_like(ids)` for plain counts)."
        )


def check_reverse_inputs(inputs, output_dim, layer_name):
    """Raises unless `inputs` are float vectors of size `output_dim`."""
    dtype = standardize_dtype(inputs.dtype)
    last = inputs.shape[-1] if len(inputs.shape) else None
    if "float" not in dtype or last not in (None, output_dim):
        raise ValueError(
            f"With `reverse=True`, layer '{layer_name}' takes float vectors "
            f"of size output_dim={output_dim} (the last axis) and returns "
            f"logits over the vocabulary. Received inputs of shape "
            f"{tuple(inputs.shape)} and dtype {dtype}. Pass vectors of shape "
            f"(..., {output_dim}); to look up ids, call without "
            "`reverse=True`."
        )


def zero_padding(values, ids, padding_idx):
    """Zeros the rows of `values` whose id is `padding_idx` (if set).

    A `where`, so those rows also pass no gradient back: the table's padding
    row never trains.
    """
    if padding_idx is None:
        return values
    is_padding = ops.expand_dims(ops.equal(ids, padding_idx), -1)
    return ops.where(is_padding, ops.zeros_like(values), values)


def as_weight_list(weights):
    """`weights=` as Keras accepts it: an array or a list of arrays."""
    if isinstance(weights, (list, tuple)):
        return list(weights)
    return [weights]


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
    """Int ids, checked when `invalid_ids="error"` (see `_backend.check_ids`).

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
            ids = _backend.check_ids(ids, input_dim, layer_name)
        return ids
    valid = _backend.valid_ids(ids, input_dim, ops)
    if invalid_ids == "error":
        ids = _backend.check_ids(ids, input_dim, layer_name, valid)
    if "float" not in dtype:
        ids = ops.cast(ids, "int64")  # Never narrowing: see `valid_ids`.
    safe = ops.cast(ops.where(valid, ids, ops.zeros_like(ids)), "int32")
    return ops.where(valid, safe, ops.full_like(safe, -1))


def _host_ids(ids, input_dim, invalid_ids, layer_name):
    """NumPy ids as int32 or int64, checked before any conversion.

    JAX without `jax_enable_x64` truncates int64 to int32 and uint64 to
    uint32, so an id of 2**32 would become 0: checked here, invalid ids
    raise (`"error"`) or become -1, which stays invalid in every dtype
    (`"zeros"`). Unsigned, float and bool ids that are valid become int32.
    """
    if ids.dtype.kind not in "biuf":
        check_id_dtype(str(ids.dtype), layer_name)
    valid = _backend.valid_ids(ids, input_dim, np)
    if not valid.all():
        if invalid_ids == "error":
            _backend.check_on_host(ids, input_dim, layer_name, valid)
        return np.where(valid, ids, -1).astype("int32")
    if ids.dtype.kind == "i":
        return ids
    return ids.astype("int32")


def _rows(lookup, ids, input_dim, invalid_ids, layer_name):
    """`lookup(ids)`, with an all-zero row for each invalid id.

    Valid batches, almost all of them, cost a reduction over the ids and a
    branch (`_backend.all_ids_valid`). Only a bad batch pays for replacing
    invalid ids by 0 (never wrapping them) and zeroing rows. In `"error"`
    mode, ids that `prepare_ids` already checked on the host are valid (or
    it raised): they skip the branch, and its second trip to the host.
    """
    if invalid_ids == "error" and _backend.checked_on_host(ids):
        return lookup(ids)

    def bad_batch():
        valid = ops.logical_and(
            ops.greater_equal(ids, 0), ops.less(ids, input_dim)
        )
        rows = lookup(ops.where(valid, ids, ops.zeros_like(ids)))
        rows = ops.where(ops.expand_dims(valid, -1), rows,
                         ops.zeros_like(rows))
        if invalid_ids == "error":
            rows = _backend.fail_in_graph(rows, ids, input_dim, layer_name)
        return rows

    return ops.cond(_backend.all_ids_valid(ids, input_dim),
                    lambda: lookup(ids), bad_batch)


def take_rows(table, ids, input_dim, invalid_ids, layer_name):
    """`table[ids]`, with an all-zero row for each invalid id."""
    if _backend.has_fill_take():
        return _backend.fill_take(table, ids)
    # `take` gathers rows directly: no one-hot matrix, and the gradient only
    # has non-zero rows for the ids in the batch.
    return _rows(lambda i: _backend.gather_rows(table, i), ids, input_dim,
                 invalid_ids, layer_name)


def one_hot_rows(ids, input_dim, dtype, invalid_ids, layer_name):
    """`one_hot(ids)`, with an all-zero vector for each invalid id."""
    return _rows(lambda i: ops.one_hot(i, input_dim, dtype=dtype), ids,
                 input_dim, invalid_ids, layer_name)


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


# Arguments of `keras.layers.Embedding` and `Dense` that are accepted with
# their default value (so that their configs load), not yet implemented.
_NOT_YET = ("lora_rank", "lora_alpha", "quantization_config")


def _drop_keras_only_arguments(kwargs, class_name):
    """Keras's `input_length` (warned about and ignored, as Keras does) and
    the LoRA and quantization arguments at their defaults."""
    if kwargs.pop("input_length", None) is not None:
        warnings.warn("Argument `input_length` is deprecated. Just remove it.")
    for name in _NOT_YET:
        value = kwargs.pop(name, None)
        if value is not None:
            raise NotImplementedError(
                f"`{name}` is not supported by {class_name} yet. Received: "
                f"{name}={value!r}. Pass {name}=None (the default), or use "
                "keras.layers.Embedding / keras.layers.Dense for LoRA and "
                "quantized tables."
            )


class IdsLayer(keras.layers.Layer):
    """What both layers share: id arguments, masks, bags and output shapes."""

    def __init__(self, input_dim, output_dim, mask_zero, invalid_ids,
                 padding_idx=None, max_norm=None, norm_type=2.0,
                 combiner=None, **kwargs):
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        check_bool("mask_zero", mask_zero)
        check_invalid_ids(invalid_ids)
        check_padding_idx(padding_idx, input_dim)
        check_max_norm(max_norm)
        check_norm_type(norm_type)
        check_combiner(combiner)
        _drop_keras_only_arguments(kwargs, type(self).__name__)
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self.invalid_ids = invalid_ids
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.combiner = combiner
        self._reversing = False
        if invalid_ids == "error" and keras.backend.backend() == "tensorflow":
            # XLA drops assertions: keep Keras's compiled steps off XLA.
            self.supports_jit = False

    def __call__(self, inputs, bag_weights=None, reverse=False, **kwargs):
        check_bool("reverse", reverse)
        if bag_weights is not None:
            kwargs["bag_weights"] = bag_weights
        if reverse:
            return self._call_reversed(inputs, reverse=True, **kwargs)
        if _backend.is_ragged(inputs):
            if self.combiner is None:
                raise ValueError(
                    f"Layer '{self.name}' received ragged ids but has no "
                    "`combiner`: ragged ids are bags. Pass combiner="
                    f"{_COMBINER_CHOICES}, "
                    "or call `ids.to_tensor()` first."
                )
            inputs, kwargs["bag_weights"] = _backend.densify_ragged_bags(
                inputs, bag_weights, self.variable_dtype
            )
        elif isinstance(inputs, (np.ndarray, list, tuple)):
            # Before Keras converts them (and JAX truncates int64 to int32).
            inputs = _host_ids(np.asarray(inputs), self.input_dim,
                               self.invalid_ids, self.name)
        return super().__call__(inputs, **kwargs)

    def _call_reversed(self, inputs, **kwargs):
        # Keras computes the output mask as `compute_mask(inputs, mask)`,
        # without the call arguments. Flag the call so that `compute_mask`
        # passes the incoming mask through instead of computing an ids mask
        # from float vectors, and accept that mask even without `mask_zero`.
        supports_masking = self.supports_masking
        self._reversing, self.supports_masking = True, True
        try:
            return super().__call__(inputs, **kwargs)
        finally:
            self._reversing, self.supports_masking = False, supports_masking

    def _prepare_ids(self, inputs):
        return prepare_ids(inputs, self.input_dim, self.invalid_ids, self.name)

    def _bag_weights(self, ids, bag_weights, dtype):
        """Each id's weight in its bag with a combiner; `None` without."""
        if self.combiner is None:
            if bag_weights is not None:
                raise ValueError(
                    f"`bag_weights` needs a `combiner`, but layer "
                    f"'{self.name}' has combiner=None. Pass combiner="
                    f"{_COMBINER_CHOICES}."
                )
            return None
        self._check_bag_rank(ids.shape)
        if bag_weights is not None:
            bag_weights = ops.convert_to_tensor(bag_weights)
            check_bag_weights(bag_weights, ids, self.name)
        return _row_math.bag_weights_of(ids, bag_weights, self.input_dim,
                                        self.padding_idx, self.mask_zero,
                                        dtype)

    def _check_bag_rank(self, ids_shape):
        if len(ids_shape) < 2:
            # Rank 1 would reduce over the batch (`torch.nn.EmbeddingBag`
            # and TensorFlow's sparse lookups refuse it too).
            raise ValueError(
                f"With a `combiner`, ids need a batch axis and a bag axis "
                f"(the last, reduced). Received ids of shape "
                f"{tuple(ids_shape)} on layer '{self.name}' with "
                f"combiner={self.combiner!r}. For one bag per example, pass "
                "ids of shape (batch, bag), e.g. `ids[None]` for a single "
                "bag or `ids[:, None]` for bags of one id."
            )

    def _reverse(self, inputs, table, bag_weights=None):
        """`inputs @ table.T`: logits over the vocabulary (`reverse=True`)."""
        if bag_weights is not None:
            raise ValueError(
                f"`bag_weights` applies to ids, not to `reverse=True` "
                f"(layer '{self.name}'). Received both: call the layer "
                "without `bag_weights` when `reverse=True`."
            )
        inputs = ops.convert_to_tensor(inputs)
        check_reverse_inputs(inputs, self.output_dim, self.name)
        # The table the forward direction sees: padding row zero, rows
        # clipped to `max_norm`.
        table = zero_padding(ops.convert_to_tensor(table),
                             ops.arange(self.input_dim), self.padding_idx)
        table = _row_math.clip_rows(table, self.max_norm, self.norm_type)
        dtype = self.compute_dtype
        return ops.matmul(ops.cast(inputs, dtype),
                          ops.transpose(ops.cast(table, dtype)))

    def compute_mask(self, inputs, mask=None):
        if self._reversing:
            return mask
        if self.combiner is not None:
            return None  # Bags are reduced: no position is left to mask.
        return embedding_mask(inputs, self.mask_zero)

    def compute_output_shape(self, input_shape, reverse=False):
        if reverse:
            return (*input_shape[:-1], self.input_dim)
        if self.combiner is not None:
            self._check_bag_rank(input_shape)
            return (*input_shape[:-1], self.output_dim)
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs, bag_weights=None, reverse=False):
        if reverse:
            check_reverse_inputs(inputs, self.output_dim, self.name)
        else:
            check_id_dtype(standardize_dtype(inputs.dtype), self.name)
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape, reverse=reverse),
            dtype=self.compute_dtype,
        )
