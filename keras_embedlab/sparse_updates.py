"""Row-sparse training: steps that cost the batch, not the table.

Only the rows looked up in a batch have a gradient, yet Keras optimizers
update a whole table on every step (and on JAX the gradient itself is a
dense table). Three pieces make an ordinary `model.fit` update only those
rows, on TensorFlow and JAX:

- `LookupEmbedding(..., sparse=True)` marks a table for row-sparse training.
- A row-sparse optimizer, `SparseSGD`, `SparseAdagrad` or `LazyAdam`,
  updates only the rows with a non-zero gradient, and applies the Keras rule
  of `keras.optimizers.SGD`, `Adagrad` or `Adam` to every other variable.
- `RowSparseModel`, a `keras.Model` whose JAX training step differentiates
  the looked-up rows instead of the table and scatters the update into it.
  On TensorFlow the gradient of a lookup already is a `tf.IndexedSlices`, so
  any model works; `RowSparseModel` behaves like `keras.Model` there.

Semantics next to the dense optimizers:

- `SparseSGD` without momentum and `SparseAdagrad` give the same weights as
  Keras's `SGD` and `Adagrad`: a row without gradient is unchanged by those
  anyway.
- `LazyAdam` and `SparseSGD(momentum>0)` are lazy: the moments of a row
  decay only on steps where the row has a non-zero gradient, and rows
  without one are left bit-for-bit unchanged (the dense rules keep moving
  them with their momentum). Adam's bias correction uses the global step, as
  TF Addons' `LazyAdam` did.
- "Rows in the batch" means rows whose summed gradient is non-zero, so
  padding ids, masked positions and invalid ids (`invalid_ids="zeros"`)
  never touch their rows. Duplicate ids in a batch are summed first.
- Not supported (construction raises `ValueError`): `weight_decay`,
  `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
  `gradient_accumulation_steps`, `loss_scale_factor`, and Adam's
  `amsgrad`; on the layer, `embeddings_regularizer` and
  `embeddings_constraint`. Each acts on every row on every step, which is
  what row-sparse training avoids.
- PyTorch is not supported: `RowSparseModel`'s training step raises there.
"""

import keras
from keras import ops

from keras_embedlab import _ids, _sparse_backend

UNSUPPORTED_OPTIONS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "gradient_accumulation_steps",
    "loss_scale_factor",
)


def check_sparse(sparse, layer):
    """Validates `LookupEmbedding`'s `sparse` argument."""
    _ids.check_bool("sparse", sparse)
    if not sparse:
        return
    for name in ("embeddings_regularizer", "embeddings_constraint"):
        if getattr(layer, name) is not None:
            raise ValueError(
                f"`sparse=True` updates only the rows in the batch, but "
                f"`{name}` acts on the whole table on every step. Received: "
                f"sparse=True with {name}={getattr(layer, name)!r} on layer "
                f"'{layer.name}'. Drop `{name}` or use sparse=False."
            )


# How a `sparse=True` layer's looked-up rows take part in `RowSparseModel`'s
# JAX step: first recorded (to learn the ids), then offset by a zero tensor
# that the step differentiates instead of the table.
_trace = None


class _RowTrace:
    """The lookups of the tables being trained row by row, in call order.

    `tables` holds the ids of those tables' variables: other layers, and
    frozen or dense tables, are looked up as usual.
    """

    def __init__(self, tables, deltas=None):
        self.tables = tables
        self.deltas = deltas
        self.calls = []  # (layer, ids, rows), in call order
        self.position = 0

    def __enter__(self):
        global _trace
        if _trace is not None:
            raise RuntimeError("RowSparseModel training steps cannot nest.")
        _trace = self
        return self

    def __exit__(self, *exc):
        global _trace
        _trace = None


def mark_table(layer):
    """Tags a `sparse=True` layer's table so optimizers can recognise it."""
    layer.embeddings._row_sparse_table = layer.name


