"""Backend-specific pieces of row-sparse training (`sparse_updates`).

`keras.ops` has no row-sparse gradient type, no `unique` and no scatter that
drops out-of-range rows, so these live here:

- TensorFlow hands optimizers a `tf.IndexedSlices` gradient for a gather;
  rows are written back with `Variable.scatter_update` (in place).
- JAX has no sparse gradient, so `RowSparseModel` differentiates the looked-up
  rows instead of the table and needs a fixed-size `unique` (`jnp.unique` with
  `size=`) and a scatter that drops padding slots (`mode="drop"`).

Backends are imported lazily, only when the active backend needs them.
"""

import keras
from keras import ops


def indexed_slices(gradient):
    """`(indices, values)` of a TensorFlow `IndexedSlices`, else `None`."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if isinstance(gradient, tf.IndexedSlices):
        return gradient.indices, gradient.values
    return None


def combine_rows(ids, values, input_dim):
    """Per-row gradients: `(row_ids, summed)`, one per distinct row.

    Duplicate ids are summed. Ids outside the table (invalid ids in
    `"zeros"` mode) and rows whose summed gradient is all zeros (padding ids,
    masked positions) are not updated: on TensorFlow they are removed; on JAX
    (fixed shapes) their slot gets id `input_dim`, which `write_rows` drops.
    """
    values = ops.reshape(values, (-1, values.shape[-1]))
    ids = ops.reshape(ids, (-1,))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        row_ids, slots = tf.unique(ids)
        summed = tf.math.unsorted_segment_sum(values, slots,
                                              tf.shape(row_ids)[0])
        keep = tf.logical_and(
            tf.logical_and(row_ids >= 0, row_ids < input_dim),
            tf.reduce_any(summed != 0, axis=-1),
        )
        return tf.boolean_mask(row_ids, keep), tf.boolean_mask(summed, keep)
    import jax
    import jax.numpy as jnp

    valid = (ids >= 0) & (ids < input_dim)
    ids = jnp.where(valid, ids, input_dim)
    size = ids.shape[0]
    # `jnp.unique` sorts (id, position) pairs, about 4x slower on CPU than
    # sorting the ids alone and finding each id's slot by binary search.
    ordered = jnp.sort(ids)
    starts = jnp.concatenate([jnp.ones(1, bool), ordered[1:] != ordered[:-1]])
    slot_of_ordered = jnp.cumsum(starts) - 1
    row_ids = jnp.full(size, input_dim, ids.dtype)
    row_ids = row_ids.at[slot_of_ordered].set(ordered)
    slots = slot_of_ordered[jnp.searchsorted(ordered, ids)]
    summed = jax.ops.segment_sum(values, slots, num_segments=size)
    keep = jnp.any(summed != 0, axis=-1)
    return jnp.where(keep, row_ids, input_dim), summed


def read_rows(variable, row_ids):
    """`variable[row_ids]`; slots dropped by `combine_rows` read any row."""
    value = variable.value if isinstance(variable, keras.Variable) else variable
    if keras.backend.backend() == "jax":
        import jax.numpy as jnp

        return jnp.take(value, row_ids, axis=0, mode="clip")
    import tensorflow as tf

    return tf.gather(value, row_ids)


def write_rows(optimizer, variable, row_ids, rows, add=False):
    """`variable[row_ids] = rows` (or `+= rows`), other rows untouched."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        update = optimizer.assign_add if add else optimizer.assign
        update(variable, tf.IndexedSlices(rows, row_ids))
        return
    value = variable.value if isinstance(variable, keras.Variable) else variable
    at = value.at[row_ids]
    optimizer.assign(variable, at.add(rows, mode="drop") if add
                     else at.set(rows, mode="drop"))
