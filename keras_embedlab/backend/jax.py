"""JAX: what `keras.ops` cannot do.

- Raising on invalid ids under `jax.jit`: a `jax.pure_callback` under
  `lax.cond`, which only a bad batch reaches.
- A gather with a zero fill value (`keras.ops.take` has none; on JAX it
  wraps negative ids and gives NaN rows for ids past the end).
- Row-sparse training: no sparse gradient type exists, so `RowSparseModel`
  differentiates the looked-up rows (`TRACES_ROWS`), with a fixed-size
  `unique` and a scatter that drops padding slots.
"""

import functools
import logging
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_embedlab.backend._common import (  # noqa: F401
    densify_ragged_bags,
    gather_rows,
    gradient_inputs,
    gradients,
    indexed_slices,
    is_ragged,
    no_grad,
    row_leaf,
    variable_handle,
)


def is_sparse(x):
    from jax.experimental import sparse  # Lazy: rarely used.

    return isinstance(x, sparse.JAXSparse)


def densify_sparse(x):
    """Sparse ids as dense ids: missing entries are id 0, as Keras's `take`
    densifies them."""
    return x.todense()


SUPPORTS_JIT_WITH_CHECKS = True
TRACES_ROWS = True
STATELESS_TRAINER = True  # Keras's JAX trainer passes state in and out.
FILL_TAKE = True
# The `model.export` formats under which Keras's own `Embedding` exports
# and runs on this backend (Keras 3.15: no LiteRT
# from JAX; OpenVINO cannot convert Keras's JAX embedding), which ours cover
# (`keras_embedlab.serving.FORMATS`, tests/test_export.py).
EXPORT_FORMATS = ("tf_saved_model", "onnx")
# Calls of word2vec's steps per dispatch of `row_step` (`Word2Vec`): one;
# JAX dispatches asynchronously, and 2 to 8 calls at a time ran 10% to
# 30% slower per step (Lee corpus).
ROW_STEP_CALLS = 1
# Whether `row_step`s of one table may run in two threads at once: no,
# its jitted steps consume the tables they update (donated buffers).
CONCURRENT_ROW_STEPS = False


all_ids_valid = None  # The rule's one reduction (`ids.reader`).


class _DropErrors(logging.Filter):
    """Keeps JAX from logging an error of `error_type` before re-raising it.

    JAX logs every exception raised in a `pure_callback` and then raises it
    again wrapped in `JaxRuntimeError`: without this filter the message is
    printed twice.
    """

    def __init__(self, error_type):
        super().__init__()
        self.error_type = error_type

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, self.error_type)


def quiet_callback_errors(error_type):
    logging.getLogger("jax._src.callback").addFilter(_DropErrors(error_type))


# Keras's JAX trainer detaches the model's variables from their values,
# hands the values to its compiled step (as donated buffers, which the step
# consumes) and attaches the step's results when it returns. A step that
# raises returns nothing: every variable of the model is left without a
# value, and the next `predict` fails inside Keras with "'NoneType' object
# is not callable" (`Variable.value`). No layer can hand the values back:
# they were in the step's arguments only. So the error says what to do.
# Calling `model(ids)` checks a batch without the risk: it runs no trainer
# step.
INVALID_ID_NOTE = (
    " On JAX, if this error stopped a Keras fit, evaluate or predict, the "
    "model lost its weights: set them again (model.set_weights with weights "
    "saved before); after fit, compile with a new optimizer."
)


def checked_on_host(ids):
    return not isinstance(ids, jax.core.Tracer)


def _in_jax2tf():
    """Whether `jax2tf.convert` is tracing (Keras's `tf_saved_model`
    export): it keeps a list of embedded TensorFlow functions meanwhile."""
    jax2tf = sys.modules.get("jax.experimental.jax2tf.jax2tf")
    return (jax2tf is not None and
            jax2tf.get_thread_local_state_call_tf_concrete_function_list()
            is not None)


