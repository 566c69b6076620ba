"""Row-sparse optimizers: Keras's rules, applied to the rows in the batch."""

from typing import Any

import keras
from keras import ops

from keras_embedlab import backend
from keras_embedlab.sparse_updates.mark import (
    RESET_ATTRIBUTE,
    ROW_SPARSE_MARK,
)

UNSUPPORTED_OPTIONS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "gradient_accumulation_steps",
    "loss_scale_factor",
)


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
        # A table is row-sparse by its mark only, on every backend: any
        # other variable gets the dense rule, even when its gradient is a
        # TensorFlow `IndexedSlices` (`keras.layers.Embedding`), as it does
        # on JAX and PyTorch, whose gradients are dense.
        table_of = self._marked_table(variable)
        if not table_of:
            return super().update_step(gradient, variable, learning_rate)
        slices = backend.indexed_slices(gradient)
        if slices is not None:
            return self.apply_to_rows(variable, *slices, learning_rate)
        # A dense gradient for a sparse=True table: JAX or PyTorch outside
        # RowSparseModel. The dense rule would silently differ from the lazy
        # one (and cost the whole table).
        raise ValueError(
            f"{type(self).__name__} received a dense gradient for the "
            f"table of layer '{table_of}' (sparse=True), which a "
            f"keras.Model gives on the {backend.NAME!r} backend. Build "
            "the model as keras_embedlab.RowSparseModel, or use "
            "sparse=False with a Keras optimizer."
        )

    def _marked_table(self, variable):
        """The layer name in `variable`'s mark (`ROW_SPARSE_MARK`), if any.

        On TensorFlow `update_step` receives the `tf.Variable` behind the
        Keras variable, which carries the mark: look the latter up.
        """
        return getattr(self._keras_variable(variable), ROW_SPARSE_MARK,
                       None)

    def _keras_variable(self, variable):
        return self._trainable_variables[self._get_variable_index(variable)]

    def _reset_reclaimed_rows(self, variable, ids):
        """Rows reclaimed in this step restart: value and slots.

        A table whose rows change owner (`DynamicEmbedding`) carries
        `RESET_ATTRIBUTE`; it says which of the looked-up rows `ids` were
        given to a new id in this step and their initial values. Those rows
        are set to them and their optimizer slots to the slots' initial
        values, before the step's update, so a new id never inherits the
        previous owner's vector or moments. Every looked-up id is written
        (the others with their current values): the shapes stay fixed under
        `jit`, and duplicates write equal values.
        """
        reset = getattr(self._keras_variable(variable), RESET_ATTRIBUTE,
                        None)
        if reset is None:
            return
        ids = ops.reshape(ids, (-1,))
        fresh, initial = reset(ids)
        fresh = ops.expand_dims(fresh, -1)
        current = backend.read_rows(variable, ids)
        self._set(variable, ids, ops.where(
            fresh, ops.cast(initial, variable.dtype), current))
        for slots, value in self._row_slots():
            slot = slots[self._get_variable_index(variable)]
            rows = backend.read_rows(slot, ids)
            self._set(slot, ids, ops.where(
                fresh, ops.full_like(rows, value), rows))

    def _row_slots(self):
        """`(slot variables, initial value)` of each per-row slot."""
        return []

    def apply_to_rows(self, variable, ids, row_gradients, learning_rate):
        """Updates the rows `ids` of `variable` given their gradients.

        `row_gradients` has shape `ids.shape + (variable.shape[-1],)`;
        duplicates are summed and all-zero rows skipped (`combine_rows`).
        """
        self._reset_reclaimed_rows(variable, ids)
        row_ids, grads = backend.combine_rows(
            ids, row_gradients, variable.shape[0]
        )
        lr = ops.cast(learning_rate, variable.dtype)
        self._update_rows(variable, row_ids, ops.cast(grads, variable.dtype),
                          lr)

    def _slot_rows(self, slots, variable, row_ids):
        slot = slots[self._get_variable_index(variable)]
        return slot, backend.read_rows(slot, row_ids)

    def _set(self, variable, row_ids, rows):
        backend.write_rows(self, variable, row_ids, rows)

    def _add(self, variable, row_ids, rows):
        # `variable[row_ids] += rows` in place: the table rows are not read
        # back first (each random read of a large table costs a cache miss).
        # Callers fold the update's sign into a scalar, so that no pass over
        # the rows negates them.
        backend.write_rows(self, variable, row_ids, rows, add=True)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class SparseSGD(_RowSparseOptimizer, keras.optimizers.SGD):
    """`keras.optimizers.SGD` that updates only the rows in the batch.

    Without momentum it gives the same weights as `SGD`. With momentum the
    velocity of a row decays only on steps where the row is in the batch
    (lazy momentum, as TensorFlow's sparse momentum kernels do). Arguments
    are `SGD`'s, less those listed in `UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, name: str = "sparse_sgd",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, momentum=momentum,
                         nesterov=nesterov, name=name, **kwargs)
        self._check_row_sparse_options()

    def apply_to_rows(self, variable, ids, row_gradients, learning_rate):
        if self.momentum:
            return super().apply_to_rows(variable, ids, row_gradients,
                                         learning_rate)
        self._reset_reclaimed_rows(variable, ids)
        # Without momentum the rule is linear in the gradient: duplicate
        # ids need no summing first and all-zero rows change nothing, so the
        # scaled rows go straight to the table (as PyTorch's sparse SGD
        # does), skipping the sort of `combine_rows`.
        lr = ops.cast(learning_rate, variable.dtype)
        backend.add_rows(self, variable, ids,
                         ops.cast(row_gradients, variable.dtype) * -lr)

    def _row_slots(self):
        return [(self.momentums, 0.0)] if self.momentum else []

    def _update_rows(self, variable, row_ids, grads, lr):
        momentum = ops.cast(self.momentum, variable.dtype)
        m, m_rows = self._slot_rows(self.momentums, variable, row_ids)
        m_rows = m_rows * momentum - grads * lr
        self._set(m, row_ids, m_rows)
        if self.nesterov:
            self._add(variable, row_ids, m_rows * momentum - grads * lr)
        else:
            self._add(variable, row_ids, m_rows)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class SparseAdagrad(_RowSparseOptimizer, keras.optimizers.Adagrad):
    """`keras.optimizers.Adagrad` that updates only the rows in the batch.

    Gives the same weights as `Adagrad`: a row without gradient keeps its
    accumulator and value there too. Arguments are `Adagrad`'s, less those in
    `UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate: Any = 0.001,
                 initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, name: str = "sparse_adagrad",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate,
                         initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, name=name, **kwargs)
        self._check_row_sparse_options()

    def _row_slots(self):
        return [(self._accumulators, self.initial_accumulator_value)]

    def _update_rows(self, variable, row_ids, grads, lr):
        acc, acc_rows = self._slot_rows(self._accumulators, variable, row_ids)
        acc_rows = acc_rows + ops.square(grads)
        self._set(acc, row_ids, acc_rows)
        self._add(variable, row_ids, ops.divide(
            grads * -lr, ops.sqrt(acc_rows + self.epsilon)))


@keras.saving.register_keras_serializable(package="keras_embedlab")
class LazyAdam(_RowSparseOptimizer, keras.optimizers.Adam):
    """Adam whose moments decay only for the rows in the batch.

    For a row with gradient `g` at global step `t`:
    `m = b1*m + (1-b1)*g`, `v = b2*v + (1-b2)*g**2`,
    `row -= lr * sqrt(1-b2**t) / (1-b1**t) * m / (sqrt(v) + epsilon)`;
    other rows and their moments are untouched. Every variable that is not
    a `sparse=True` table gets `keras.optimizers.Adam`, whatever its
    gradient (a TensorFlow `IndexedSlices`, from `keras.layers.Embedding`,
    included).
    Arguments are `Adam`'s except `amsgrad` and those in
    `UNSUPPORTED_OPTIONS`.
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7,
                 name: str = "lazy_adam", **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError(
                "`amsgrad` is not supported by LazyAdam. Received: "
                "amsgrad=True. Use amsgrad=False (the default)."
            )
        super().__init__(learning_rate=learning_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, name=name, **kwargs)
        self._check_row_sparse_options()

    def _row_slots(self):
        return [(self._momentums, 0.0), (self._velocities, 0.0)]

    def _update_rows(self, variable, row_ids, grads, lr):
        step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1 = ops.cast(self.beta_1, variable.dtype)
        beta_2 = ops.cast(self.beta_2, variable.dtype)
        alpha = lr * ops.sqrt(1 - ops.power(beta_2, step)) / (
            1 - ops.power(beta_1, step))
        m, m_rows = self._slot_rows(self._momentums, variable, row_ids)
        v, v_rows = self._slot_rows(self._velocities, variable, row_ids)
        m_rows, v_rows, change = backend.adam_rows(
            m_rows, v_rows, grads, beta_1, beta_2, alpha, self.epsilon)
        self._set(m, row_ids, m_rows)
        self._set(v, row_ids, v_rows)
        self._add(variable, row_ids, change)
