"""TensorFlow: what `keras.ops` cannot do.

- Raising on invalid ids inside a graph: `tf.debugging.Assert` on the
  ids, before the lookup. Every TensorFlow graph is one that a serving
  format may carry (`serving_graph`): converters that drop the assertion
  (tf2onnx, LiteRT) keep the gather that refuses invalid ids; XLA drops
  it too, and gives zero rows.
- A dense gradient for a gather: `tf.gather` gives a `tf.IndexedSlices`,
  which Keras optimizers such as Adam apply to part of their state only, so
  training would differ from JAX and from one-hot matmul.
- A plain gather for ids known to be in range (`keras.ops.take` first
  rewrites negative ids), and reading only the needed rows of a variable.
- Ragged bags of ids (`tf.RaggedTensor`), which only TensorFlow has.
- Row-sparse training: the `IndexedSlices` gradient, `tf.unique` and
  `scatter_update`.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_embedlab.backend import _common
from keras_embedlab.backend._common import (  # noqa: F401
    fill_take,
    gradient_inputs,
    gradients,
    no_grad,
    row_leaf,
    value_and_grad,
)

# XLA drops assertions, so a layer that must raise keeps Keras's compiled
# steps off XLA (`supports_jit = False`).
SUPPORTS_JIT_WITH_CHECKS = False
# Row-sparse training works with any model: the gradient of a gather
# already is row-sparse (`RowSparseModel` needs no step of its own).
TRACES_ROWS = False
STATELESS_TRAINER = False
FILL_TAKE = False
# The `model.export` formats under which Keras's own `Embedding` exports
# and runs on this backend (Keras 3.15), which ours cover
# (`keras_embedlab.serving.FORMATS`, tests/test_export.py).
EXPORT_FORMATS = ("tf_saved_model", "onnx", "litert", "openvino")
# Calls of word2vec's steps per dispatch of `row_step` (`Word2Vec`): a
# call of the traced graph costs about 1 ms besides its steps; 4 calls of
# 32 steps at a time ran 7% to 13% faster per step than one (Lee corpus).
ROW_STEP_CALLS = 4
# Whether `row_step`s of one table may run in two threads at once: yes,
# the XLA-compiled call holds its variables' locks while it runs, so whole
# calls take turns and only the work around them overlaps
# (`Word2Vec(workers=n)`).
CONCURRENT_ROW_STEPS = True


all_ids_valid = None  # The rule's one reduction (`ids.reader`).
INVALID_ID_NOTE = ""


def quiet_callback_errors(error_type):
    pass  # TensorFlow's assertion logs nothing of its own.


def _assertion(refusal):
    """An op that fails, with the refusal's message, on an invalid id.

    The data are the eager message's words around the offending id, so the
    text is the same, in TensorFlow's brackets (after its node trace).
    String formatting ops would not compile under XLA, which drops the
    assertion (`jit_compile=True`).
    """
    before, after = refusal.message_parts()
    return tf.debugging.Assert(
        tf.reduce_all(refusal.valid()),
        [before, refusal.first_invalid(), after],
    )


def _in_xla():
    """Whether this graph compiles with XLA (`jit_compile=True`): the test
    TensorFlow's own control flow uses (a private module, no public one)."""
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


def checked_on_host(ids):
    return tf.executing_eagerly()


def serving_graph(ids):
    """Every graph but XLA's: `tf.function`s are what `model.export`
    saves, and none compiles with XLA."""
    return not tf.executing_eagerly() and not _in_xla()


def ids_for_host_check(ids, input_dim, valid=None):
    return ids.numpy()


def refuse_in_graph(ids, refusal):
    """`ids`, after an assertion, plus zeros that only a batch without
    invalid ids can broadcast. Converters drop the assertion (tf2onnx,
    LiteRT, OpenVINO): there the lookup's gather refuses invalid ids
    (`ids.reader.serving_rows`), except OpenVINO's, which reads zeros; but
    every runtime checks a broadcast (a reshape would be folded away).
    Under XLA, which has neither, `ids` as they are: invalid ids give zero
    rows."""
    if _in_xla():
        return ids
    with tf.control_dependencies([_assertion(refusal)]):
        ids = tf.identity(ids)
    invalid = tf.reduce_sum(tf.cast(tf.logical_not(refusal.valid()),
                                    tf.int32))
    pair = tf.broadcast_to(tf.zeros([2], ids.dtype), [2 + invalid])
    return ids + tf.reduce_sum(pair)


def gather_rows(table, ids):
    """`tf.gather`: the ids here are in range (no negative-id rewrite)."""
    return tf.gather(table, ids)


