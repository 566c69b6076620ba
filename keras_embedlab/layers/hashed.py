"""`HashedEmbedding`: raw integer ids -> the sum of their hashed rows."""

import warnings
from typing import Any

import keras
from keras import ops
from keras.backend import standardize_dtype

from keras_embedlab import backend
from keras_embedlab.hashing.ids import (
    check_hash_arguments,
    hash_ids,
    narrowed_int64_error,
    raw_host_ids,
)
from keras_embedlab.ids import reader
from keras_embedlab.layers.base import as_weight_list, check_bag_weights
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.table.layer import check_quantizable
from keras_embedlab.utils.argument_checks import check_bool

# `LookupEmbedding` arguments that have no meaning for raw ids.
_REFUSED = {
    "invalid_ids": "every integer is a valid raw id",
    "padding_idx": "rows are buckets shared by many ids; mask_zero=True "
                   "makes raw id 0 padding",
    "input_dim": "the table has `num_buckets` rows",
}
# Config keys of `LookupEmbedding` that `HashedEmbedding` fixes.
_FIXED = ("input_dim", "invalid_ids", "padding_idx", "tie_weights",
          "reverse_dtype", "logit_soft_cap")


@keras.saving.register_keras_serializable(package="keras_embedlab")
class HashedEmbedding(LookupEmbedding):
    """Raw integer ids of any value -> the sum of `num_hashes` hashed rows.

    The hashing trick of thinc/spaCy's `HashEmbed`: each id is hashed
    (`keras_embedlab.hash_ids`: MurmurHash3 with `seed`) into `num_hashes`
    buckets of a table of `num_buckets` rows, and its vector is the sum of
    those rows. Two ids rarely share all their buckets, so most ids get
    their own vector from a small table. With the same table and seed, the
    output equals thinc's `HashEmbed(nO=output_dim, nV=num_buckets,
    seed=seed)` for `num_hashes=4`. The hash runs inside the layer, in
    compiled graphs too, on every backend.

    A `LookupEmbedding` whose ids are buckets: masks, bags (`combiner`),
    `max_norm`, `sparse=True` row-sparse training, LoRA, int8/int4 and
    saving work as there. Differences: every integer is a valid id, so
    there is no `invalid_ids` (nor `padding_idx`: use `mask_zero`);
    `reverse=True` is refused (logits over buckets mean nothing).

    Args:
        num_buckets: Integer in `[1, 2**31 - 1]`, the table's rows.
        output_dim: Integer. Dimension of each embedding vector.
        num_hashes: Integer in `[1, 4]`: rows summed per id (thinc: 4).
        seed: Integer in `[0, 2**32)`: the hash's seed. Layers with
            different seeds hash differently.
        embeddings_initializer, embeddings_regularizer,
        embeddings_constraint, weights, lora_rank, lora_alpha,
        quantization_config, sparse: as `LookupEmbedding`. `weights` is
            the table, or the table and the importance weights.
        mask_zero: Boolean. If `True`, raw id 0 is padding: it is masked
            and, in bags, counts nowhere.
        max_norm, norm_type, combiner: as `LookupEmbedding`; `max_norm`
            clips each id's vector (its sum of rows), before a bag is
            combined.
        importance_buckets: Optional positive integer. If set, each id's
            rows are weighted rather than summed (hash embeddings,
            Svenstrup et al. 2017): a trainable table `importance` of
            shape `(importance_buckets, num_hashes)`, initialised to ones,
            gives each id the weights in its row
            `hash_ids(ids, importance_buckets, (seed + 1) % 2**32, 1)`, and
            its vector is `sum_k importance[j, k] * table[bucket_k]`.
        id_halves: Boolean. If `True`, ids arrive as int32 of shape
            `(..., 2)`, each id's low and high 32-bit words, as
            `keras_embedlab.split_ids` makes them: the way to give 64-bit
            ids to a model on JAX without x64, whose trainer narrows int64
            batches to int32 before any layer runs. Without it, the layer
            refuses int64 inputs on JAX without x64 (NumPy ids that fit in
            int32 excepted) rather than let them collide.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Call arguments:
        inputs: Integer tensor of raw ids, any rank (int8 to int64, or
            NumPy arrays of any integer dtype, uint64 included); with
            `id_halves=True`, int32 of shape `ids_shape + (2,)`.
        bag_weights: Optional float tensor of the ids' shape; needs a
            `combiner`.

    Input shape:
        Any shape `ids_shape` (`ids_shape + (2,)` with `id_halves=True`).

    Output shape:
        `ids_shape + (output_dim,)`; with a `combiner`,
        `ids_shape[:-1] + (output_dim,)`.

    Example:

    >>> layer = HashedEmbedding(1000, 8, id_halves=True)
    >>> ids = np.array([[3, 2**40 + 7]])  # any int64, on every backend
    >>> tuple(layer(keras_embedlab.split_ids(ids)).shape)
    (1, 2, 8)
    """

    def __init__(
        self,
        num_buckets: int,
        output_dim: int,
        num_hashes: int = 4,
        seed: int = 0,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        *,
        importance_buckets: int | None = None,
        id_halves: bool = False,
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, why in _REFUSED.items():
            if name in kwargs:
                raise ValueError(
                    f"`HashedEmbedding` takes raw ids and has no `{name}`: "
                    f"{why}. Received: {name}={kwargs[name]!r}. Remove it.")
        check_hash_arguments(num_buckets, seed, num_hashes)
        if importance_buckets is not None and (
                not isinstance(importance_buckets, int)
                or isinstance(importance_buckets, bool)
                or not 1 <= importance_buckets <= 2**31 - 1):
            raise ValueError(
                "`importance_buckets` must be None or an integer in "
                f"[1, 2**31 - 1]. Received: importance_buckets="
                f"{importance_buckets!r} (of type "
                f"{type(importance_buckets).__name__}).")
        check_bool("id_halves", id_halves)
        super().__init__(
            num_buckets, output_dim,
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero, lora_rank=lora_rank, lora_alpha=lora_alpha,
            quantization_config=quantization_config, sparse=sparse,
            invalid_ids="zeros", **kwargs)
        self.num_buckets = num_buckets
        self.num_hashes = num_hashes
        self.seed = int(seed)
        self.importance_buckets = importance_buckets
        self.id_halves = id_halves
        if weights is not None:
            self._build_with_weights(as_weight_list(weights), lambda w: w + [
                ops.convert_to_numpy(self.importance)
            ] if len(w) == 1 and importance_buckets else w)

    def build(self, input_shape=None):
        if self.built:
            return
        if not self.id_halves and not backend.keeps_int64():
            # The one truncation the layer cannot see: Keras's JAX trainer
            # narrows int64 batches to int32 before the step runs.
            warnings.warn(
                f"Layer '{self.name}' (HashedEmbedding) runs on JAX without "
                "x64: it sees int32 ids, and Keras narrows int64 batches "
                "given to fit/predict/evaluate to int32 before any layer "
                "runs, so ids of 2**31 or more would silently share "
                "buckets. For 64-bit ids, feed keras_embedlab.split_ids(ids) "
                "to a layer with id_halves=True, or set JAX_ENABLE_X64=1. "
                "Ignore this warning if every id is below 2**31.",
                stacklevel=2)
        super().build(input_shape)

    def _finish_build(self):
        # After the table (weights are [table, importance]), before LoRA.
        if self.importance_buckets:
            self.importance = self.add_weight(
                shape=(self.importance_buckets, self.num_hashes),
                initializer="ones", name="importance", autocast=False)
        super()._finish_build()

    # Ids.

    def _host_ids(self, ids):
        """NumPy raw ids: every integer is valid; never silently narrowed."""
        return raw_host_ids(
            ids, self.name,
            lambda: narrowed_int64_error(f"Layer '{self.name}'"),
            halves=self.id_halves)

    def _check_symbolic_ids(self, dtype):
        reader.check_id_dtype(dtype, self.name)
        if "int" not in dtype:
            raise TypeError(
                f"Layer '{self.name}' (HashedEmbedding) takes integer ids. "
                f"Received ids of dtype {dtype}. Give the model an integer "
                "input, e.g. keras.Input(shape, dtype='int64') (a Sequential "
                "model without an Input is built with float32 inputs).")
        if (not self.id_halves and dtype in ("int64", "uint64", "uint32")
                and not backend.keeps_int64()):
            raise narrowed_int64_error(
                f"Layer '{self.name}' (input dtype {dtype})")

    def _buckets(self, ids, num_buckets, seed, num_hashes):
        return hash_ids(ids, num_buckets, seed, num_hashes,
                        id_halves=self.id_halves)

    def _not_padding(self, ids):
        """Bool of the ids' shape: False for raw id 0 with `mask_zero`."""
        if self.id_halves:
            return ops.logical_or(ops.not_equal(ids[..., 0], 0),
                                  ops.not_equal(ids[..., 1], 0))
        return ops.not_equal(ids, 0)

    # Reading.

    def call(self, inputs, bag_weights=None, reverse=False):
        if reverse:
            raise ValueError(
                f"Layer '{self.name}' is a HashedEmbedding: its rows are "
                "buckets shared by many ids, so `reverse=True` (logits over "
                "the table's rows) has no meaning. Use a separate output "
                "layer.")
        if backend.is_ragged(inputs):
            return backend.map_ragged_values(inputs, self.call)
        ids = ops.convert_to_tensor(inputs)
        self._check_symbolic_ids(standardize_dtype(ids.dtype))
        buckets = self._buckets(ids, self.num_buckets, self.seed,
                                self.num_hashes)
        rows = self._gather(buckets)  # ids_shape + (num_hashes, dim)
        if self.importance_buckets:
            index = self._buckets(ids, self.importance_buckets,
                                  (self.seed + 1) % 2**32, 1)[..., 0]
            weights = ops.take(self.importance, index, axis=0)
            vectors = reader.weighted_sum(rows, ops.cast(weights, rows.dtype))
        else:
            vectors = ops.sum(rows, axis=-2)
        if self.combiner is None:
            vectors = reader.clip_rows(vectors, self.max_norm,
                                       self.norm_type)
        else:
            weights = self._raw_bag_weights(ids, bag_weights, vectors.dtype)
            vectors = reader.combine(vectors, weights, self.combiner,
                                     self.max_norm, self.norm_type)
        return ops.cast(vectors, self.compute_dtype)

    def _raw_bag_weights(self, ids, bag_weights, dtype):
        keep = self._not_padding(ids)
        self._check_bag_rank(keep.shape)
        if bag_weights is None:
            weights = ops.ones(ops.shape(keep), dtype=dtype)
        else:
            weights = ops.convert_to_tensor(bag_weights)
            check_bag_weights(weights, keep, self.name)
            weights = ops.cast(weights, dtype)
        if not self.mask_zero:
            return weights
        return ops.where(keep, weights, ops.zeros_like(weights))

    def compute_mask(self, inputs, mask=None):
        if self.combiner is not None or not self.mask_zero:
            return None
        return self._not_padding(inputs)

    def _ids_shape(self, input_shape):
        return tuple(input_shape[:-1]) if self.id_halves else tuple(
            input_shape)

    def compute_output_shape(self, input_shape, reverse=False):
        return super().compute_output_shape(self._ids_shape(input_shape))

    def compute_output_spec(self, inputs, bag_weights=None, reverse=False):
        self._check_symbolic_ids(standardize_dtype(inputs.dtype))
        ragged = self.combiner is None and getattr(inputs, "ragged", False)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape),
                                 dtype=self.compute_dtype, ragged=ragged)

    # Saving and quantization.

    def quantize(self, mode=None, type_check=True, config=None):
        check_quantizable(self, HashedEmbedding, type_check)
        super(LookupEmbedding, self).quantize(mode, type_check=False,
                                              config=config)

    def _layer_variables(self):
        if not self.importance_buckets:
            return {}
        return {"importance": self.importance}

    @property
    def variable_serialization_spec(self):
        extra = ["importance"] if self.importance_buckets else []
        return {mode: [*names, *extra] for mode, names
                in super().variable_serialization_spec.items()}

    def get_config(self):
        config = super().get_config()
        for name in _FIXED:
            config.pop(name, None)
        config.update({
            "num_buckets": self.num_buckets,
            "num_hashes": self.num_hashes,
            "seed": self.seed,
            "importance_buckets": self.importance_buckets,
            "id_halves": self.id_halves,
        })
        return config

