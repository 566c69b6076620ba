"""`TableLayer`: LoRA and int8/int4 quantization for a layer's table.

Mixed into `LookupEmbedding` and `OneHotDense`. It owns the Keras-facing
methods (`quantize`, `quantized_build`, `quantized_call`, `enable_lora`,
`save_own_variables`, `load_own_variables`) with the semantics, variable
names and save format of `keras.layers.Embedding`/`ReversibleEmbedding`
(`OneHotDense`: `Dense`'s names). Reading goes through two methods, the
same for every storage: `_table_rows(ids)` (a lookup) and
`_dense_table()` (a one-hot matmul or a tied reverse projection).

A layer sets `_TABLE` (a `_table.Storage`), `_LORA` (the two factors'
names), `_CONSTRAINT` (the table constraint's attribute, which LoRA
refuses), `_table_shape()` and `variable_serialization_spec`; it may add
storages in `_extra_storages()` (an untied reverse projection). A class
that sets `_QUANTIZABLE = True` in its own body can be quantized; its
subclasses need `quantize(..., type_check=False)`, as in Keras.
"""

from keras import initializers, ops, quantizers
from keras.saving import deserialize_keras_object, serialize_keras_object

from keras_embedlab import backend
from keras_embedlab._validation import check_positive_int
from keras_embedlab.ids import reader
from keras_embedlab.table.storage import (
    MODES,
    StoredVariable,
    block_size_of,
    group_index,
    is_grouped,
    take_rows,
)