def serving_graph(ids):
    """A program traced for export: with symbolic dimensions (Keras's
    exports trace a batch of any size, through jax2onnx or `jax2tf`) or
    inside `jax2tf`. Host callbacks do not serialize there."""
    if not isinstance(ids, jax.core.Tracer):
        return False
    symbolic = any(not isinstance(d, int) for d in ids.shape)
    return symbolic or _in_jax2tf()


def ids_for_host_check(ids, input_dim, valid=None):
    # Keras's eager steps (`run_eagerly=True`) come here too: hence the note.
    return np.asarray(ids)


def refuse_in_graph(ids, refusal):
    """`ids`, with a callback that raises `refusal.error` on a bad batch.

    In a program traced for export, no callback (none serializes): the
    lookup's gather refuses (`ids.reader.serving_rows`) where the format
    keeps a gather that can (ONNX, through jax2onnx); jax2tf's cannot, so
    that export stops with a `ValueError`.
    """
    if _in_jax2tf():
        # XLA has no operation that fails on data, gathers clamp, and a
        # TensorFlow assertion embedded with `call_tf` needs static shapes.
        raise refusal.cannot_export(
            "format='tf_saved_model' on JAX (jax2tf): the XLA program it "
            "saves has no operation that can refuse a batch")
    if serving_graph(ids):
        return ids
    has_bad = refusal.has_invalid()

    def check(has_bad, offending):
        # Re-checked here: XLA may run a pure callback speculatively.
        if has_bad:
            raise refusal.error(np.asarray(offending).item())
        return np.zeros((), ids.dtype)

    def checked_zero(has_bad):
        return jax.lax.cond(
            has_bad,
            lambda: jax.pure_callback(
                check, jax.ShapeDtypeStruct((), ids.dtype), has_bad,
                refusal.first_invalid(),
            ),
            lambda: jnp.zeros((), ids.dtype),
        )

    distribution = keras.distribution.distribution()
    if distribution is not None:
        # Across devices (keras.distribution), every device must run the
        # callback and fail together; a callback on one device alone leaves
        # the others waiting in a collective and the process hangs.
        checked_zero = jax.shard_map(
            checked_zero,
            mesh=distribution.device_mesh.backend_mesh,
            in_specs=jax.sharding.PartitionSpec(),
            out_specs=jax.sharding.PartitionSpec(),
            check_vma=False,
        )
    # Valid batches pay for one reduction and a branch, never for a trip to
    # the host. The callback is a `pure_callback` whose (zero) result the ids
    # depend on, so it is not dropped; an effectful `jax.debug.callback` would
    # make every call of the compiled program about 2x slower.
    return ids + checked_zero(has_bad)


def adopt_host_array(array):
    """A JAX array over `array`'s own memory when it is C-contiguous and
    64-byte aligned on a CPU default device (`device_put(may_alias=True)`);
    else `array` unchanged (Keras's variable then copies it). The caller
    must not write to `array` afterwards."""
    device = jax.devices()[0]
    if (device.platform != "cpu" or not array.flags.c_contiguous
            or array.ctypes.data % 64):
        return array
    return jax.device_put(array, device, may_alias=True)


def fill_take(table, ids, fill_value=0):
    """One gather that returns `fill_value` rows for invalid ids, at no
    extra cost; as unsigned, negative ids are out of range instead of
    wrapping."""
    ids = jnp.asarray(ids)
    unsigned = ids.astype(jnp.uint64 if ids.dtype == jnp.int64 else jnp.uint32)
    return jnp.take(keras.ops.convert_to_tensor(table), unsigned, axis=0,
                    mode="fill", fill_value=fill_value)


def dense_gradient(table):
    return table  # JAX gradients are dense already.


def fused_bag_sum(table, ids, weights):
    return None  # No fused bag op: XLA fuses the gathered rows' sum.


# Row-sparse training.


def combine_rows(ids, values, input_dim):
    """Per-row gradients `(row_ids, summed)` at a fixed size.

    Duplicates are summed. Slots of ids outside the table (invalid ids in
    `"zeros"` mode), of rows whose sum is all zeros (padding, masked
    positions) and unused slots get id `input_dim`, which `write_rows`
    drops.
    """
    values = jnp.reshape(values, (-1, values.shape[-1]))
    ids = jnp.reshape(ids, (-1,))
    ids = jnp.where((ids >= 0) & (ids < input_dim), ids, input_dim)
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
    return jnp.take(value, row_ids, axis=0, mode="clip")


