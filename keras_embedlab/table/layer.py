"""`TableLayer`: LoRA and int8/int4 quantization for a layer's table.

Mixed into `LookupEmbedding` and `OneHotDense`. It owns the Keras-facing
methods (`quantized_build`, `quantized_call`, `enable_lora`,
`save_own_variables`, `load_own_variables`, and `quantize` once the layer's
own `quantize` has made Keras's type check) with the semantics, variable
names and save format of `keras.layers.Embedding`/`ReversibleEmbedding`
(`OneHotDense`: `Dense`'s names). Reading goes through two methods, the
same for every storage: `_table_rows(ids)` (a lookup) and
`_dense_table()` (a one-hot matmul or a tied reverse projection).

The contract is explicit: the layer's `_table()` returns a `TableSpec`
(storage, shape, LoRA names, the constraint LoRA refuses, the regularizer,
`sparse`, extra storages such as an untied reverse projection), which its
`build` passes to `_build_table`; it defines `variable_serialization_spec`
and, for variables that are not the table's (a bias), `_layer_variables`.
The variables the table is stored in now are `_stored_variables()`;
`embeddings`/`kernel` (`_table_property`) is computed from them.
"""

from typing import Any, NamedTuple

from keras import initializers, ops, quantizers
from keras.saving import deserialize_keras_object, serialize_keras_object

from keras_embedlab import backend
from keras_embedlab.ids import reader
from keras_embedlab.table.storage import (
    QUANTIZED_MODES,
    Storage,
    StoredVariable,
    block_size_of,
    gather_valid,
    group_index,
    is_grouped,
)
from keras_embedlab.utils.argument_checks import check_positive_int


class TableSpec(NamedTuple):
    """What a layer tells `TableLayer` about its table, in `build`."""

    storage: Storage
    shape: tuple[int, int]
    lora: tuple[str, str]  # The two LoRA factors' names.
    # The constraint argument LoRA refuses (as Keras), its word in the
    # error ("embedding", "kernel"), and its value.
    constraint_argument: str
    constraint_word: str
    constraint: Any
    regularizer: Any  # The LoRA factors' regularizer.
    sparse: bool = False  # Row-sparse training: LoRA is refused.
    extra: tuple = ()  # `(Storage, shape)` pairs, e.g. an untied reverse.


def table_variable_kinds(storage, lora):
    """Every variable that stores a table in some mode (`StoredVariable`s),
    LoRA factors included: `a` (`(input_dim, rank)`) has the table's rows,
    `b` (`(rank, output_dim)`) its columns."""
    a, b = lora
    return (*storage.stored_variables(),
            StoredVariable(a, a, 2, 0, None),
            StoredVariable(b, b, 2, None, 1))


def check_quantizable(layer, cls, type_check):
    """As Keras's `Embedding.quantize`: `cls` itself is quantized, its
    subclasses only with `type_check=False`."""
    if type_check and type(layer) is not cls:
        raise layer._not_implemented_error(layer.quantize)


