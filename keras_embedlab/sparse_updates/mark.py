"""How a table is known to row-sparse training: two attribute names.

`LookupEmbedding(sparse=True)` sets `ROW_SPARSE_MARK` on its `embeddings`
variable (its value is the layer's name); the row-sparse optimizers and
`RowSparseModel` find tables by it. During `RowSparseModel`'s step a
`RowTrace` is attached to the variable under `TRACE_ATTRIBUTE`, and the
layer hands it its rows. `DynamicEmbedding` also sets `RESET_ATTRIBUTE`
on its table: a function `reset(row_ids) -> (fresh, initial_rows)` that
tells the optimizer which looked-up rows were reclaimed in this step and
what they restart from. No import: the layer reads these names without
importing the training code.
"""

ROW_SPARSE_MARK = "_row_sparse_table"
TRACE_ATTRIBUTE = "_row_trace"
RESET_ATTRIBUTE = "_row_reset"
