"""`RowSparseModel`: `fit` that updates `sparse=True` tables row by row."""

import keras
from keras import ops

from keras_embedlab import backend
from keras_embedlab.sparse_updates.mark import ROW_SPARSE_MARK
from keras_embedlab.sparse_updates.optimizers import _RowSparseOptimizer
from keras_embedlab.sparse_updates.trace import RowTrace


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
        if len(ids) == 1:  # one lookup: nothing to join (no copy)
            yield layer, ids[0], grads[0]
        else:
            yield layer, ops.concatenate(ids), ops.concatenate(grads)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class RowSparseModel(keras.Model):
    """A `keras.Model` whose `fit` updates `sparse=True` tables row by row.

    Build it like any model (functional: `RowSparseModel(inputs, outputs)`,
    or subclass it) and compile it with `SparseSGD`, `SparseAdagrad` or
    `LazyAdam`. On JAX and PyTorch its training step differentiates the
    rows each `LookupEmbedding(sparse=True)` looks up, never the table, and
    writes the optimizer's update into those rows only; all other variables
    train as in `keras.Model`. On TensorFlow it is `keras.Model`: the
    lookup's gradient is already row-sparse.
    """

    def _sparse_tables(self):
        """`{index in trainable_variables: variable}` for sparse tables.

        Found from the mark `LookupEmbedding(sparse=True)` puts on its table
        (`ROW_SPARSE_MARK`), so frozen tables and other layers with a `sparse`
        attribute (`CategoryEncoding`, `StringLookup`, ...) are left alone.
        """
        return {
            i: v for i, v in enumerate(self.trainable_variables)
            if getattr(v, ROW_SPARSE_MARK, None)
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
                f"'{getattr(v, ROW_SPARSE_MARK)}'" for v in tables.values()
            )
            raise ValueError(
                f"Layers {names} have sparse=True, which needs a row-sparse "
                f"optimizer. Received: optimizer="
                f"{type(self.optimizer).__name__}. Compile with "
                "keras_embedlab.LazyAdam, SparseSGD or SparseAdagrad."
            )

    def train_step(self, *args):
        tables = self._sparse_tables()
        self._check_optimizer(tables)
        if not backend.TRACES_ROWS or not tables:
            return super().train_step(*args)
        if backend.STATELESS_TRAINER:
            return self._traced_rows_step(tables, *args)
        return self._eager_rows_step(tables, *args)

    def _apply(self, calls, row_grads, dense, dense_grads, learning_rate):
        """The row updates of each table, then Keras's rule for the rest."""
        optimizer = self.optimizer
        for layer, ids, grads in _per_layer(calls, row_grads):
            optimizer.apply_to_rows(layer.embeddings, ids, grads,
                                    learning_rate)
        if dense:
            optimizer.apply(dense_grads, dense)
        else:
            optimizer.iterations.assign_add(1)

    def _eager_rows_step(self, tables, data):
        """PyTorch: one forward pass whose looked-up rows are leaves.

        Keras's torch step, except that the gradient is taken for the dense
        variables and for the rows of each lookup (`backend.gradients`),
        never for the tables.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        optimizer = self.optimizer
        if not optimizer.built:
            optimizer.build(self.trainable_variables)
        trace = RowTrace(leaves=True)
        # The loss may read table rows too (`SampledSoftmaxLoss`): traced
        # as the forward pass's lookups are, as on JAX.
        with trace.attached(list(tables.values())):
            y_pred = (self(x, training=True) if self._call_has_training_arg
                      else self(x))
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred,
                                      sample_weight=sample_weight,
                                      training=True)
        self._loss_tracker.update_state(loss, sample_weight=next(
            i for i in keras.tree.flatten(x) if i is not None).shape[0])
        loss = optimizer.scale_loss(loss)
        dense = [v for i, v in enumerate(self.trainable_variables)
                 if i not in tables]
        rows = [leaf for _, _, leaf in trace.calls]
        grads = backend.gradients(loss, [v.value for v in dense] + rows)
        # A lookup whose output the loss does not use has no gradient.
        row_grads = [ops.zeros_like(leaf) if g is None else g
                     for leaf, g in zip(rows, grads[len(dense):])]
        with backend.no_grad():
            self._apply(trace.calls, row_grads, dense, grads[:len(dense)],
                        optimizer._get_current_learning_rate())
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _traced_rows_step(self, tables, state, data):
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
        variables = list(tables.values())
        recorded = RowTrace()
        with recorded.attached(variables):
            forward(trainable)
        dense = [i for i in range(len(trainable)) if i not in tables]

        def loss_fn(dense_values, deltas):
            values = list(trainable)
            for i, value in zip(dense, dense_values):
                values[i] = value
            with RowTrace(deltas).attached(variables):
                return forward(values)

        deltas = [ops.zeros_like(rows) for _, _, rows in recorded.calls]
        grad_fn = backend.value_and_grad(loss_fn, argnums=(0, 1),
                                         has_aux=True)
        (_, aux), (dense_grads, row_grads) = grad_fn(
            [trainable[i] for i in dense], deltas
        )
        unscaled_loss, y_pred, non_trainable, metrics_vars = aux

        optimizer = self.optimizer
        mapping = list(zip(optimizer._trainable_variables, trainable))
        mapping += list(zip(optimizer.variables, optimizer_vars))
        # The layers' state after this step's forward pass: a table whose
        # rows change owner (`DynamicEmbedding`) tells the optimizer from it
        # which rows to re-initialise.
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._apply(recorded.calls, row_grads,
                        [optimizer._trainable_variables[i] for i in dense],
                        dense_grads, optimizer._get_current_learning_rate())

        def current(variables, values):
            new = [scope.get_current_value(v) for v in variables]
            return [v if n is None else n for n, v in zip(new, values)]

        trainable = current(optimizer._trainable_variables, trainable)
        optimizer_vars = current(optimizer.variables, optimizer_vars)
        logs, metrics_vars = self._update_metrics_variables(
            metrics_vars, unscaled_loss, x, y, y_pred, sample_weight
        )
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)