def int4_rows(packed, channels, dtype, scale=None, portable=False):
    """`_common.int4_rows` with fewer kernels (a graph without XLA runs
    each op as its own pass): the packed bytes bitcast two at a time to
    uint16, one `tf.gather` of four values each from `int4_pair_table`,
    then the divide. An odd number of packed bytes takes the shifts."""
    if portable or packed.shape[-1] is None or packed.shape[-1] % 2:
        return _common.int4_rows(packed, channels, dtype, scale, portable)
    dtype = keras.backend.standardize_dtype(dtype)
    shape = tf.shape(packed)
    pairs = tf.bitcast(tf.reshape(packed, tf.concat(
        [shape[:-1], [packed.shape[-1] // 2, 2]], 0)), tf.uint16)
    values = tf.gather(tf.constant(_common.int4_pair_table(), dtype),
                       tf.cast(pairs, tf.int32))
    values = tf.reshape(values, tf.concat([shape[:-1], [-1]], 0))
    if 2 * packed.shape[-1] != channels:
        values = values[..., :channels]
    if scale is None:
        return values
    return values / tf.expand_dims(tf.cast(scale, dtype), -1)


def adopt_host_array(array):
    """A CPU tensor over `array`'s own memory (DLPack, no copy) when it is
    C-contiguous, writable and 64-byte aligned; else `array` unchanged.
    A `tf.Variable` made from that tensor keeps its buffer (assignment is
    copy-on-write in TensorFlow, and shares the value it is given), where
    one made from the NumPy array copies it, and `tf.convert_to_tensor`
    copies it too. The caller must not write to `array` afterwards."""
    if (not array.flags.c_contiguous or not array.flags.writeable
            or array.ctypes.data % 64):
        return array
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def variable_handle(variable):
    """The `tf.Variable` itself, so that `tf.gather` reads only the rows it
    needs (`ResourceGather`): gathering from its value reads the whole table,
    and the optimizer's in-place row update then copies it, O(table)."""
    return variable.value


def dense_gradient(table):
    @tf.custom_gradient
    def identity(x):
        return tf.identity(x), tf.convert_to_tensor

    return identity(tf.convert_to_tensor(table))


def fused_bag_sum(table, ids, weights):
    return None  # No fused bag op: the caller gathers.


def is_ragged(x):
    return isinstance(x, tf.RaggedTensor)


def map_ragged_values(ids, fn):
    """`fn` on the flat values of ragged ids: a ragged result, as
    `keras.layers.Embedding` gives (`tf.nn.embedding_lookup`)."""
    return ids.with_flat_values(fn(ids.flat_values))


def is_sparse(x):
    return isinstance(x, tf.SparseTensor)


def densify_sparse(x):
    """Sparse ids as dense ids: missing entries are id 0, as in Keras's
    `take` (`safe_embedding_lookup_sparse(default_id=0)`)."""
    return tf.sparse.to_dense(x)


def densify_ragged_bags(ids, bag_weights, dtype):
    """Ragged bags as dense `(ids, bag_weights)`, padded with weight 0.

    `keras.ops` has no ragged tensors, so the layers see dense bags: the
    padding ids are 0 with weight 0, which every combiner leaves out.
    `bag_weights` must be `None` or ragged like `ids`.
    """
    if bag_weights is None:
        bag_weights = tf.ones_like(ids, dtype=dtype)
    elif not isinstance(bag_weights, tf.RaggedTensor):
        raise ValueError(
            "With ragged ids, `bag_weights` must be None or a "
            "tf.RaggedTensor with the same row lengths. Received: "
            f"bag_weights of type {type(bag_weights).__name__}."
        )
    elif bag_weights.ragged_rank != ids.ragged_rank:
        raise ValueError(
            "`bag_weights` must be ragged like the ids. Received: "
            f"ragged_rank={bag_weights.ragged_rank} for bag_weights and "
            f"{ids.ragged_rank} for the ids."
        )
    else:
        for splits, weight_splits in zip(ids.nested_row_splits,
                                         bag_weights.nested_row_splits):
            tf.debugging.assert_equal(
                splits, tf.cast(weight_splits, splits.dtype),
                message="`bag_weights` must have the row lengths of the ids.",
            )
    return ids.to_tensor(0), tf.cast(bag_weights, dtype).to_tensor(0)


# Row-sparse training.


def indexed_slices(gradient):
    """`(indices, values)` of an `IndexedSlices` gradient, else `None`."""
    if isinstance(gradient, tf.IndexedSlices):
        return gradient.indices, gradient.values
    return None


def combine_rows(ids, values, input_dim):
    """One `(row_id, summed gradient)` per distinct row to update.

    Duplicates are summed; ids outside the table and all-zero sums (padding,
    masked positions) are removed.
    """
    values = tf.reshape(values, (-1, values.shape[-1]))
    row_ids, slots = tf.unique(tf.reshape(ids, (-1,)))
    summed = tf.math.unsorted_segment_sum(values, slots,
                                          tf.shape(row_ids)[0])
    keep = tf.logical_and(
        tf.logical_and(row_ids >= 0, row_ids < input_dim),
        tf.reduce_any(summed != 0, axis=-1),
    )
    return tf.boolean_mask(row_ids, keep), tf.boolean_mask(summed, keep)


def read_rows(variable, row_ids):
    value = variable.value if isinstance(variable, keras.Variable) else variable
    return tf.gather(value, row_ids)


def write_rows(optimizer, variable, row_ids, rows, add=False):
    """`variable[row_ids] = rows` (or `+= rows`), in place."""
    update = optimizer.assign_add if add else optimizer.assign
    update(variable, tf.IndexedSlices(rows, row_ids))


def add_rows(optimizer, variable, ids, rows):
    """`variable[ids] += rows` for every valid id, duplicates accumulating
    (`scatter_add`); invalid ids are dropped."""
    ids = tf.reshape(ids, (-1,))
    rows = tf.reshape(rows, (-1, rows.shape[-1]))
    valid = tf.logical_and(ids >= 0, ids < variable.shape[0])
    write_rows(optimizer, variable, tf.boolean_mask(ids, valid),
               tf.boolean_mask(rows, valid), add=True)


def layer_gradients(layer, ids, cotangent, compiled=False, **call_kwargs):
    ids, cotangent = gradient_inputs(layer, ids, cotangent)

    def compute():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(ids, **call_kwargs) * cotangent)
        return tape.gradient(loss, layer.trainable_weights)

    if compiled:
        compute = tf.function(compute)
    return [np.asarray(tf.convert_to_tensor(g)) for g in compute()]


@functools.cache
def _compiled_row_step(compute, shapes):
    # One `tf.function` per `compute` and table shapes, the variables
    # passed in: models of the same shapes (a new seed, a second model)
    # reuse its trace and XLA compilation (a function per model was traced
    # and compiled again for each: about 1 s on the planted corpus, most
    # of its training time). `shapes` is part of the key: a trace reused for a
    # variable of another shape keeps the first one's static shapes.
    @tf.function(reduce_retracing=True, jit_compile=True)
    def step(handles, *batches):
        n = tf.shape(batches[0])[0]
        losses = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            updates, loss = compute(handles, *[b[i] for b in batches])
            for handle, (ids, rows) in zip(handles, updates):
                handle.scatter_add(tf.IndexedSlices(
                    tf.cast(rows, handle.dtype), ids))
            losses = losses.write(i, tf.cast(loss, tf.float32))
        return losses.stack()

    return step


def row_step(compute, variables):
    """Training steps that add rows into `variables` in place, in one
    `tf.function` call.

    `compute(tables, *batch)` returns `(updates, loss)`, one `(ids, rows)`
    per variable; it reads the tables through `tf.gather` on the
    `tf.Variable`s (only the rows), and `scatter_add` writes only the
    updated rows, duplicates accumulating. `step(*batches)` takes each
    batch argument stacked along a leading steps axis and runs the steps
    in order, returning each step's loss.
    """
    handles = [variable_handle(v) for v in variables]
    compiled = _compiled_row_step(compute, tuple(
        (tuple(v.shape), str(v.dtype)) for v in variables))

    # The traced graph of each batch shapes, called directly: calling the
    # `tf.function` matches its arguments (the variables included) to a
    # trace on every call, about 2 ms, which was 20% to 30% of a call of
    # 32 steps (measured on the Lee corpus).
    concrete = {}

    def step(*batches):
        batches = [tf.convert_to_tensor(b) for b in batches]
        key = tuple((tuple(b.shape), b.dtype) for b in batches)
        if key not in concrete:
            concrete[key] = compiled.get_concrete_function(handles, *[
                tf.TensorSpec(b.shape, b.dtype) for b in batches])
        return concrete[key](handles, *batches)

    return step


def stable_argsort(x):
    """Indices sorting 1-D `x`, equal values in their original order
    (`keras.ops.argsort` is not stable on TensorFlow)."""
    return tf.argsort(x, stable=True)
