"""How a table is stored: float, int8 with per-row scales, packed int4.

Storage is orthogonal to how a table is read. A `Storage` describes one
matrix of a layer (`LookupEmbedding.embeddings`, its untied
`reverse_embeddings`, `OneHotDense.kernel`): it builds its variables in
each mode, quantizes the float matrix, and gives back float values, either
whole (`dense`, for one-hot matmuls and reverse projections) or a few rows
(`read_rows`, for lookups). LoRA factors and the layer-level methods live in
`table/layer.py`.

Variable names, shapes, dtypes and arithmetic follow Keras 3.15's
`Embedding`/`ReversibleEmbedding` (so that weights move both ways), using
only `keras.quantizers`' public functions. `channel_axis` is the axis of a
row's `output_dim` values: the axis reduced for scales, grouped for
sub-channel int4, and along which int4 values are packed two per byte. It
is -1 for a lookup table `(input_dim, output_dim)` and 0 for a reverse
projection `(output_dim, input_dim)`.
"""

import math
from typing import NamedTuple

import numpy as np
from keras import dtype_policies, ops, quantizers

from keras_embedlab import backend

QUANTIZED_MODES = ("int8", "int4")
_RANGES = {"int8": (-127, 127), "int4": (-8, 7)}


def gather_valid(x, ids, fill=0):
    """A plain row gather, for ids known to be valid: the default `take` of
    `Storage.read_rows`, whose other `take` is JAX's filling gather
    (`backend.fill_take`, which uses `fill` for invalid ids). A vector
    (a scale per row) is read as a one-column table: Keras's PyTorch
    `take` flattens the ids of other shapes with `ravel`, which PyTorch's
    ONNX exporter cannot write."""
    if len(x.shape) == 1:
        return ops.squeeze(ops.take(ops.expand_dims(x, -1), ids, axis=0), -1)
    return ops.take(x, ids, axis=0)


def block_size_of(layer, config):
    """Keras's int4 block size: the config's, else the dtype policy's.

    `None` or -1 means per-channel (one scale per row).
    """
    if isinstance(config, quantizers.Int4QuantizationConfig):
        return config.block_size
    policy = layer.dtype_policy
    if isinstance(policy, dtype_policies.DTypePolicyMap):
        policy = policy[layer.path]
    size = getattr(policy, "block_size", None)
    return None if size == -1 else size


def is_grouped(block_size):
    return block_size is not None and block_size != -1


def _grouped(layer):
    """Whether `layer`'s int4 matrices have zero points (sub-channel)."""
    return (layer.quantization_mode == "int4"
            and is_grouped(layer._int4_block_size))


class StoredVariable(NamedTuple):
    """A variable holding (part of) a table, and where the table's rows and
    columns are along its axes (`None`: nowhere)."""

    attribute: str  # The layer attribute.
    name: str  # The variable's name, the end of its path.
    rank: int | None  # `None`: one or two axes, depending on the mode.
    rows: int | None
    columns: int | None


