"""How `RowSparseModel`'s steps learn and differentiate looked-up rows.

A `RowTrace` is attached to the variables of the tables being trained for
the length of one forward pass (`with trace.attached(variables):`); a
`LookupEmbedding(sparse=True)` whose table carries one hands it its rows
(`trace.rows`). Frozen tables and other layers carry no trace and are
looked up as usual.

- JAX (two passes of a pure function). First pass: the trace records
  `(layer, ids, rows)` to learn the ids. Second pass: it offsets each
  lookup's rows by a zero tensor (`deltas`), which the step differentiates
  instead of the table.
- PyTorch (one eager pass, `leaves=True`): each lookup's rows are replaced
  by a leaf of the autograd graph (`backend.row_leaf`), recorded as
  `(layer, ids, leaf)`, whose gradient the step takes.
"""

import contextlib

from keras import ops

from keras_embedlab import backend
from keras_embedlab.sparse_updates.mark import TRACE_ATTRIBUTE


class RowTrace:
    def __init__(self, deltas=None, leaves=False):
        self.deltas = deltas
        self.leaves = leaves
        self.calls = []  # (layer, ids, rows), in call order
        self.position = 0

    @contextlib.contextmanager
    def attached(self, variables):
        for variable in variables:
            if getattr(variable, TRACE_ATTRIBUTE, None) is not None:
                raise RuntimeError(
                    "RowSparseModel training steps cannot nest.")
            setattr(variable, TRACE_ATTRIBUTE, self)
        try:
            yield self
        finally:
            for variable in variables:
                setattr(variable, TRACE_ATTRIBUTE, None)

    def rows(self, layer, ids, rows):
        """Called by `LookupEmbedding._gather` for a traced table."""
        if self.leaves:
            rows = backend.row_leaf(rows)
        if self.deltas is None:
            self.calls.append((layer, ids, rows))
            return rows
        delta = self.deltas[self.position]
        self.position += 1
        return ops.add(rows, delta)
