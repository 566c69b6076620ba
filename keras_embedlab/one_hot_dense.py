"""`OneHotDense`: a Dense layer fed one-hot vectors, the twin of a lookup."""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from keras_embedlab import _ids


@keras.saving.register_keras_serializable(package="keras_embedlab")
class OneHotDense(_ids.IdsLayer):
    """Computes `activation(one_hot(ids) @ kernel + bias)`.

    This is literally `keras.layers.Dense` applied to one-hot vectors, built
    with `keras.ops.one_hot` and `keras.ops.matmul`. With `use_bias=False` and
    no activation it returns exactly what `LookupEmbedding` with the same
    matrix returns, and its gradient equals the lookup's; it costs
    `O(ids * input_dim * output_dim)` instead of `O(ids * output_dim)`.

    Args:
        input_dim: Integer. Size of the vocabulary (length of the one-hot
            vectors).
        output_dim: Integer. Number of output units.
        use_bias: Boolean. Whether to add a bias vector.
        activation: Activation function (see `keras.activations`); `None`
            means linear.
        kernel_initializer: Initializer for the `kernel`. Defaults to
            `"uniform"`, like an embedding table, rather than Dense's
            `"glorot_uniform"`.
        bias_initializer: Initializer for the `bias`.
        kernel_regularizer: Regularizer applied to the `kernel`.
        bias_regularizer: Regularizer applied to the `bias`.
        kernel_constraint: Constraint applied to the `kernel`.
        bias_constraint: Constraint applied to the `bias`.
        mask_zero: Boolean. If `True`, id 0 is padding and `compute_mask`
            returns `ids != 0`.
        weights: Optional initial weights: the kernel as an array, or a list
            `[kernel]` or `[kernel, bias]`.
        invalid_ids: `"error"` (default) or `"zeros"`, with the same meaning
            as in `LookupEmbedding`; with `"zeros"` an invalid id becomes an
            all-zero one-hot row, so its output is `activation(bias)`.
        padding_idx: Optional id mapped to an all-zero one-hot row (output
            `activation(bias)`), so its kernel row never receives a
            gradient, as in `LookupEmbedding`.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Call arguments:
        inputs: Integer tensor of ids, any rank.

    Input shape:
        Any shape `ids_shape`.

    Output shape:
        `ids_shape + (output_dim,)`.

    Example:

    >>> layer = OneHotDense(3, 2, weights=[[[0., 1.], [2., 3.], [4., 5.]]])
    >>> keras.ops.convert_to_numpy(layer(keras.ops.array([2, 0])))
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        use_bias=False,
        activation=None,
        kernel_initializer="uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        mask_zero=False,
        weights=None,
        invalid_ids="error",
        padding_idx=None,
        **kwargs,
    ):
        _ids.check_bool("use_bias", use_bias)
        super().__init__(input_dim, output_dim, mask_zero, invalid_ids,
                         padding_idx, **kwargs)
        self.use_bias = use_bias
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        if weights is not None:
            self.build()
            weights = _ids.as_weight_list(weights)
            if use_bias and len(weights) == 1:
                weights.append(ops.convert_to_numpy(self.bias))
            self.set_weights(weights)

    def build(self, input_shape=None):
        if self.built:
            return
        self.kernel = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.output_dim,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    def call(self, inputs):
        ids = self._prepare_ids(inputs)
        one_hot = _ids.one_hot_rows(ids, self.input_dim, self.compute_dtype,
                                    self.invalid_ids, self.name)
        one_hot = _ids.zero_padding(one_hot, ids, self.padding_idx)
        outputs = ops.matmul(one_hot, self.kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)

    def get_config(self):
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "use_bias": self.use_bias,
            "activation": activations.serialize(self.activation),
            "mask_zero": self.mask_zero,
            "invalid_ids": self.invalid_ids,
            "padding_idx": self.padding_idx,
        }
        for name in ("kernel", "bias"):
            for kind, module in (
                ("initializer", initializers),
                ("regularizer", regularizers),
                ("constraint", constraints),
            ):
                key = f"{name}_{kind}"
                config[key] = module.serialize(getattr(self, key))
        return {**super().get_config(), **config}

    @classmethod
    def from_embedding(cls, layer):
        """An equal `OneHotDense` whose kernel copies `layer.embeddings`.

        `layer` is a built `LookupEmbedding` or `keras.layers.Embedding`.
        """
        _ids.check_built(layer, "from_embedding")
        return cls(
            layer.input_dim,
            layer.output_dim,
            mask_zero=layer.mask_zero,
            invalid_ids=getattr(layer, "invalid_ids", "error"),
            padding_idx=getattr(layer, "padding_idx", None),
            kernel_initializer=layer.embeddings_initializer,
            kernel_regularizer=layer.embeddings_regularizer,
            kernel_constraint=layer.embeddings_constraint,
            weights=[ops.convert_to_numpy(layer.embeddings)],
            trainable=layer.trainable,
            dtype=layer.dtype_policy,
        )