class Storage:
    """One matrix of a layer, in float, int8 or int4.

    Args:
        name: The variable's name (`"embeddings"`, `"kernel"`, ...); its
            scale and zero point are `name + "_scale"`, `name + "_zero"`.
        attribute: The layer attribute holding the main variable.
        channel_axis: -1 or 0 (see the module docstring).
        zero_dtype: dtype of the sub-channel zero points (as in Keras).
    """

    def __init__(self, name, attribute, channel_axis, zero_dtype="int8"):
        self.name = name
        self.attribute = attribute
        self.channel_axis = channel_axis
        self.zero_dtype = zero_dtype
        self.scale = name + "_scale"
        self.zero = name + "_zero"

    def _other_axis(self):
        return 0 if self.channel_axis == -1 else 1

    def stored_variables(self):
        """A `StoredVariable` for each variable that can hold this matrix,
        whatever the mode: the float or integer matrix, its scales (one per
        row, or per row and group) and int4 zero points. Scales and zero
        points have no column axis: they belong to whole rows, or to groups
        of columns that need not split evenly. Tables only
        (`channel_axis=-1`), which `distribution.layout_map` shards.
        """
        if self.channel_axis != -1:
            raise ValueError(
                f"Only a table (channel_axis=-1) has rows to shard. "
                f"Received: channel_axis={self.channel_axis} for "
                f"'{self.name}'."
            )
        return (StoredVariable(self.attribute, self.name, 2, 0, 1),
                StoredVariable(self.scale, self.scale, None, 0, None),
                StoredVariable(self.zero, self.zero, 2, 0, None))

    def build_float(self, layer, shape, **kwargs):
        setattr(layer, self.attribute,
                layer.add_weight(shape=shape, name=self.name, **kwargs))

    def build_quantized(self, layer, shape, mode, block_size):
        """Variables of `mode` for a float matrix of `shape` (zeros/ones)."""
        channels = shape[self.channel_axis]
        others = shape[self._other_axis()]
        stored = list(shape)
        if mode == "int4":
            stored[self.channel_axis] = (channels + 1) // 2
        setattr(layer, self.attribute, layer.add_weight(
            name=self.name, shape=tuple(stored), initializer="zeros",
            dtype="int8", trainable=False))
        scale_shape = (others,)
        if mode == "int4" and is_grouped(block_size):
            groups = math.ceil(channels / block_size)
            scale_shape = ((others, groups) if self.channel_axis == -1
                           else (groups, others))
        setattr(layer, self.scale, layer.add_weight(
            name=self.scale, shape=scale_shape, initializer="ones",
            trainable=False))
        if mode == "int4" and is_grouped(block_size):
            setattr(layer, self.zero, layer.add_weight(
                name=self.zero, shape=scale_shape, initializer="zeros",
                dtype=self.zero_dtype, trainable=False))

    def quantized_values(self, value, mode, config, block_size):
        """`{name: array}` of `value` (a float matrix) quantized to `mode`."""
        low, high = _RANGES[mode]
        if mode == "int4" and is_grouped(block_size):
            # Keras groups along axis 0: put the channels there.
            matrix = value if self.channel_axis == 0 else ops.transpose(value)
            grouped = quantizers.abs_max_quantize_grouped_with_zero_point
            q, scale, zero = grouped(matrix, block_size=block_size,
                                     value_range=(low, high), dtype="int8",
                                     to_numpy=True)
            if self.channel_axis == -1:
                q, scale, zero = (ops.transpose(q), ops.transpose(scale),
                                  ops.transpose(zero))
            values = {self.scale: scale, self.zero: zero}
        else:
            default = quantizers.AbsMaxQuantizer(
                axis=self.channel_axis, value_range=(low, high),
                output_dtype="int8")
            quantizer = quantizers.QuantizationConfig \
                .weight_quantizer_or_default(config, default)
            q, scale = quantizer(value, to_numpy=True)
            values = {self.scale: ops.squeeze(scale, axis=self.channel_axis)}
        if mode == "int4":
            q, _, _ = quantizers.pack_int4(q, axis=self.channel_axis)
        values[self.name] = q
        return values

    def quantize(self, layer, shape, mode, config, block_size):
        """Replaces the float variable by its quantized variables."""
        value = getattr(layer, self.attribute)
        values = self.quantized_values(value, mode, config, block_size)
        delattr(layer, self.attribute)
        self.build_quantized(layer, shape, mode, block_size)
        self.assign(layer, values)

    def assign(self, layer, values):
        for name, value in values.items():
            target = self.attribute if name == self.name else name
            getattr(layer, target).assign(value)

    def integers(self, layer, channels):
        """The stored integers, int4 unpacked (`layer.embeddings` in Keras)."""
        value = getattr(layer, self.attribute)
        if layer.quantization_mode == "int4":
            return quantizers.unpack_int4(value, channels,
                                          axis=self.channel_axis)
        return value

    def dense(self, layer, channels, dtype, g_idx=None):
        """The whole matrix as floats of `dtype`."""
        if layer.quantization_mode not in QUANTIZED_MODES:
            return getattr(layer, self.attribute)
        scale = getattr(layer, self.scale)
        zero = getattr(layer, self.zero) if _grouped(layer) else None
        if zero is None:
            scale = ops.expand_dims(scale, self.channel_axis)
        return self._dequantize(self.integers(layer, channels), scale, zero,
                                g_idx, dtype, self.channel_axis)

    def read_rows(self, layer, ids, channels, dtype, g_idx=None, take=None):
        """Rows `ids` as floats; needs `channel_axis=-1`.

        `take(x, ids, fill)` gathers rows; with a filling gather (JAX),
        invalid ids read a scale of 1 and integers of 0: a zero row.
        """
        take = take or gather_valid
        stored = take(getattr(layer, self.attribute), ids, 0)
        scale = take(getattr(layer, self.scale), ids, 1)
        zero = getattr(layer, self.zero) if _grouped(layer) else None
        if layer.quantization_mode == "int4":
            # Unpack the gathered rows only, not the whole table; per
            # channel, the backend divides by the scales in the same pass.
            stored = backend.int4_rows(stored, channels, dtype,
                                       scale if zero is None else None,
                                       portable=backend.serving_graph(ids))
            if zero is None:
                return stored
        if zero is None:
            scale = ops.expand_dims(scale, -1)
            return self._dequantize(stored, scale, None, None, dtype, -1)
        zero = take(zero, ids, 0)
        groups = scale.shape[-1]
        if channels % groups or groups * layer._int4_block_size != channels:
            return self._dequantize(stored, scale, zero, g_idx, dtype, -1)
        # Whole blocks: broadcast each group's scale and zero over its
        # block instead of gathering them per value (the same arithmetic).
        shape = tuple(ops.shape(stored))
        blocks = ops.reshape(ops.cast(stored, dtype),
                             shape[:-1] + (groups, channels // groups))
        rows = ops.multiply(
            ops.subtract(blocks, ops.expand_dims(ops.cast(zero, dtype), -1)),
            ops.expand_dims(ops.cast(scale, dtype), -1))
        return ops.reshape(rows, shape)

    @staticmethod
    def _dequantize(integers, scale, zero, g_idx, dtype, axis):
        values = ops.cast(integers, dtype)
        if zero is None:  # Per channel: q / scale.
            return ops.divide(values, ops.cast(scale, dtype))
        # Sub-channel: (q - zero) * scale, group by group.
        groups = ops.cast(g_idx, "int32")
        if axis == -1:
            scale = _take_last_axis(scale, groups, values)
            zero = _take_last_axis(zero, groups, values)
        else:
            scale = ops.take(scale, groups, axis=axis)
            zero = ops.take(zero, groups, axis=axis)
        scale = ops.cast(scale, dtype)
        zero = ops.cast(zero, dtype)
        return ops.multiply(ops.subtract(values, zero), scale)


def _take_last_axis(x, index, like):
    """`take(x, index, axis=-1)` in the shape of `like`, as a row gather
    of the transposed matrix: Keras's PyTorch `take` along other axes uses
    `ravel`, which PyTorch's ONNX exporter cannot write."""
    columns = ops.transpose(ops.reshape(x, (-1, x.shape[-1])))
    picked = ops.transpose(ops.take(columns, index, axis=0))
    # The leading axis as -1 (JAX's exporters cannot reshape to a
    # symbolic batch); other axes as known, or read at run time (TF).
    known, dynamic = like.shape, ops.shape(like)
    return ops.reshape(picked, (-1, *[dynamic[i] if known[i] is None
                                      else known[i]
                                      for i in range(1, len(known))]))



def group_index(channels, block_size):
    """`g_idx`: each channel's group, as float32 (Keras stores it so)."""
    return np.arange(channels, dtype="float32") // block_size
