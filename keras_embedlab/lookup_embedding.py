"""`LookupEmbedding`: a drop-in for `keras.layers.Embedding` on `ops.take`."""

import keras
from keras import constraints, initializers, ops, regularizers

from keras_embedlab import _backend, _ids, sparse_updates


@keras.saving.register_keras_serializable(package="keras_embedlab")
class LookupEmbedding(_ids.IdsLayer):
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
            values rather than being zeroed). Combines with `mask_zero`.
        sparse: Boolean. If `True`, training updates only the table rows in
            the batch when paired with a row-sparse optimizer
            (`keras_embedlab.LazyAdam`, `SparseSGD`, `SparseAdagrad`); on
            JAX the model must also be a `keras_embedlab.RowSparseModel`.
            See `keras_embedlab.sparse_updates`. Not compatible with
            `embeddings_regularizer` or `embeddings_constraint`, which act
            on the whole table.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Call arguments:
        inputs: Integer tensor of ids, any rank. Other dtypes are cast to
            int32, as `keras.layers.Embedding` does.

    Input shape:
        Any shape `ids_shape`.

    Output shape:
        `ids_shape + (output_dim,)`.

    Example:

    >>> layer = LookupEmbedding(3, 2, weights=[[[0., 1.], [2., 3.], [4., 5.]]])
    >>> keras.ops.convert_to_numpy(layer(keras.ops.array([2, 0])))
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        invalid_ids="error",
        padding_idx=None,
        sparse=False,
        **kwargs,
    ):
        super().__init__(input_dim, output_dim, mask_zero, invalid_ids,
                         padding_idx, **kwargs)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        sparse_updates.check_sparse(sparse, self)
        self.sparse = sparse
        self.autocast = False
        if weights is not None:
            self.build()
            self.set_weights(_ids.as_weight_list(weights))

    def build(self, input_shape=None):
        if self.built:
            return
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True

    def call(self, inputs):
        ids = self._prepare_ids(inputs)
        outputs = self._gather(ids)
        outputs = _ids.zero_padding(outputs, ids, self.padding_idx)
        return ops.cast(outputs, self.compute_dtype)

    def _gather(self, ids):
        """`embeddings[ids]`: the one place the table is read.

        With `sparse=False` the TensorFlow gradient is made dense, as on JAX.
        With `sparse=True` it stays a `tf.IndexedSlices`, and under
        `RowSparseModel` on JAX the rows are what gets differentiated.
        """
        if self.sparse:
            rows = _ids.take_rows(self.embeddings, ids, self.input_dim,
                                  self.invalid_ids, self.name)
            return sparse_updates.trace_rows(self, ids, rows)
        table = _backend.dense_gradient(self.embeddings)
        return _ids.take_rows(table, ids, self.input_dim, self.invalid_ids,
                              self.name)

    def get_config(self):
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(
                self.embeddings_initializer
            ),
            "embeddings_regularizer": regularizers.serialize(
                self.embeddings_regularizer
            ),
            "embeddings_constraint": constraints.serialize(
                self.embeddings_constraint
            ),
            "mask_zero": self.mask_zero,
            "invalid_ids": self.invalid_ids,
            "padding_idx": self.padding_idx,
            "sparse": self.sparse,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_one_hot_dense(cls, layer):
        """An equal `LookupEmbedding` holding a copy of `layer.kernel`.

        Exact only without a non-zero bias and with a linear activation;
        otherwise raises `ValueError`.
        """
        _ids.check_built(layer, "from_one_hot_dense")
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
        return cls(
            layer.input_dim,
            layer.output_dim,
            mask_zero=layer.mask_zero,
            invalid_ids=layer.invalid_ids,
            padding_idx=layer.padding_idx,
            embeddings_initializer=layer.kernel_initializer,
            embeddings_regularizer=layer.kernel_regularizer,
            embeddings_constraint=layer.kernel_constraint,
            weights=[ops.convert_to_numpy(layer.kernel)],
            trainable=layer.trainable,
            dtype=layer.dtype_policy,
        )