def write_rows(optimizer, variable, row_ids, rows, add=False):
    """`variable[row_ids] = rows` (or `+= rows`), other rows untouched."""
    value = variable.value if isinstance(variable, keras.Variable) else variable
    at = value.at[row_ids]
    optimizer.assign(variable, at.add(rows, mode="drop") if add
                     else at.set(rows, mode="drop"))


def add_rows(optimizer, variable, ids, rows):
    """`variable[ids] += rows` for every valid id, duplicates accumulating;
    invalid ids (negative ones too, which would wrap) are dropped."""
    ids = jnp.reshape(ids, (-1,))
    size = variable.shape[0]
    ids = jnp.where((ids >= 0) & (ids < size), ids, size)
    write_rows(optimizer, variable, ids,
               jnp.reshape(rows, (-1, rows.shape[-1])), add=True)


def layer_gradients(layer, ids, cotangent, compiled=False, **call_kwargs):
    ids, cotangent = gradient_inputs(layer, ids, cotangent)
    trainable = [v.value for v in layer.trainable_weights]
    frozen = [v.value for v in layer.non_trainable_weights]

    def loss(trainable):
        outputs, _ = layer.stateless_call(trainable, frozen, ids,
                                          **call_kwargs)
        return jnp.sum(outputs * cotangent)

    # Under `jax.jit`, as `model.fit` runs: one compilation instead of one
    # per operation, much faster for a single call.
    grad_fn = jax.jit(jax.grad(loss)) if compiled else jax.grad(loss)
    return [np.asarray(g) for g in grad_fn(trainable)]


# `RowSparseModel`'s step differentiates the looked-up rows (`TRACES_ROWS`).
value_and_grad = jax.value_and_grad


def keeps_int64():
    """Without `jax_enable_x64`, JAX narrows int64 to int32."""
    return bool(jax.config.jax_enable_x64)


@functools.cache
def _jitted_row_step(compute):
    # One jitted function per `compute`: models of the same shapes (a new
    # seed, a second model) reuse its compilation.
    def one(values, batch):
        updates, loss = compute(values, *batch)
        new = [value.at[ids].add(rows.astype(value.dtype), mode="drop")
               for value, (ids, rows) in zip(values, updates)]
        return new, loss

    def steps(values, *batches):
        return jax.lax.scan(one, values, batches)

    return jax.jit(steps, donate_argnums=0)


def row_step(compute, variables):
    """Compiled training steps that add rows into `variables`.

    `compute(values, *batch)` returns `(updates, loss)`, one `(ids, rows)`
    per variable; duplicate ids accumulate. `step(*batches)` takes each
    batch argument stacked along a leading steps axis and runs the steps in
    order (`lax.scan`: one dispatch for all of them), returning each
    step's loss. The tables are donated to the jitted function, which
    returns them updated (no copy of the tables).
    """
    jitted = _jitted_row_step(compute)

    def step(*batches):
        new, losses = jitted([v.value for v in variables], *batches)
        for variable, value in zip(variables, new):
            variable.assign(value)
        return losses

    return step


def stable_argsort(x):
    """Indices sorting 1-D `x`, equal values in their original order."""
    return jnp.argsort(x, stable=True)


def nonnegative_divide(x, divisor):
    """`lax.div` (truncation, flooring for `x >= 0`): `jnp.floor_divide`
    and `jnp.remainder` go through `lax.rem`, which jax2onnx cannot lower
    with a symbolic batch size (Keras's ONNX export). Unsigned words by a
    power of two: a logical shift (ONNX `BitShift`; jax2onnx writes
    `(a + b) / 2` as a float-only `Mean`)."""
    if (jnp.issubdtype(x.dtype, jnp.unsignedinteger)
            and divisor & (divisor - 1) == 0):
        return jax.lax.shift_right_logical(
            x, jnp.asarray(divisor.bit_length() - 1, x.dtype))
    return jax.lax.div(x, jnp.asarray(divisor, x.dtype))
