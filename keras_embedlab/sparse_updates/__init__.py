"""Row-sparse training: steps that cost the batch, not the table.

Only the rows looked up in a batch have a gradient, yet Keras optimizers
update a whole table on every step (and on JAX and PyTorch the gradient
itself is a dense table). Three pieces make an ordinary `model.fit` update
only those rows, on TensorFlow, JAX and PyTorch:

- `LookupEmbedding(..., sparse=True)` marks a table for row-sparse training.
- A row-sparse optimizer, `SparseSGD`, `SparseAdagrad` or `LazyAdam`,
  updates only the rows with a non-zero gradient, and applies the Keras rule
  of `keras.optimizers.SGD`, `Adagrad` or `Adam` to every other variable.
- `RowSparseModel`, a `keras.Model` whose JAX and PyTorch training steps
  differentiate the looked-up rows instead of the table and scatter the
  update into it. On TensorFlow the gradient of a lookup already is a
  `tf.IndexedSlices`, so any model works; `RowSparseModel` behaves like
  `keras.Model` there.

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
- A table whose rows change owner (`DynamicEmbedding`) marks the rows it
  reclaimed in a step; the optimizers set them and their slots to their
  initial values before that step's update.
- Not supported (construction raises `ValueError`): `weight_decay`,
  `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
  `gradient_accumulation_steps`, `loss_scale_factor`, and Adam's
  `amsgrad`; on the layer, `embeddings_regularizer` and
  `embeddings_constraint`. Each acts on every row on every step, which is
  what row-sparse training avoids.
- Under `keras.distribution.ModelParallel` (JAX) the tables and their
  slots stay sharded as the layout map says; the updates are the same as on
  one device (tests/sharding_script.py).

Layout: `optimizers.py` (the row-sparse rules), `model.py` (`RowSparseModel`
and its JAX and PyTorch steps), `trace.py` (how those steps learn which
rows each table looks up). A table is recognised by one mark only: the attribute
`LookupEmbedding(sparse=True)` puts on its variable (`ROW_SPARSE_MARK`).
"""

from keras_embedlab.sparse_updates.model import RowSparseModel
from keras_embedlab.sparse_updates.optimizers import (
    UNSUPPORTED_OPTIONS,
    LazyAdam,
    SparseAdagrad,
    SparseSGD,
)

__all__ = ["LazyAdam", "RowSparseModel", "SparseAdagrad", "SparseSGD",
           "UNSUPPORTED_OPTIONS"]