class TableLayer:
    """LoRA factors and quantized storage of a `TableSpec` (module doc)."""

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
        self._table_spec = None  # Set by `_build_table`.
        self._int4_block_size = None
        self.inputs_quantizer = None

    def _table(self):
        """The layer's `TableSpec`, from its arguments (each layer defines
        it; `build` hands it to `_build_table`)."""
        raise NotImplementedError

    def _storages(self):
        spec = self._table_spec
        return [(spec.storage, spec.shape), *spec.extra]

    def _build_table(self, spec, **float_kwargs):
        """The table's variables in the layer's mode (`build`)."""
        self._table_spec = spec
        mode = self.quantization_mode
        if mode:
            self.quantized_build(spec.shape, mode,
                                 config=self.quantization_config)
        if mode not in QUANTIZED_MODES:
            spec.storage.build_float(self, spec.shape, **float_kwargs)

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
        return tuple(getattr(self, name) for name in self._table_spec.lora)

    def _group_index(self):
        """int4's `g_idx` when the table is stored in groups, else None."""
        if (self.quantization_mode == "int4"
                and is_grouped(self._int4_block_size)):
            return self.g_idx
        return None

    def _stored_variables(self):
        """`{saved name: variable}` of every variable the table (and an
        untied reverse) is stored in now: the float or integer matrix, its
        scales and zero points, int4's `g_idx`, the LoRA factors. Never
        `embeddings`/`kernel`, which is computed for int4 and LoRA."""
        mode = self.quantization_mode
        mode = mode if mode in QUANTIZED_MODES else None
        grouped = mode == "int4" and is_grouped(self._int4_block_size)
        stored = {}
        for storage, _ in self._storages():
            stored[storage.name] = getattr(self, storage.attribute)
            if mode:
                stored[storage.scale] = getattr(self, storage.scale)
            if grouped:
                stored[storage.zero] = getattr(self, storage.zero)
        if grouped:
            stored["g_idx"] = self.g_idx
        if self.lora_enabled:
            stored.update(zip(self._table_spec.lora, self._lora_factors()))
        return stored

    def _stored_table_variables(self):
        """`table_variable_kinds` of this layer's table."""
        spec = self._table_spec
        return table_variable_kinds(spec.storage, spec.lora)

    def _table_variable(self):
        """The variable holding the table's (float or integer) values."""
        spec = self._table_spec
        return getattr(self, spec.storage.attribute)

    def _lora_scale(self):
        return self.lora_alpha / self.lora_rank

    def _dense_table(self, dtype=None):
        """The whole table as floats, LoRA included."""
        dtype = dtype or self.compute_dtype
        table = self._table_spec.storage.dense(self, self.output_dim, dtype,
                                               self._group_index())
        if self.lora_enabled:
            a, b = self._lora_factors()
            table = ops.add(ops.cast(table, "float32"), ops.multiply(
                self._lora_scale(), ops.matmul(a, b)))
        return table

    def _plain_table(self):
        """True when the table is one float variable, read as it is."""
        return (not self.lora_enabled
                and self.quantization_mode not in QUANTIZED_MODES)

    def _table_rows(self, ids):
        """Rows `ids` of the table as floats, LoRA included; invalid ids
        give all-zero rows: by filling gathers (`backend.FILL_TAKE`), else
        `reader.read_rows`."""
        dtype = self.compute_dtype

        def read(valid, take=None):
            take = take or gather_valid
            if self.quantization_mode in QUANTIZED_MODES:
                rows = self._table_spec.storage.read_rows(
                    self, valid, self.output_dim, dtype, self._group_index(),
                    take)
            else:
                rows = take(self._table_variable(), valid, 0)
            if self.lora_enabled:
                a, b = self._lora_factors()
                delta = ops.matmul(take(a, valid, 0), b)
                rows = ops.add(ops.cast(rows, "float32"),
                               ops.multiply(self._lora_scale(), delta))
            return rows

        if reader.fills_invalid_ids(ids):
            return read(ids, backend.fill_take)
        return reader.read_rows(read, ids, self.input_dim, self.invalid_ids,
                                self.name)

    def _table_property(self):
        """`layer.embeddings` / `layer.kernel`, as Keras defines it: the
        variable; int4 values unpacked; LoRA merged in."""
        if not self.built:
            raise AttributeError(
                f"You must build the layer before accessing "
                f"`{self._table_spec.storage.name}`."
            )
        value = self._table_spec.storage.integers(self, self.output_dim)
        if self.lora_enabled:
            a, b = self._lora_factors()
            value = ops.cast(ops.add(value, ops.multiply(
                self._lora_scale(), ops.matmul(a, b))), self.compute_dtype)
        return value

    # LoRA.

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        spec = self._table()  # The layer's arguments as they are now.
        if spec.constraint:
            raise ValueError(
                f"Lora is incompatible with {spec.constraint_word} "
                "constraints. In order to enable lora on this layer, remove "
                f"the `{spec.constraint_argument}` argument."
            )
        if not self.built:
            raise ValueError(
                "Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError(
                "lora is already enabled. This can only be done once per "
                "layer.")
        if spec.sparse:
            raise ValueError(
                f"Layer '{self.name}' has sparse=True, but LoRA freezes the "
                "table and trains two dense factors instead, so there are "
                "no table rows to update sparsely. Use sparse=False with "
                "LoRA."
            )
        check_positive_int("rank", rank)
        self._tracker.unlock()
        # float32 factors, as in Keras: no underflow while fine-tuning.
        shapes = ((self.input_dim, rank), (rank, self.output_dim))
        for name, shape, initializer in zip(spec.lora, shapes,
                                            (a_initializer, b_initializer)):
            setattr(self, name, self.add_weight(
                name=name, shape=shape, dtype="float32",
                initializer=initializers.get(initializer),
                regularizer=spec.regularizer))
        self._table_variable().trainable = False
        self._tracker.lock()
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    # Quantization.

    def quantized_build(self, shape, mode, config=None):
        if mode not in QUANTIZED_MODES:
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
        # A layer that can be quantized checks its type in its own
        # `quantize` (`check_quantizable`) and calls this with
        # `type_check=False`.
        if type_check:
            raise self._not_implemented_error(self.quantize)
        if mode not in QUANTIZED_MODES:
            raise self._quantization_mode_error(mode)
        self.quantization_config = config
        block_size = block_size_of(self, config) if mode == "int4" else None
        values = []
        for storage, _ in self._storages():
            value = getattr(self, storage.attribute)
            values.append(storage.quantized_values(value, mode, config,
                                                   block_size))
            delattr(self, storage.attribute)
        self.quantized_build(self._table_spec.shape, mode, config=config)
        for (storage, _), value in zip(self._storages(), values):
            storage.assign(self, value)
        if self.dtype_policy.quantization_mode is None:
            name = mode
            if mode == "int4":
                name = f"int4/{-1 if block_size is None else block_size}"
            self.dtype_policy = f"{name}_from_{self.dtype_policy.name}"

    def quantized_call(self, *args, **kwargs):
        # Every read goes through the storage: one `call` for all modes.
        if self.quantization_mode not in QUANTIZED_MODES:
            raise self._quantization_mode_error(self.quantization_mode)
        return self.call(*args, **kwargs)

    def _quantize_inputs(self, inputs):
        """A reverse projection's inputs, through `inputs_quantizer`."""
        quantizer = self.inputs_quantizer
        if self.quantization_mode not in QUANTIZED_MODES or quantizer is None:
            return inputs
        values, scale = quantizer(inputs)
        return ops.divide(ops.cast(values, inputs.dtype),
                          ops.cast(scale, inputs.dtype))

    # Saving: Keras's format, LoRA merged into the table.

    def _merged_values(self):
        """`{name: value}` to save in place of the table's variables."""
        if not self.lora_enabled:
            return {}
        storage = self._table_spec.storage
        mode = self.quantization_mode
        if mode not in QUANTIZED_MODES:
            return {storage.name: ops.cast(self._dense_table("float32"),
                                           self._table_variable().dtype)}
        merged = self._dense_table("float32")
        return storage.quantized_values(merged, mode, None,
                                        self._int4_block_size)

    def _saved_variables(self):
        """`(name, variable or value)` in the order of the spec."""
        mode = self.quantization_mode
        if mode not in self.variable_serialization_spec:
            raise self._quantization_mode_error(mode)
        stored = {**self._layer_variables(), **self._stored_variables()}
        for name in self.variable_serialization_spec[mode]:
            if name in stored:
                yield name, stored[name]

    def _layer_variables(self):
        """`{saved name: variable}` of the layer's variables that are not
        the table's (a bias)."""
        return {}

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
            for factor in self._lora_factors():
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
    return layer.quantization_mode in QUANTIZED_MODES


