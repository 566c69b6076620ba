"""`LookupEmbedding`: a drop-in for `keras.layers.Embedding` on `ops.take`."""

from typing import Any

import keras
from keras import constraints, initializers, ops, regularizers

from keras_embedlab import backend
from keras_embedlab.ids import reader
from keras_embedlab.layers.base import (
    EmbeddingBase,
    as_weight_list,
    check_built,
    shared_arguments,
)
from keras_embedlab.sampled_softmax import loss as sampled_loss
from keras_embedlab.sparse_updates.mark import ROW_SPARSE_MARK, TRACE_ATTRIBUTE
from keras_embedlab.table.layer import (
    TableSpec,
    check_quantizable,
    converted,
    float_table,
    table_variable_kinds,
)
from keras_embedlab.table.storage import QUANTIZED_MODES, Storage
from keras_embedlab.utils.argument_checks import check_bool, is_number

# The table and the untied reverse projection (`tie_weights=False`), named
# and laid out as in `keras.layers.ReversibleEmbedding`.
_TABLE = Storage("embeddings", "_embeddings", channel_axis=-1)
_LORA = ("lora_embeddings_a", "lora_embeddings_b")
# Every variable the table may be stored in, in any mode (`layout_map`).
TABLE_VARIABLES = table_variable_kinds(_TABLE, _LORA)
_REVERSE = Storage("reverse_embeddings", "reverse_embeddings", channel_axis=0,
                   zero_dtype=None)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class LookupEmbedding(EmbeddingBase):
    """Turns integer ids into dense vectors by looking up rows of a table.

    Same arguments, defaults, variable (`embeddings`) and masking as
    `keras.layers.Embedding`, so weights transfer both ways with
    `set_weights(other.get_weights())`. Unlike it, invalid ids behave the same
    on every backend and in every execution mode, and training gives the same
    weights on TensorFlow and JAX (the TensorFlow gradient is made dense, as
    it is on JAX, so optimizers such as Adam update their whole state).

    Mathematically this is `OneHotDense` without bias or activation: row `i`
    of the output is `one_hot(ids[i]) @ embeddings`. The lookup never builds
    the one-hot matrix.

    Args:
        input_dim: Integer. Size of the vocabulary, i.e. largest id + 1.
        output_dim: Integer. Dimension of each embedding vector.
        embeddings_initializer: Initializer for the `embeddings` matrix.
        embeddings_regularizer: Regularizer applied to `embeddings`.
        embeddings_constraint: Constraint applied to `embeddings`.
        mask_zero: Boolean. If `True`, id 0 is padding and `compute_mask`
            returns `ids != 0` for the following layers.
        weights: Optional initial matrix of shape `(input_dim, output_dim)`,
            as an array or a one-item list.
        invalid_ids: What an id `< 0` or `>= input_dim` does. `"error"`
            (default): eager calls raise `ValueError`; TensorFlow graphs raise
            `InvalidArgumentError` and JAX under `jit` raises
            `JaxRuntimeError`, both with the same message. On TensorFlow the
            layer sets `supports_jit = False` so that `model.fit` and
            `model.predict` do not pick XLA, where assertions are dropped;
            inside a `tf.function(jit_compile=True)` of your own the id gives
            an all-zero row instead. `"zeros"`: invalid ids give all-zero rows
            (and no gradient) everywhere. Negative ids never wrap.
        padding_idx: Optional id whose output row is all zeros and whose
            table row never receives a gradient (as `torch.nn.Embedding`'s
            `padding_idx`; unlike it, the stored row keeps its initial
            values rather than being zeroed). Combines with `mask_zero`,
            which masks id 0 only: a `padding_idx` other than 0 gives zero
            vectors that the next layers still count unless you mask them.
        sparse: Boolean. If `True`, training updates only the table rows in
            the batch when paired with a row-sparse optimizer
            (`keras_embedlab.LazyAdam`, `SparseSGD`, `SparseAdagrad`); on
            JAX and PyTorch the model must also be a
            `keras_embedlab.RowSparseModel`.
            See `keras_embedlab.sparse_updates`. Not compatible with
            `embeddings_regularizer` or `embeddings_constraint`, which act
            on the whole table, nor with LoRA (`lora_rank`, `enable_lora`),
            which freezes it.
        max_norm: Optional positive number. Each looked-up row whose
            `norm_type`-norm exceeds it is scaled down to norm `max_norm`
            in the output; the table is left untouched and the scale is
            differentiated (TensorFlow's `embedding_lookup(max_norm=...)`);
            `torch.nn.Embedding(max_norm=...)` instead renormalises the
            stored rows in place, and its gradient skips the scale. With a
            `combiner`, rows are clipped before they are combined, as in
            `torch.nn.EmbeddingBag`. Not differentiated at an all-zero row
            (no NaN).
        norm_type: Positive number, the `p` of the p-norm for `max_norm`.
            Default 2.0.
        combiner: Optional `"sum"`, `"mean"` or `"sqrtn"`: the last axis of
            the ids is a bag, reduced to one vector. With weights `w`
            (`bag_weights`, default 1): `"sum"` is `sum(w * row)`, `"mean"`
            divides it by `sum(w)`, `"sqrtn"` by `sqrt(sum(w ** 2))`. Ids
            equal to `padding_idx`, id 0 with `mask_zero`, and invalid ids
            with `invalid_ids="zeros"` get weight 0 (they count nowhere); a
            bag whose weights sum to 0, e.g. an empty one, gives zeros. No
            mask is returned. Ids need rank 2 or more (a batch axis and the
            bag axis). On TensorFlow, ragged ids (`tf.RaggedTensor`) are
            bags of different sizes.
        lora_rank: Optional positive integer: build with LoRA of this rank
            (`enable_lora`), as `keras.layers.Embedding`.
        lora_alpha: Optional scale of the LoRA delta, `lora_alpha /
            lora_rank`; defaults to `lora_rank`.
        quantization_config: Optional `keras.quantizers` config, for a layer
            built quantized (with a `dtype` such as `"int8_from_float32"`)
            or kept from `quantize(mode, config=...)`.
        tie_weights: Boolean, keyword-only, default `True`. If `False`,
            `reverse=True` uses its own trainable `reverse_embeddings` of
            shape `(output_dim, input_dim)`, as
            `keras.layers.ReversibleEmbedding(tie_weights=False)`.
        reverse_dtype: Optional dtype of the `reverse=True` matmul and its
            logits; defaults to the compute dtype.
        logit_soft_cap: Optional positive number: `reverse=True` returns
            `tanh(logits / logit_soft_cap) * logit_soft_cap`.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    LoRA and quantization (`enable_lora`, `quantize("int8" | "int4")`,
    `model.quantize`) follow `keras.layers.Embedding`: same variables and
    save format; every read (lookups, bags, `max_norm`, `padding_idx`,
    `reverse=True`) uses the quantized or LoRA table. See `table/storage.py`.

    Call arguments:
        inputs: Integer tensor of ids, any rank. Other dtypes are cast to
            int32, as `keras.layers.Embedding` does. With `reverse=True`,
            float vectors of shape `(..., output_dim)`.
        bag_weights: Optional float tensor of the ids' shape (ragged like
            them if they are ragged), one weight per id; needs a
            `combiner`.
        reverse: Boolean. If `True`, returns the tied output projection
            `inputs @ embeddings.T`, logits over the vocabulary, as
            `keras.layers.ReversibleEmbedding` does. A tied table is the
            one the forward direction uses: the `padding_idx` row is zero (its
            logit is 0 and it gets no gradient) and rows are clipped to
            `max_norm`. The incoming mask, if any, is passed through.

    Input shape:
        Any shape `ids_shape`; with a `combiner`, `ids_shape` is
        `batch_shape + (bag,)`; with `reverse=True`,
        `batch_shape + (output_dim,)`.

    Output shape:
        `ids_shape + (output_dim,)`; with a `combiner`,
        `batch_shape + (output_dim,)`; with `reverse=True`,
        `batch_shape + (input_dim,)`.

    Example:

    >>> layer = LookupEmbedding(3, 2, weights=[[[0., 1.], [2., 3.], [4., 5.]]])
    >>> keras.ops.convert_to_numpy(layer(keras.ops.array([2, 0])))
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        *,
        sparse: bool = False,
        tie_weights: bool = True,
        reverse_dtype: Any = None,
        logit_soft_cap: float | None = None,
        **kwargs: Any,
    ) -> None:
        # The shared keyword arguments (`invalid_ids`, ...) are handled by
        # `EmbeddingBase`: see `layers.base.SHARED_ARGUMENTS`.
        super().__init__(input_dim, output_dim, lora_rank=lora_rank,
                         lora_alpha=lora_alpha,
                         quantization_config=quantization_config,
                         mask_zero=mask_zero, **kwargs)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self._check_sparse(sparse)
        self.sparse = sparse
        check_bool("tie_weights", tie_weights)
        self.tie_weights = tie_weights
        self.reverse_dtype = reverse_dtype
        if logit_soft_cap is not None and not (is_number(logit_soft_cap)
                                               and logit_soft_cap > 0):
            # 0 would give all-zero logits, a negative cap flip them.
            raise ValueError(
                "`logit_soft_cap` must be None or a positive number. "
                f"Received: logit_soft_cap={logit_soft_cap!r} (of type "
                f"{type(logit_soft_cap).__name__})."
            )
        self.logit_soft_cap = logit_soft_cap
        self.autocast = False
        if weights is not None:
            # The table alone, untied: the reverse projection keeps its init.
            self._build_with_weights(as_weight_list(weights), lambda w: w + [
                ops.convert_to_numpy(self.reverse_embeddings)
            ] if len(w) == 1 and not tie_weights else w)

    def _table(self):
        """What `TableLayer` needs to store, read, quantize and save the
        table (and an untied reverse projection)."""
        extra = () if self.tie_weights else (
            (_REVERSE, (self.output_dim, self.input_dim)),)
        return TableSpec(
            storage=_TABLE, shape=(self.input_dim, self.output_dim),
            lora=_LORA, constraint_argument="embeddings_constraint",
            constraint_word="embedding",
            constraint=self.embeddings_constraint,
            regularizer=self.embeddings_regularizer, sparse=self.sparse,
            extra=extra)

    @property
    def embeddings(self):
        """The table variable, as `keras.layers.Embedding.embeddings`: with
        int8 the stored integers, with int4 the unpacked integers, with
        LoRA the merged table."""
        return self._table_property()

    def build(self, input_shape=None):
        if self.built:
            return
        self._build_table(
            self._table(),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            # Read in float32 under mixed precision (see `call`); the
            # layer-level `autocast = False` alone does not stop Keras
            # from casting variables when the dtypes are mixed.
            autocast=False,
        )
        if (not self.tie_weights
                and self.quantization_mode not in QUANTIZED_MODES):
            _REVERSE.build_float(self, (self.output_dim, self.input_dim),
                                 initializer=self.embeddings_initializer)
        if self.sparse and self._plain_table():
            setattr(self._embeddings, ROW_SPARSE_MARK, self.name)
        self._finish_build()

    def _check_sparse(self, sparse):
        check_bool("sparse", sparse)
        if not sparse:
            return
        if self.lora_rank is not None:
            # As `enable_lora` refuses a sparse table, at construction.
            raise ValueError(
                f"`sparse=True` updates table rows, but LoRA freezes the "
                f"table and trains two dense factors instead. Received: "
                f"sparse=True with lora_rank={self.lora_rank!r} on layer "
                f"'{self.name}'. Use sparse=False with LoRA, or drop "
                "`lora_rank`."
            )
        for name in ("embeddings_regularizer", "embeddings_constraint"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"`sparse=True` updates only the rows in the batch, but "
                    f"`{name}` acts on the whole table on every step. "
                    f"Received: sparse=True with {name}="
                    f"{getattr(self, name)!r} on layer '{self.name}'. Drop "
                    f"`{name}` or use sparse=False."
                )

    def call(self, inputs, bag_weights=None, reverse=False):
        if reverse:
            if self.sparse:
                raise ValueError(
                    f"Layer '{self.name}' has sparse=True, but "
                    "`reverse=True` reads every row of the table, so its "
                    "gradient covers the whole table. Use sparse=False for "
                    "a tied output projection, or a separate output layer "
                    "(e.g. keras.layers.Dense) with a sparse table."
                )
            return self._reverse(inputs, bag_weights)
        if backend.is_ragged(inputs):
            # Ragged ids without a combiner: look up the flat values.
            return backend.map_ragged_values(inputs, self.call)
        ids = self._prepare_ids(inputs)
        weights = self._bag_weights(ids, bag_weights, self.variable_dtype)
        if (weights is not None and self.max_norm is None and not self.sparse
                and self._plain_table()):
            # PyTorch sums bags without gathering their rows first.
            sums = backend.fused_bag_sum(self._embeddings, ids, weights)
            if sums is not None:
                outputs = reader.normalise_bags(sums, weights,
                                                self.combiner)
                return ops.cast(outputs, self.compute_dtype)
        rows = self._gather(ids)
        rows = reader.zero_padding(rows, ids, self.padding_idx)
        if self.combiner is None:
            rows = reader.clip_rows(rows, self.max_norm, self.norm_type)
        else:
            rows = reader.combine(rows, weights, self.combiner,
                                  self.max_norm, self.norm_type)
        return ops.cast(rows, self.compute_dtype)

    def _gather(self, ids):
        """`embeddings[ids]`: the one place the table is read.

        With `sparse=False` the TensorFlow gradient is made dense, as on JAX.
        With `sparse=True` it stays a `tf.IndexedSlices`, and under
        `RowSparseModel` on JAX the rows are what gets differentiated.
        """
        if not self._plain_table():
            return self._table_rows(ids)  # Quantized or LoRA: `table/`.
        if self.sparse:
            rows = reader.take_rows(
                backend.variable_handle(self._embeddings), ids,
                self.input_dim, self.invalid_ids, self.name)
            trace = getattr(self._embeddings, TRACE_ATTRIBUTE, None)
            return rows if trace is None else trace.rows(self, ids, rows)
        table = backend.dense_gradient(self._embeddings)
        return reader.take_rows(table, ids, self.input_dim,
                                self.invalid_ids, self.name)

    def sampled_softmax_loss(self, labels, inputs, num_sampled: int,
                             num_true: int = 1, sampled_values: Any = None,
                             remove_accidental_hits: bool = True,
                             seed: Any = None):
        """The sampled softmax loss of the `reverse=True` logits.

        `keras_embedlab.sampled_softmax_loss` on this layer's output
        projection: the rows it reads are those `reverse=True` uses (a tied
        table's `padding_idx` row is zero and rows are clipped to
        `max_norm`; `tie_weights=False` reads `reverse_embeddings`),
        `logit_soft_cap` caps the logits before the correction, and only
        the true and sampled rows are read. Labels follow `invalid_ids`.
        With `sparse=True` the table's gradient has only those rows
        (row-sparse optimizers on TensorFlow). At inference, call the layer
        with `reverse=True` for the exact logits.

        Args:
            labels: Integer ids of shape `(batch, num_true)` (or `(batch,)`).
            inputs: Float vectors of shape `(batch, output_dim)`.
            num_sampled, num_true, sampled_values, remove_accidental_hits,
            seed: As for `keras_embedlab.sampled_softmax_loss`.

        Returns:
            Float32 losses of shape `(batch,)`.
        """
        sampled_loss.check_loss_arguments(num_sampled, self.input_dim,
                                          num_true, remove_accidental_hits,
                                          sampled_values)
        if not self.built:
            self.build()
        dtype = self.reverse_dtype or self.compute_dtype
        labels = sampled_loss.as_labels(labels, num_true)
        labels = ops.cast(self._prepare_ids(labels), "int32")
        inputs = sampled_loss.as_inputs(inputs, self.output_dim)
        inputs = ops.cast(self._quantize_inputs(inputs), dtype)
        return sampled_loss.sampled_logits_loss(
            self._reverse_rows, None, labels, inputs, num_sampled,
            self.input_dim, num_true, sampled_values,
            remove_accidental_hits, seed, soft_cap=self.logit_soft_cap)

    def _reverse_rows(self, ids):
        """Rows `ids` of the `reverse=True` projection, read alone."""
        untied = self._table_spec.extra
        if untied:
            kernel = untied[0][0].dense(self, self.output_dim,
                                        self.compute_dtype,
                                        self._group_index())
            return ops.transpose(ops.take(kernel, ids, axis=1))
        rows = reader.zero_padding(self._gather(ids), ids, self.padding_idx)
        return reader.clip_rows(rows, self.max_norm, self.norm_type)

    def quantize(self, mode=None, type_check=True, config=None):
        # Subclasses are not quantized unless they say so, as in Keras.
        check_quantizable(self, LookupEmbedding, type_check)
        super().quantize(mode, type_check=False, config=config)

    @property
    def variable_serialization_spec(self):
        """Variable names in saved order, per mode (Keras's format)."""
        reverse = [] if self.tie_weights else ["reverse_embeddings"]
        scales = ["embeddings_scale"] + [f"{n}_scale" for n in reverse]
        return {
            None: ["embeddings", *reverse],
            "int8": ["embeddings", "embeddings_scale", *reverse, *scales[1:]],
            "int4": ["embeddings", "embeddings_scale", "embeddings_zero",
                     "g_idx", *reverse, *scales[1:],
                     *[f"{n}_zero" for n in reverse]],
        }

    def get_config(self):
        config = {
            "embeddings_initializer": initializers.serialize(
                self.embeddings_initializer
            ),
            "embeddings_regularizer": regularizers.serialize(
                self.embeddings_regularizer
            ),
            "embeddings_constraint": constraints.serialize(
                self.embeddings_constraint
            ),
            "sparse": self.sparse,
            "tie_weights": self.tie_weights,
            "reverse_dtype": self.reverse_dtype,
            "logit_soft_cap": self.logit_soft_cap,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_one_hot_dense(cls, layer: keras.layers.Layer) -> "LookupEmbedding":
        """An equal `LookupEmbedding` holding a copy of `layer.kernel`.

        Exact only without a non-zero bias and with a linear activation;
        otherwise raises `ValueError`.
        """
        check_built(layer, "from_one_hot_dense")
        if layer.activation is not keras.activations.linear:
            raise ValueError(
                "Cannot convert a OneHotDense with a non-linear activation "
                f"to a lookup table exactly. Received: activation="
                f"{keras.activations.serialize(layer.activation)!r} on layer "
                f"'{layer.name}'. Use activation=None."
            )
        if layer.use_bias and ops.convert_to_numpy(layer.bias).any():
            raise ValueError(
                "Cannot convert a OneHotDense with a non-zero bias to a "
                f"lookup table exactly (layer '{layer.name}' has "
                "use_bias=True). Fold the bias into the kernel yourself "
                "(kernel + bias is a lookup table) or use use_bias=False."
            )
        return converted(layer, "kernel", cls(
            layer.input_dim,
            layer.output_dim,
            **shared_arguments(layer),
            embeddings_initializer=layer.kernel_initializer,
            embeddings_regularizer=layer.kernel_regularizer,
            embeddings_constraint=layer.kernel_constraint,
            weights=float_table(layer, "kernel"),
            trainable=layer.trainable,
            dtype=layer.dtype_policy,
            quantization_config=layer.quantization_config,
        ))
