"""`EmbeddingBase`: what both layers share, end to end.

The shared arguments (`SHARED_ARGUMENTS`) are validated, stored, written to
`get_config` and copied by both converters from this one table: adding a
shared argument is one edit here. Calls route ids through `ids.reader`, bags and
norm limits through its row math, and `reverse=True` through `_reverse`.
"""

import contextvars
import warnings

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype

# Keras has no public accessor for a tensor's mask; its own layers
# (`ReversibleEmbedding`, attention) set masks in a call with these.
from keras.src.backend import get_keras_mask, set_keras_mask

from keras_embedlab import backend
from keras_embedlab.ids import reader
from keras_embedlab.table.layer import TableLayer
from keras_embedlab.utils.argument_checks import (
    check_bool,
    check_choice,
    check_positive_int,
    is_number,
    received,
)

INVALID_IDS_MODES = ("error", "zeros")
SUPPORTED_COMBINERS = ("sum", "mean", "sqrtn")
_COMBINER_CHOICES = " or ".join(repr(c) for c in SUPPORTED_COMBINERS)

# The layers running a `reverse=True` call in this thread or task (Keras
# keeps its own call context the same way). Read by `supports_masking`;
# no attribute of a layer changes during a call.
_REVERSING = contextvars.ContextVar("keras_embedlab_reversing", default=())

def check_padding_idx(padding_idx, input_dim):
    """An id in `[0, input_dim)`; `input_dim=None`: not known yet (any id
    from 0 up, checked again once it is)."""
    if padding_idx is None:
        return
    if input_dim is None:
        if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
                or padding_idx < 0):
            raise ValueError(
                "`padding_idx` must be None or a non-negative integer id "
                "(below the vocabulary size). "
                + received("padding_idx", padding_idx)
            )
        return
    if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
            or not 0 <= padding_idx < input_dim):
        raise ValueError(
            "`padding_idx` must be None or an integer id in [0, input_dim) "
            f"= [0, {input_dim}). " + received("padding_idx", padding_idx)
        )


def _check_max_norm(max_norm, _):
    if max_norm is not None and not (is_number(max_norm) and max_norm > 0):
        raise ValueError("`max_norm` must be None or a positive number. "
                         + received("max_norm", max_norm))


def _check_norm_type(norm_type, _):
    if not (is_number(norm_type) and norm_type > 0):
        raise ValueError(
            "`norm_type` must be a positive number (the p of the p-norm, "
            "e.g. 2.0 or 1.0). " + received("norm_type", norm_type)
        )


# name -> (default, check(value, input_dim)). Keyword arguments of both
# layers (and of `PretrainedEmbedding`), stored under their own names.
SHARED_ARGUMENTS = {
    "mask_zero": (False, lambda value, _: check_bool("mask_zero", value)),
    "invalid_ids": ("error", lambda value, _: check_choice(
        "invalid_ids", value, INVALID_IDS_MODES)),
    "padding_idx": (None, check_padding_idx),
    "max_norm": (None, _check_max_norm),
    "norm_type": (2.0, _check_norm_type),
    "combiner": (None, lambda value, _: check_choice(
        "combiner", value, SUPPORTED_COMBINERS, allow_none=True)),
}

def check_shared_argument(name, value, input_dim):
    """Raises unless `value` is valid for the shared argument `name`."""
    SHARED_ARGUMENTS[name][1](value, input_dim)


def shared_arguments(layer):
    """The shared arguments of `layer`, for a converted copy.

    A `keras.layers.Embedding` has only `mask_zero`: the others get their
    defaults.
    """
    return {name: getattr(layer, name, default)
            for name, (default, _) in SHARED_ARGUMENTS.items()}


# Keras's LoRA and quantization arguments (`TableLayer`).
_TABLE_ARGUMENTS = ("lora_rank", "lora_alpha", "quantization_config")


def _drop_input_length(kwargs):
    """Keras's `input_length`: warned about and ignored, as Keras does."""
    if kwargs.pop("input_length", None) is not None:
        warnings.warn("Argument `input_length` is deprecated. Just remove it.")


def as_weight_list(weights):
    """`weights=` as Keras accepts it: an array or a list of arrays."""
    if isinstance(weights, (list, tuple)):
        return list(weights)
    return [weights]