class TableLayer:
    """LoRA factors and quantized storage for `_TABLE` (see module doc)."""

    _QUANTIZABLE = False

    def _init_table(self, lora_rank, lora_alpha, quantization_config):
        if lora_rank is not None:
            check_positive_int("lora_rank", lora_rank)
        if isinstance(quantization_config, dict):
            quantization_config = deserialize_keras_object(
                quantization_config)
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
        self.lora_enabled = False
        self.quantization_config = quantization_config

    def _extra_storages(self):
        """`[(storage, shape)]` besides the table, e.g. an untied reverse."""
        return []

    def _storages(self):
        return [(self._TABLE, self._table_shape()), *self._extra_storages()]

    def _build_table(self, **float_kwargs):
        """The table's variables in the layer's mode (`build`)."""
        mode = self.quantization_mode
        if mode:
            self.quantized_build(self._table_shape(), mode,
                                 config=self.quantization_config)
        if mode not in MODES:
            self._TABLE.build_float(self, self._table_shape(), **float_kwargs)

    def _build_with_weights(self, weights, missing=None):
        """`weights=`: set before the LoRA factors exist, so `lora_rank` and
        `weights` go together; `missing(weights)` may add the values of
        variables left out (a bias, an untied reverse) once built."""
        rank, self.lora_rank = self.lora_rank, None
        self.build()
        self.lora_rank = rank
        self.set_weights(missing(weights) if missing else weights)
        if rank:
            self.enable_lora(rank, lora_alpha=self.lora_alpha)

    def _finish_build(self):
        self.built = True
        if self.lora_rank:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha)

    # Reading.

    def _lora_factors(self):
        return tuple(getattr(self, name) for name in self._LORA)

    def _lora_scale(self):
        return self.lora_alpha / self.lora_rank

    def _dense_table(self, dtype=None):
        """The whole table as floats, LoRA included."""
        dtype = dtype or self.compute_dtype
        table = self._TABLE.dense(self, self.output_dim, dtype,
                                  getattr(self, "g_idx", None))
        if self.lora_enabled:
            a, b = self._lora_factors()
            table = ops.add(ops.cast(table, "float32"), ops.multiply(
                self._lora_scale(), ops.matmul(a, b)))
        return table

    @classmethod
    def _stored_table_variables(cls):
        """Every variable that stores the table in some mode
        (`_table.StoredVariable`s), LoRA factors included: `a`
        (`(input_dim, rank)`) has the table's rows, `b`
        (`(rank, output_dim)`) its columns."""
        a, b = cls._LORA
        return (*cls._TABLE.stored_variables(),
                StoredVariable(a, a, 2, 0, None),
                StoredVariable(b, b, 2, None, 1))

    def _plain_table(self):
        """True when the table is one float variable, read as it is."""
        return not self.lora_enabled and self.quantization_mode not in MODES

    def _table_rows(self, ids):
        """Rows `ids` of the table as floats, LoRA included; invalid ids
        give all-zero rows: by filling gathers (`backend.FILL_TAKE`), else
        `reader.lookup_rows`."""
        dtype = self.compute_dtype

        def read(valid, take=None):
            take = take or take_rows
            if self.quantization_mode in MODES:
                rows = self._TABLE.read_rows(self, valid, self.output_dim,
                                             dtype,
                                             getattr(self, "g_idx", None),
                                             take)
            else:
                rows = take(getattr(self, self._TABLE.attribute), valid, 0)
            if self.lora_enabled:
                a, b = self._lora_factors()
                delta = ops.matmul(take(a, valid, 0), b)
                rows = ops.add(ops.cast(rows, "float32"),
                               ops.multiply(self._lora_scale(), delta))
            return rows

        if backend.FILL_TAKE:
            return read(ids, backend.fill_take)
        return reader.read_rows(read, ids, self.input_dim, self.invalid_ids,
                                self.name)

    def _table_property(self):
        """`layer.embeddings` / `layer.kernel`, as Keras defines it: the
        variable; int4 values unpacked; LoRA merged in."""
        if not self.built:
            raise AttributeError(
                f"You must build the layer before accessing "
                f"`{self._TABLE.name}`."
            )
        value = self._TABLE.integers(self, self.output_dim)
        if self.lora_enabled:
            a, b = self._lora_factors()
            value = ops.cast(ops.add(value, ops.multiply(
                self._lora_scale(), ops.matmul(a, b))), self.compute_dtype)
        return value

    # LoRA.

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        constraint = self._CONSTRAINT
        if getattr(self, constraint):
            kind = constraint.split("_")[0].removesuffix("s")
            raise ValueError(
                f"Lora is incompatible with {kind} constraints. In order to "
                f"enable lora on this layer, remove the `{constraint}` "
                "argument."
            )
        if not self.built:
            raise ValueError(
                "Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError(
                "lora is already enabled. This can only be done once per "
                "layer.")
        if getattr(self, "sparse", False):
            raise ValueError(
                f"Layer '{self.name}' has sparse=True, but LoRA freezes the "
                "table and trains two dense factors instead, so there are "
                "no table rows to update sparsely. Use sparse=False with "
                "LoRA."
            )
        check_positive_int("rank", rank)
        regularizer = getattr(self, self._CONSTRAINT.replace(
            "constraint", "regularizer"))
        self._tracker.unlock()
        # float32 factors, as in Keras: no underflow while fine-tuning.
        shapes = ((self.input_dim, rank), (rank, self.output_dim))
        for name, shape, initializer in zip(self._LORA, shapes,
                                            (a_initializer, b_initializer)):
            setattr(self, name, self.add_weight(
                name=name, shape=shape, dtype="float32",
                initializer=initializers.get(initializer),
                regularizer=regularizer))
        getattr(self, self._TABLE.attribute).trainable = False
        self._tracker.lock()
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    # Quantization.

    def quantized_build(self, shape, mode, config=None):
        if mode not in MODES:
            raise self._quantization_mode_error(mode)
        block_size = block_size_of(self, config) if mode == "int4" else None
        for storage, storage_shape in self._storages():
            storage.build_quantized(self, storage_shape, mode, block_size)
        if mode == "int4":
            self._int4_block_size = block_size
            if is_grouped(block_size):
                self.g_idx = self.add_weight(
                    name="g_idx", shape=(self.output_dim,),
                    initializer="zeros", dtype="float32", trainable=False)
                self.g_idx.assign(group_index(self.output_dim, block_size))
        # What a reverse projection does to its inputs (as Keras's
        # ReversibleEmbedding; int4 defaults to weight-only).
        default = quantizers.AbsMaxQuantizer(axis=-1) if mode == "int8" \
            else None
        self.inputs_quantizer = (
            quantizers.QuantizationConfig.activation_quantizer_or_default(
                config, default))
        self._is_quantized = True

    def quantize(self, mode=None, type_check=True, config=None):
        if type_check and not type(self).__dict__.get("_QUANTIZABLE"):
            raise self._not_implemented_error(self.quantize)
        if mode not in MODES:
            raise self._quantization_mode_error(mode)
        self.quantization_config = config
        block_size = block_size_of(self, config) if mode == "int4" else None
        values = []
        for storage, _ in self._storages():
            value = getattr(self, storage.attribute)
            values.append(storage.quantized_values(value, mode, config,
                                                   block_size))
            delattr(self, storage.attribute)
        self.quantized_build(self._table_shape(), mode, config=config)
        for (storage, _), value in zip(self._storages(), values):
            storage.assign(self, value)
        if self.dtype_policy.quantization_mode is None:
            name = mode
            if mode == "int4":
                name = f"int4/{-1 if block_size is None else block_size}"
            self.dtype_policy = f"{name}_from_{self.dtype_policy.name}"

    def quantized_call(self, *args, **kwargs):
        # Every read goes through the storage: one `call` for all modes.
        if self.quantization_mode not in MODES:
            raise self._quantization_mode_error(self.quantization_mode)
        return self.call(*args, **kwargs)

    def _quantize_inputs(self, inputs):
        """A reverse projection's inputs, through `inputs_quantizer`."""
        quantizer = getattr(self, "inputs_quantizer", None)
        if self.quantization_mode not in MODES or quantizer is None:
            return inputs
        values, scale = quantizer(inputs)
        return ops.divide(ops.cast(values, inputs.dtype),
                          ops.cast(scale, inputs.dtype))

    # Saving: Keras's format, LoRA merged into the table.

    def _merged_values(self):
        """`{name: value}` to save in place of the table's variables."""
        if not self.lora_enabled:
            return {}
        storage = self._TABLE
        mode = self.quantization_mode
        if mode not in MODES:
            variable = getattr(self, storage.attribute)
            return {storage.name: ops.cast(self._dense_table("float32"),
                                           variable.dtype)}
        merged = self._dense_table("float32")
        block_size = getattr(self, "_int4_block_size", None)
        return storage.quantized_values(merged, mode, None, block_size)

    def _saved_variables(self):
        """`(name, variable or value)` in the order of the spec."""
        mode = self.quantization_mode
        if mode not in self.variable_serialization_spec:
            raise self._quantization_mode_error(mode)
        attributes = {s.name: s.attribute for s, _ in self._storages()}
        for name in self.variable_serialization_spec[mode]:
            value = getattr(self, attributes.get(name, name), None)
            if value is not None:
                yield name, value

    def save_own_variables(self, store):
        if not self.built:
            return
        merged = self._merged_values()
        for index, (name, value) in enumerate(self._saved_variables()):
            store[str(index)] = merged.get(name, value)

    def load_own_variables(self, store):
        if not self.lora_enabled:
            self._check_load_own_variables(store)
        if not self.built:
            return
        for index, (_, variable) in enumerate(self._saved_variables()):
            variable.assign(store[str(index)])
        if self.lora_enabled:
            for name in self._LORA:
                factor = getattr(self, name)
                factor.assign(ops.zeros(factor.shape))

    def _table_config(self):
        config = {"quantization_config": serialize_keras_object(
            self.quantization_config)}
        if self.lora_rank:
            config["lora_rank"] = self.lora_rank
            config["lora_alpha"] = self.lora_alpha
        return config


