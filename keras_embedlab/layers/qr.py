"""`QREmbedding`: quotient-remainder compositional embeddings."""

import math
from typing import Any

import keras
import numpy as np
from keras import constraints, initializers, ops, regularizers

from keras_embedlab import backend
from keras_embedlab.ids import reader
from keras_embedlab.ids.reader import valid_ids
from keras_embedlab.layers.base import check_shared_argument
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.utils.argument_checks import (
    check_bool,
    check_choice,
    check_positive_int,
)

SUPPORTED_OPERATIONS = ("mult", "add", "concat")


@keras.saving.register_keras_serializable(package="keras_embedlab")
class QREmbedding(keras.layers.Layer):
    """Ids in `[0, input_dim)` -> two small tables' rows, combined.

    The quotient-remainder trick (Shi et al. 2020, DLRM's
    `QREmbeddingBag`): id `i` reads row `i // num_collisions` of a
    `quotient` table of `ceil(input_dim / num_collisions)` rows and row
    `i % num_collisions` of a `remainder` table of `num_collisions` rows,
    and combines them with `operation`: `"mult"` (element-wise product,
    the default), `"add"` (sum) or `"concat"` (the quotient row then the
    remainder row: vectors of `2 * output_dim`). Every id gets a distinct
    pair of rows, from `ceil(V / m) + m` rows instead of `V`.

    The two tables are `LookupEmbedding` layers (`layer.quotient`,
    `layer.remainder`), so `sparse=True` row-sparse training, LoRA
    (`layer.quotient.enable_lora(...)`), int8/int4 (`model.quantize`),
    `max_norm` and saving work as there. With a `combiner`, each table's
    bag is reduced first and the two bag vectors are then combined, as in
    DLRM (for `"mult"` this is not the bag of the products).

    Args:
        input_dim: Integer, the vocabulary size `V`: ids in `[0, V)`.
        output_dim: Integer, the dimension of each table's rows.
        num_collisions: Integer `m` in `[1, input_dim]`: the remainder
            table's rows; ids sharing a quotient row differ in their
            remainder row.
        operation: `"mult"`, `"add"` or `"concat"`.
        embeddings_initializer, embeddings_regularizer,
        embeddings_constraint, max_norm, norm_type, combiner, sparse:
            as `LookupEmbedding`, for both tables (`max_norm` clips each
            table's rows before they are combined).
        mask_zero: Boolean. If `True`, id 0 is padding: masked, and in
            bags it counts nowhere.
        invalid_ids: `"error"` (default) or `"zeros"`, as
            `LookupEmbedding`, for ids outside `[0, input_dim)`; with
            `"zeros"` an invalid id reads all-zero rows from both tables.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Input shape:
        Integer ids of any shape `ids_shape` (with a `combiner`,
        `batch_shape + (bag,)`).

    Output shape:
        `ids_shape + (d,)` (`batch_shape + (d,)` with a `combiner`), `d`
        being `output_dim`, or `2 * output_dim` for `"concat"`.

    Example:

    >>> layer = QREmbedding(10_000, 8, num_collisions=100)
    >>> tuple(layer(np.array([[0, 9_999]])).shape)
    (1, 2, 8)
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        num_collisions: int,
        operation: str = "mult",
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        *,
        invalid_ids: str = "error",
        combiner: str | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        check_positive_int("num_collisions", num_collisions)
        if num_collisions > input_dim:
            raise ValueError(
                "`num_collisions` must be at most `input_dim` (the remainder "
                f"table would have unused rows). Received: num_collisions="
                f"{num_collisions} with input_dim={input_dim}.")
        check_choice("operation", operation, SUPPORTED_OPERATIONS)
        check_bool("mask_zero", mask_zero)
        for name, value in (("invalid_ids", invalid_ids),
                            ("combiner", combiner), ("max_norm", max_norm),
                            ("norm_type", norm_type)):
            check_shared_argument(name, value, input_dim)
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.num_collisions = num_collisions
        self.operation = operation
        self.mask_zero = mask_zero
        self.invalid_ids = invalid_ids
        self.combiner = combiner
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.sparse = sparse
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.supports_masking = mask_zero
        # The outer layer checks ids; the tables see -1 for invalid ones.
        shared = dict(
            embeddings_initializer=self.embeddings_initializer,
            embeddings_regularizer=self.embeddings_regularizer,
            embeddings_constraint=self.embeddings_constraint,
            invalid_ids="zeros", combiner=combiner, max_norm=max_norm,
            norm_type=norm_type, sparse=sparse, dtype=self.dtype_policy)
        self.quotient = LookupEmbedding(
            math.ceil(input_dim / num_collisions), output_dim,
            name="quotient", **shared)
        self.remainder = LookupEmbedding(num_collisions, output_dim,
                                         name="remainder", **shared)

    def build(self, input_shape=None):
        if self.built:
            return
        self.quotient.build()
        self.remainder.build()
        self.built = True

    def __call__(self, inputs, bag_weights=None, **kwargs):
        if bag_weights is not None:
            if self.combiner is None:
                raise ValueError(
                    f"`bag_weights` needs a `combiner`, but layer "
                    f"'{self.name}' has combiner=None.")
            kwargs["bag_weights"] = bag_weights
        if isinstance(inputs, (np.ndarray, list, tuple)):
            # Before Keras converts them (and JAX truncates int64 to int32).
            inputs = reader.host_ids(np.asarray(inputs), self.input_dim,
                                     self.invalid_ids, self.name)
        return super().__call__(inputs, **kwargs)

    def call(self, inputs, bag_weights=None):
        ids = reader.prepare_ids(inputs, self.input_dim, self.invalid_ids,
                                 self.name)
        keep = valid_ids(ids, self.input_dim, ops)
        if self.mask_zero and self.combiner is not None:
            keep = ops.logical_and(keep, ops.not_equal(ids, 0))
        invalid = ops.full_like(ids, -1)
        # Division of non-negative ids, in a form every export carries.
        safe = ops.where(keep, ids, ops.zeros_like(ids))
        quotient = backend.nonnegative_divide(safe, self.num_collisions)
        remainder = ops.subtract(
            safe, ops.multiply(quotient, self.num_collisions))
        quotient = ops.where(keep, quotient, invalid)
        remainder = ops.where(keep, remainder, invalid)
        kwargs = {} if bag_weights is None else {"bag_weights": bag_weights}
        first = self.quotient(quotient, **kwargs)
        second = self.remainder(remainder, **kwargs)
        if self.operation == "mult":
            return ops.multiply(first, second)
        if self.operation == "add":
            return ops.add(first, second)
        return ops.concatenate([first, second], axis=-1)

    def compute_mask(self, inputs, mask=None):
        if self.combiner is not None:
            return None
        return reader.embedding_mask(inputs, self.mask_zero)

    def compute_output_shape(self, input_shape):
        dim = self.output_dim * (2 if self.operation == "concat" else 1)
        if self.combiner is not None:
            return (*input_shape[:-1], dim)
        return (*input_shape, dim)

    def compute_output_spec(self, inputs, bag_weights=None):
        reader.check_id_dtype(keras.backend.standardize_dtype(inputs.dtype),
                              self.name)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape),
                                 dtype=self.compute_dtype)

    def get_config(self):
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "num_collisions": self.num_collisions,
            "operation": self.operation,
            "embeddings_initializer": initializers.serialize(
                self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(
                self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(
                self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "invalid_ids": self.invalid_ids,
            "combiner": self.combiner,
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
            "sparse": self.sparse,
        }
        return {**super().get_config(), **config}