def trace_rows(layer, ids, rows):
    """Called by `LookupEmbedding._gather` with `sparse=True`."""
    if _trace is None or id(layer.embeddings) not in _trace.tables:
        return rows
    if _trace.deltas is None:
        _trace.calls.append((layer, ids, rows))
        return rows
    delta = _trace.deltas[_trace.position]
    _trace.position += 1
    return ops.add(rows, delta)


def _per_layer(calls, row_grads):
    """One `(layer, ids, grads)` per layer, joining its calls.

    A table used twice in a model (shared inputs, tied weights) gets one
    update per step with the gradients of all its lookups summed.
    """
    joined = {}
    for (layer, ids, rows), grads in zip(calls, row_grads):
        parts = joined.setdefault(id(layer), (layer, [], []))
        parts[1].append(ops.reshape(ids, (-1,)))
        parts[2].append(ops.reshape(grads, (-1, rows.shape[-1])))
    for layer, ids, grads in joined.values():
        yield layer, ops.concatenate(ids), ops.concatenate(grads)


class _RowSparseOptimizer:
    """Mixin: row-sparse updates for `IndexedSlices` and `RowSparseModel`."""

    def _check_row_sparse_options(self):
        for name in UNSUPPORTED_OPTIONS:
            value = getattr(self, name)
            if value:
                raise ValueError(
                    f"`{name}` is not supported by row-sparse optimizers: it "
                    "acts on every row of a table on every step. Received: "
                    f"{name}={value!r} on {type(self).__name__}. Leave "
                    f"`{name}` unset, or use a Keras optimizer and "
                    "`sparse=False`."
                )

    def update_step(self, gradient, variable, learning_rate):
        slices = _sparse_backend.indexed_slices(gradient)
        if slices is not None:
            return self.apply_to_rows(variable, *slices, learning_rate)
        if getattr(variable, "_row_sparse_table", None):
            # A dense gradient for a sparse=True table: JAX outside
            # RowSparseModel, or PyTorch. The dense rule would silently
            # differ from the lazy one (and cost the whole table).
            raise ValueError(
                f"{type(self).__name__} received a dense gradient for the "
                f"table of layer '{variable._row_sparse_table}' "
                "(sparse=True). On JAX, build the model as "
                "keras_embedlab.RowSparseModel; row-sparse training runs on "
                f"TensorFlow and JAX only (backend: "
                f"{keras.backend.backend()!r})."
            )
        return super().update_step(gradient, variable, learning_rate)

    def apply_to_rows(self, variable, ids, row_gradients, learning_rate):
        """Updates the rows `ids` of `variable` given their gradients.

        `row_gradients` has shape `ids.shape + (variable.shape[-1],)`;
        duplicates are summed and all-zero rows skipped (`combine_rows`).
        """
        row_ids, grads = _sparse_backend.combine_rows(
            ids, row_gradients, variable.shape[0]
        )
        lr = ops.cast(learning_rate, variable.dtype)
        self._update_rows(variable, row_ids, ops.cast(grads, variable.dtype),
                          lr)

    def _slot_rows(self, slots, variable, row_ids):
        slot = slots[self._get_variable_index(variable)]
        return slot, _sparse_backend.read_rows(slot, row_ids)

    def _set(self, variable, row_ids, rows):
        _sparse_backend.write_rows(self, variable, row_ids, rows)

    def _subtract(self, variable, row_ids, rows):
        # `variable[row_ids] -= rows` in place: the table rows are not read
        # back first (each random read of a large table costs a cache miss).
        _sparse_backend.write_rows(self, variable, row_ids, -rows, add=True)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class SparseSGD(_RowSparseOptimizer, keras.optimizers.SGD):
    """`keras.optimizers.SGD` that updates only the rows in the batch.

    Without momentum it gives the same weights as `SGD`. With momentum the
    velocity of a row decays only on steps where the row is in the batch
    (lazy momentum, as TensorFlow's sparse momentum kernels do). Arguments
    are `SGD`'s, less those listed in `sparse_updates.UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False,
                 name="sparse_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum,
                         nesterov=nesterov, name=name, **kwargs)
        self._check_row_sparse_options()

    def _update_rows(self, variable, row_ids, grads, lr):
        if self.momentum == 0:
            self._subtract(variable, row_ids, grads * lr)
            return
        momentum = ops.cast(self.momentum, variable.dtype)
        m, m_rows = self._slot_rows(self.momentums, variable, row_ids)
        m_rows = m_rows * momentum - grads * lr
        self._set(m, row_ids, m_rows)
        if self.nesterov:
            self._subtract(variable, row_ids, grads * lr - m_rows * momentum)
        else:
            self._subtract(variable, row_ids, -m_rows)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class SparseAdagrad(_RowSparseOptimizer, keras.optimizers.Adagrad):
    """`keras.optimizers.Adagrad` that updates only the rows in the batch.

    Gives the same weights as `Adagrad`: a row without gradient keeps its
    accumulator and value there too. Arguments are `Adagrad`'s, less those in
    `sparse_updates.UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1,
                 epsilon=1e-7, name="sparse_adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate,
                         initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, name=name, **kwargs)
        self._check_row_sparse_options()

    def _update_rows(self, variable, row_ids, grads, lr):
        acc, acc_rows = self._slot_rows(self._accumulators, variable, row_ids)
        acc_rows = acc_rows + ops.square(grads)
        self._set(acc, row_ids, acc_rows)
        self._subtract(variable, row_ids, ops.divide(
            lr * grads, ops.sqrt(acc_rows + self.epsilon)))


@keras.saving.register_keras_serializable(package="keras_embedlab")
class LazyAdam(_RowSparseOptimizer, keras.optimizers.Adam):
    """Adam whose moments decay only for the rows in the batch.

    For a row with gradient `g` at global step `t`:
    `m = b1*m + (1-b1)*g`, `v = b2*v + (1-b2)*g**2`,
    `row -= lr * sqrt(1-b2**t) / (1-b1**t) * m / (sqrt(v) + epsilon)`;
    other rows and their moments are untouched. Dense gradients (every
    variable that is not a `sparse=True` table) get `keras.optimizers.Adam`.
    Arguments are `Adam`'s except `amsgrad` and those in
    `sparse_updates.UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, name="lazy_adam", **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError(
                "`amsgrad` is not supported by LazyAdam. Received: "
                "amsgrad=True. Use amsgrad=False (the default)."
            )
        super().__init__(learning_rate=learning_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, name=name, **kwargs)
        self._check_row_sparse_options()

    def _update_rows(self, variable, row_ids, grads, lr):
        step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1 = ops.cast(self.beta_1, variable.dtype)
        beta_2 = ops.cast(self.beta_2, variable.dtype)
        alpha = lr * ops.sqrt(1 - ops.power(beta_2, step)) / (
            1 - ops.power(beta_1, step))
        m, m_rows = self._slot_rows(self._momentums, variable, row_ids)
        v, v_rows = self._slot_rows(self._velocities, variable, row_ids)
        m_rows = m_rows + (grads - m_rows) * (1 - beta_1)
        v_rows = v_rows + (ops.square(grads) - v_rows) * (1 - beta_2)
        self._set(m, row_ids, m_rows)
        self._set(v, row_ids, v_rows)
        self._subtract(variable, row_ids,
                       alpha * m_rows / (ops.sqrt(v_rows) + self.epsilon))