# The converters (`OneHotDense.from_embedding`,
# `LookupEmbedding.from_one_hot_dense`): a quantized table is copied as it
# is stored, a float or LoRA one as its float values.


def _quantized(layer):
    return getattr(layer, "quantization_mode", None) in MODES


def float_table(layer, name):
    """`weights=` for a converted copy of `layer`'s table `name`: its float
    values (LoRA merged), or `None` when it is quantized (see
    `converted`)."""
    if not _quantized(layer):
        value = (layer._dense_table("float32") if isinstance(layer, TableLayer)
                 else getattr(layer, name))
        return [ops.convert_to_numpy(value)]
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"Cannot convert layer '{layer.name}': it is quantized "
            f"({layer.quantization_mode}) and has LoRA enabled, and its "
            "merged table would have to be quantized again. Save and reload "
            "the model first (saving merges LoRA into the quantized table)."
        )
    return None


def converted(layer, name, copy):
    """`copy` holding `layer`'s quantized table `name` as stored (the same
    integers, scales and zero points), or `copy` as it is (float)."""
    if not _quantized(layer):
        return copy
    copy.build()
    storage = copy._TABLE
    sources = {storage.attribute: "_" + name, storage.scale: name + "_scale",
               storage.zero: name + "_zero", "g_idx": "g_idx"}
    for mine, theirs in sources.items():
        if hasattr(copy, mine):
            getattr(copy, mine).assign(getattr(layer, theirs))
    return copy