def check_built(layer, method):
    if not layer.built:
        raise ValueError(
            f"`{method}` needs a built layer so it can copy its weights. "
            f"Layer '{layer.name}' is not built yet: call it on some ids or "
            "call `layer.build()` first."
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


class EmbeddingBase(TableLayer, keras.layers.Layer):
    """What both layers share: id arguments, masks, bags, output shapes, and
    the table's storage (`TableLayer`: LoRA, int8/int4)."""

    def __init__(self, input_dim, output_dim, lora_rank=None, lora_alpha=None,
                 quantization_config=None, **kwargs):
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        shared = {}
        for name, (default, check) in SHARED_ARGUMENTS.items():
            shared[name] = kwargs.pop(name, default)
            check(shared[name], input_dim)
        _drop_input_length(kwargs)
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self._init_table(lora_rank, lora_alpha, quantization_config)
        # `reverse=True` options; `LookupEmbedding` takes them as arguments.
        self.reverse_dtype = None
        self.logit_soft_cap = None
        for name, value in shared.items():
            setattr(self, name, value)
        self.supports_masking = self.mask_zero
        if self.invalid_ids == "error" and not backend.SUPPORTS_JIT_WITH_CHECKS:
            # XLA drops assertions: keep Keras's compiled steps off XLA.
            self.supports_jit = False

    def get_config(self):
        config = {"input_dim": self.input_dim, "output_dim": self.output_dim}
        config.update({name: getattr(self, name) for name in SHARED_ARGUMENTS})
        config.update(self._table_config())
        return {**super().get_config(), **config}

    def __call__(self, inputs, bag_weights=None, reverse=False, **kwargs):
        check_bool("reverse", reverse)
        if bag_weights is not None:
            kwargs["bag_weights"] = bag_weights
        if reverse:
            return self._call_reversed(inputs, **kwargs)
        # Before any kind of ids takes its own route (ragged ids without a
        # combiner look up their flat values and never see `bag_weights`).
        self._check_bag_weights_need_combiner(bag_weights)
        if backend.is_sparse(inputs):
            inputs = backend.densify_sparse(inputs)
        if backend.is_ragged(inputs) and self.combiner is not None:
            inputs, kwargs["bag_weights"] = backend.densify_ragged_bags(
                inputs, bag_weights, self.variable_dtype
            )
        elif isinstance(inputs, (np.ndarray, list, tuple)):
            # Before Keras converts them (and JAX truncates int64 to int32).
            inputs = self._host_ids(np.asarray(inputs))
        return super().__call__(inputs, **kwargs)

    def _host_ids(self, ids):
        """NumPy ids, checked on the host before Keras converts them."""
        return reader.host_ids(ids, self.input_dim, self.invalid_ids,
                               self.name)

    @property
    def supports_masking(self):
        """`mask_zero`, as in Keras; True during the layer's reverse calls.

        A reverse call passes the vectors' mask through whatever
        `mask_zero` is: Keras must not drop it with a warning. Only the
        calling thread or task sees True (see `_call_reversed`).
        """
        return self._supports_masking or any(
            layer is self for layer in _REVERSING.get())

    @supports_masking.setter
    def supports_masking(self, value):
        self._supports_masking = value

    def _call_reversed(self, inputs, **kwargs):
        """Logits that carry the mask of the vectors, if they have one.

        Keras asks `compute_mask(inputs, mask)` without the call arguments,
        so it would give the logits a mask of ids computed from the float
        vectors. The mask is decided here instead, from this call alone, as
        Keras's `ReversibleEmbedding` decides its own in `call`. Nothing on
        the layer changes during the call, so a forward call made meanwhile
        (another thread, a nested call) keeps its own mask.
        """
        token = _REVERSING.set((*_REVERSING.get(), self))
        try:
            outputs = super().__call__(inputs, reverse=True, **kwargs)
        finally:
            _REVERSING.reset(token)
        set_keras_mask(outputs, get_keras_mask(inputs))
        return outputs

    def _prepare_ids(self, inputs):
        return reader.prepare_ids(inputs, self.input_dim, self.invalid_ids,
                                  self.name)

    def _check_bag_weights_need_combiner(self, bag_weights):
        if bag_weights is not None and self.combiner is None:
            raise ValueError(
                f"`bag_weights` needs a `combiner`, but layer "
                f"'{self.name}' has combiner=None. Pass combiner="
                f"{_COMBINER_CHOICES}."
            )

    def _bag_weights(self, ids, bag_weights, dtype):
        """Each id's weight in its bag with a combiner; `None` without."""
        self._check_bag_weights_need_combiner(bag_weights)
        if self.combiner is None:
            return None
        self._check_bag_rank(ids.shape)
        if bag_weights is not None:
            bag_weights = ops.convert_to_tensor(bag_weights)
            check_bag_weights(bag_weights, ids, self.name)
        return reader.bag_weights_of(ids, bag_weights, self.input_dim,
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

    def _reverse(self, inputs, bag_weights=None):
        """`inputs @ table.T`: logits over the vocabulary (`reverse=True`).

        The tied table is the one the forward direction sees (padding row
        zero, rows clipped to `max_norm`); an untied one
        (`tie_weights=False`) is used as it is.
        """
        if bag_weights is not None:
            raise ValueError(
                f"`bag_weights` applies to ids, not to `reverse=True` "
                f"(layer '{self.name}'). Received both: call the layer "
                "without `bag_weights` when `reverse=True`."
            )
        inputs = ops.convert_to_tensor(inputs)
        check_reverse_inputs(inputs, self.output_dim, self.name)
        dtype = self.reverse_dtype or self.compute_dtype
        inputs = ops.cast(self._quantize_inputs(inputs), dtype)
        untied = self._table_spec.extra
        if untied:
            kernel = untied[0][0].dense(self, self.output_dim, dtype,
                                        self._group_index())
        else:
            table = ops.convert_to_tensor(self._dense_table())
            if self.padding_idx is not None:
                # `arange(0, n)`: jax2onnx's `arange` needs a stop.
                table = reader.zero_padding(
                    table, ops.arange(0, self.input_dim), self.padding_idx)
            table = reader.clip_rows(table, self.max_norm, self.norm_type)
            kernel = ops.transpose(table)
        logits = ops.matmul(inputs, ops.cast(kernel, dtype))
        cap = self.logit_soft_cap
        if cap is not None:
            logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
        return logits

    def compute_mask(self, inputs, mask=None):
        """The mask of the rows of ids `inputs` (never of a reverse call's
        logits: `_call_reversed` sets theirs)."""
        if self.combiner is not None:
            return None  # Bags are reduced: no position is left to mask.
        return reader.embedding_mask(inputs, self.mask_zero)

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
            reader.check_id_dtype(standardize_dtype(inputs.dtype), self.name)
        # Ragged ids without a combiner give ragged rows (TensorFlow).
        ragged = (not reverse and self.combiner is None
                  and getattr(inputs, "ragged", False))
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape, reverse=reverse),
            dtype=self.compute_dtype, ragged=ragged,
        )