@keras.saving.register_keras_serializable(package="keras_embedlab")
class RowSparseModel(keras.Model):
    """A `keras.Model` whose `fit` updates `sparse=True` tables row by row.

    Build it like any model (functional: `RowSparseModel(inputs, outputs)`,
    or subclass it) and compile it with `SparseSGD`, `SparseAdagrad` or
    `LazyAdam`. On JAX its training step differentiates the rows each
    `LookupEmbedding(sparse=True)` looks up, never the table, and writes the
    optimizer's update into those rows only; all other variables train as in
    `keras.Model`. On TensorFlow it is `keras.Model`: the lookup's gradient
    is already row-sparse. PyTorch is not supported.
    """

    def _sparse_tables(self):
        """`{index in trainable_variables: variable}` for sparse tables.

        Found from the mark `LookupEmbedding(sparse=True)` puts on its table
        (`mark_table`), so frozen tables and other layers with a `sparse`
        attribute (`CategoryEncoding`, `StringLookup`, ...) are left alone.
        """
        return {
            i: v for i, v in enumerate(self.trainable_variables)
            if getattr(v, "_row_sparse_table", None)
        }

    def _check_optimizer(self, tables):
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError(
                "RowSparseModel does not support loss scaling: the "
                "'mixed_float16' dtype policy makes Keras wrap the optimizer "
                f"({type(self.optimizer.inner_optimizer).__name__}) in a "
                "LossScaleOptimizer, which scales every gradient of every "
                "row. Use the 'mixed_bfloat16' policy (no loss scaling "
                "needed) or float32."
            )
        if tables and not isinstance(self.optimizer, _RowSparseOptimizer):
            names = ", ".join(
                f"'{v._row_sparse_table}'" for v in tables.values()
            )
            raise ValueError(
                f"Layers {names} have sparse=True, which needs a row-sparse "
                f"optimizer. Received: optimizer="
                f"{type(self.optimizer).__name__}. Compile with "
                "keras_embedlab.LazyAdam, SparseSGD or SparseAdagrad."
            )

    def train_step(self, *args):
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise NotImplementedError(
                "RowSparseModel trains on the TensorFlow and JAX backends; "
                f"the active backend is {keras.backend.backend()!r}. Use "
                "keras.Model (dense updates) or set KERAS_BACKEND."
            )
        tables = self._sparse_tables()
        self._check_optimizer(tables)
        if keras.backend.backend() != "jax" or not tables:
            return super().train_step(*args)
        return self._jax_row_sparse_step(tables, *args)

    def _jax_row_sparse_step(self, tables, state, data):
        import jax

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        def forward(trainable_values):
            return self.compute_loss_and_updates(
                trainable_values, non_trainable, metrics_vars, x, y,
                sample_weight, training=True,
                optimizer_variables=optimizer_vars,
            )

        # Pass 1 learns which ids each sparse layer looks up; XLA keeps only
        # the ops those ids depend on.
        traced = {id(v) for v in tables.values()}
        with _RowTrace(traced) as recorded:
            forward(trainable)
        dense = [i for i in range(len(trainable)) if i not in tables]

        def loss_fn(dense_values, deltas):
            values = list(trainable)
            for i, value in zip(dense, dense_values):
                values[i] = value
            with _RowTrace(traced, deltas):
                return forward(values)

        deltas = [ops.zeros_like(rows) for _, _, rows in recorded.calls]
        grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        (_, aux), (dense_grads, row_grads) = grad_fn(
            [trainable[i] for i in dense], deltas
        )
        unscaled_loss, y_pred, non_trainable, metrics_vars = aux

        optimizer = self.optimizer
        mapping = list(zip(optimizer._trainable_variables, trainable))
        mapping += list(zip(optimizer.variables, optimizer_vars))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            learning_rate = optimizer._get_current_learning_rate()
            for layer, ids, grads in _per_layer(recorded.calls, row_grads):
                optimizer.apply_to_rows(layer.embeddings, ids, grads,
                                        learning_rate)
            if dense:
                optimizer.apply(
                    dense_grads,
                    [optimizer._trainable_variables[i] for i in dense],
                )
            else:
                optimizer.iterations.assign_add(1)

        def current(variables, values):
            new = [scope.get_current_value(v) for v in variables]
            return [v if n is None else n for n, v in zip(new, values)]

        trainable = current(optimizer._trainable_variables, trainable)
        optimizer_vars = current(optimizer.variables, optimizer_vars)
        logs, metrics_vars = self._update_metrics_variables(
            metrics_vars, unscaled_loss, x, y, y_pred, sample_weight
        )
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)