def float_table(layer, name):
    """`weights=` for a converted copy of `layer`'s table `name`: its float
    values (LoRA merged), or `None` when it is quantized (see
    `converted`)."""
    if not _quantized(layer):
        value = (layer._dense_table("float32") if isinstance(layer, TableLayer)
                 else getattr(layer, name))
        return [ops.convert_to_numpy(value)]
    if layer.lora_enabled:
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
    storage = copy._table_spec.storage
    # The copy's saved names and the source's (`name`, its scale and zero
    # point, `g_idx`), paired by role.
    sources = {storage.name: name, storage.scale: name + "_scale",
               storage.zero: name + "_zero", "g_idx": "g_idx"}
    theirs = (layer._stored_variables() if isinstance(layer, TableLayer)
              else _keras_quantized_variables(layer, sources.values()))
    mine = copy._stored_variables()
    for my_name, their_name in sources.items():
        if my_name in mine:
            mine[my_name].assign(theirs[their_name])
    return copy


def _keras_quantized_variables(layer, names):
    """A quantized Keras `Embedding`/`Dense`'s variables by saved name
    (Keras keeps the matrix in `_embeddings`/`_kernel`)."""
    found = {}
    for name in names:
        attribute = name if name.endswith(("_scale", "_zero", "g_idx")) \
            else "_" + name
        if hasattr(layer, attribute):
            found[name] = getattr(layer, attribute)
    return found
