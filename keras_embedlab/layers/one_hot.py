"""`OneHotDense`: a Dense layer fed one-hot vectors, the twin of a lookup."""

from typing import Any

import keras
from keras import activations, constraints, initializers, ops, regularizers

from keras_embedlab import backend
from keras_embedlab.ids import reader
from keras_embedlab.layers.base import (
    EmbeddingBase,
    as_weight_list,
    check_built,
    shared_arguments,
)
from keras_embedlab.table.layer import (
    TableSpec,
    check_quantizable,
    converted,
    float_table,
    table_variable_kinds,
)
from keras_embedlab.table.storage import Storage
from keras_embedlab.utils.argument_checks import check_bool

# One scale per kernel row (per id), as a lookup table is quantized, so that
# a quantized OneHotDense equals the quantized LookupEmbedding.
_TABLE = Storage("kernel", "_kernel", channel_axis=-1)
_LORA = ("lora_kernel_a", "lora_kernel_b")
# Every variable the kernel may be stored in, in any mode (`layout_map`).
TABLE_VARIABLES = table_variable_kinds(_TABLE, _LORA)

@keras.saving.register_keras_serializable(package="keras_embedlab")
class OneHotDense(EmbeddingBase):
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
        max_norm: Optional positive number: rows of `one_hot @ kernel`
            with a larger `norm_type`-norm are scaled down to it, before
            bias and activation, as in `LookupEmbedding` (computed as
            `one_hot @ clipped_kernel`, the same values: each output row is
            a kernel row). The kernel is left untouched.
        norm_type: Positive number, the `p` of the p-norm. Default 2.0.
        combiner: Optional `"sum"`, `"mean"` or `"sqrtn"`, as in
            `LookupEmbedding`. Here it is a Dense layer on a bag as a
            (weighted) multi-hot vector: `"sum"` is
            `activation(multi_hot @ kernel + bias)` where `multi_hot[v]` is
            the total weight of id `v` in the bag (its count, without
            `bag_weights`); `"mean"` and `"sqrtn"` divide
            `multi_hot @ kernel` before the bias is added. An empty bag
            gives `activation(bias)` (zeros without a bias).
        lora_rank, lora_alpha, quantization_config: As
            `keras.layers.Dense`: LoRA on the kernel (`lora_kernel_a`,
            `lora_kernel_b`), and int8/int4 kernels (`quantize`). Unlike
            `Dense`, the kernel is quantized with one scale per row (per
            id, `kernel_scale` of shape `(input_dim,)`), as a lookup table
            is, so that a quantized `OneHotDense` equals the quantized
            `LookupEmbedding` with the same table.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Call arguments:
        inputs: Integer tensor of ids, any rank; with `reverse=True`, float
            vectors of shape `(..., output_dim)`.
        bag_weights: Optional float tensor of the ids' shape, one weight
            per id; needs a `combiner`.
        reverse: Boolean. If `True`, returns `inputs @ kernel.T` (the
            `padding_idx` row zeroed, rows clipped to `max_norm`), logits
            over the vocabulary. Bias and activation are not applied: the
            bias has shape `(output_dim,)` and belongs to the forward
            direction. The incoming mask, if any, is passed through.

    Input shape:
        Any shape `ids_shape`; with a `combiner`, `batch_shape + (bag,)`;
        with `reverse=True`, `batch_shape + (output_dim,)`.

    Output shape:
        `ids_shape + (output_dim,)`; with a `combiner`,
        `batch_shape + (output_dim,)`; with `reverse=True`,
        `batch_shape + (input_dim,)`.

    Example:

    >>> layer = OneHotDense(3, 2, weights=[[[0., 1.], [2., 3.], [4., 5.]]])
    >>> keras.ops.convert_to_numpy(layer(keras.ops.array([2, 0])))
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        use_bias: bool = False,
        activation: Any = None,
        kernel_initializer: Any = "uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        # The shared keyword arguments (`invalid_ids`, ...) are handled by
        # `EmbeddingBase`: see `layers.base.SHARED_ARGUMENTS`.
        check_bool("use_bias", use_bias)
        super().__init__(input_dim, output_dim, lora_rank=lora_rank,
                         lora_alpha=lora_alpha,
                         quantization_config=quantization_config,
                         mask_zero=mask_zero, **kwargs)
        self.use_bias = use_bias
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        # Variables are read in their own dtype and cast where needed (see
        # `call`), as `LookupEmbedding` does.
        self.autocast = False
        if weights is not None:
            self._build_with_weights(as_weight_list(weights), lambda w: w + [
                ops.convert_to_numpy(self.bias)
            ] if use_bias and len(w) == 1 else w)

    def _table(self):
        """What `TableLayer` needs to store, read, quantize and save the
        kernel."""
        return TableSpec(
            storage=_TABLE, shape=(self.input_dim, self.output_dim),
            lora=_LORA, constraint_argument="kernel_constraint",
            constraint_word="kernel", constraint=self.kernel_constraint,
            regularizer=self.kernel_regularizer)

    def build(self, input_shape=None):
        if self.built:
            return
        self._build_table(
            self._table(),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            # Read in float32 under mixed precision (see `call`); the
            # layer-level `autocast = False` alone does not stop Keras
            # from casting variables when the dtypes are mixed.
            autocast=False,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.output_dim,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
                autocast=False,
            )
        self._finish_build()

    def _layer_variables(self):
        return {} if self.bias is None else {"bias": self.bias}

    def quantize(self, mode=None, type_check=True, config=None):
        # Subclasses are not quantized unless they say so, as in Keras.
        check_quantizable(self, OneHotDense, type_check)
        super().quantize(mode, type_check=False, config=config)

    @property
    def kernel(self):
        """The kernel, as `keras.layers.Dense.kernel`: with int8 the stored
        integers, with int4 the unpacked integers, with LoRA merged."""
        return self._table_property()

    @property
    def variable_serialization_spec(self):
        """Variable names in saved order, per mode (`Dense`'s format)."""
        return {
            None: ["kernel", "bias"],
            "int8": ["kernel", "bias", "kernel_scale"],
            "int4": ["kernel", "bias", "kernel_scale", "kernel_zero",
                     "g_idx"],
        }

    def call(self, inputs, bag_weights=None, reverse=False):
        if reverse:
            return self._reverse(inputs, bag_weights)
        if backend.is_ragged(inputs):
            # Ragged ids without a combiner: one-hot rows of the flat values.
            return backend.map_ragged_values(inputs, self.call)
        dtype = self.compute_dtype
        ids = self._prepare_ids(inputs)
        # Bag weights and norms in the variable dtype (float32 under mixed
        # precision), as in `LookupEmbedding`: a float16 sum of squares
        # overflows for rows of norm above 256. The matmul runs in `dtype`.
        weights = self._bag_weights(ids, bag_weights, self.variable_dtype)
        table = self._dense_table()
        one_hot = reader.one_hot_rows(ids, self.input_dim, dtype,
                                      self.invalid_ids, self.name, table)
        one_hot = reader.zero_padding(one_hot, ids, self.padding_idx)
        if self.combiner is not None:
            # A bag of ids as a (weighted) multi-hot vector.
            one_hot = ops.cast(reader.weighted_sum(one_hot, weights),
                               dtype)
        # Each output row is a kernel row: clipping the kernel's rows clips
        # the rows of `one_hot @ kernel`.
        kernel = reader.clip_rows(table, self.max_norm,
                                  self.norm_type)
        outputs = ops.matmul(one_hot, ops.cast(kernel, dtype))
        if self.combiner is not None:
            outputs = reader.normalise_bags(outputs, weights,
                                            self.combiner)
        outputs = ops.cast(outputs, dtype)
        if self.use_bias:
            outputs = ops.add(outputs, ops.cast(self.bias, dtype))
        return self.activation(outputs)

    def get_config(self):
        config = {
            "use_bias": self.use_bias,
            "activation": activations.serialize(self.activation),
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
    def from_embedding(cls, layer: keras.layers.Layer) -> "OneHotDense":
        """An equal `OneHotDense` whose kernel copies `layer.embeddings`.

        `layer` is a built `LookupEmbedding` or `keras.layers.Embedding`.
        """
        check_built(layer, "from_embedding")
        return converted(layer, "embeddings", cls(
            layer.input_dim,
            layer.output_dim,
            **shared_arguments(layer),
            kernel_initializer=layer.embeddings_initializer,
            kernel_regularizer=layer.embeddings_regularizer,
            kernel_constraint=layer.embeddings_constraint,
            weights=float_table(layer, "embeddings"),
            trainable=layer.trainable,
            dtype=layer.dtype_policy,
            quantization_config=getattr(layer, "quantization_config", None),
        ))
