"""Backend-specific helpers, kept to what `keras.ops` cannot do.

1. Raising on invalid ids from inside compiled code. `keras.ops` has no
   assertion op, and each backend needs its own mechanism to stop a compiled
   program at run time: `tf.debugging.Assert` in TensorFlow graphs, a host
   callback under `jax.lax.cond` in JAX. Eager tensors are checked on the host.
2. Making the TensorFlow gradient of a gather dense. `tf.gather` returns a
   `tf.IndexedSlices` gradient, which Keras optimizers such as Adam apply to
   only part of their state, so training would differ from JAX (and from
   one-hot matmul). Densifying it gives the same update on every backend.
3. A gather with a zero fill value on JAX, which `keras.ops.take` lacks, and
   a plain gather on TensorFlow for ids known to be in range.
4. Ragged bags of ids (`tf.RaggedTensor`), which only TensorFlow has.
5. A bag sum that never holds the gathered `(batch, bag, dim)` rows, which
   only PyTorch has (`embedding_bag`).

Backends are imported lazily, only when the active backend needs them.
"""

import logging

import keras
import numpy as np


class InvalidIdError(ValueError):
    """An id outside `[0, input_dim)`, or a float id that is not one."""


def invalid_ids_message(layer_name, input_dim, offending_id):
    """The one wording of the invalid-id error, on every backend."""
    return (
        f"Layer '{layer_name}' received an invalid id: {offending_id}. Ids "
        f"must be whole numbers in the valid range [0, {input_dim}) "
        f"(input_dim={input_dim}): fix the ids, increase `input_dim`, or "
        "pass invalid_ids='zeros' to map invalid ids to all-zero rows."
    )


def valid_ids(ids, input_dim, xp):
    """Bool mask of the ids in `[0, input_dim)`, in the ids' own dtype.

    The invalid-id rule, written once: `xp` is `numpy` for host arrays or
    `keras.ops` for tensors. Float ids count only if they are whole numbers
    (NaN and infinities fail every comparison); unsigned ids are compared
    without a narrowing cast, so 2**32 + 1 never wraps to row 1.
    """
    dtype = keras.backend.standardize_dtype(ids.dtype)
    if "float" in dtype:
        whole = xp.equal(xp.floor(ids), ids)
        return xp.logical_and(whole, xp.logical_and(
            xp.greater_equal(ids, 0), xp.less(ids, input_dim)))
    if dtype.startswith("uint") or dtype == "bool":
        if xp is np:
            return np.less(ids, input_dim)
        # Tensors are compared as int64: PyTorch has no unsigned
        # comparisons, and Keras's type promotion can narrow uint64. The
        # cast keeps every invalid id invalid (2**63 and above turn
        # negative; so do uint32 ids from 2**31 on JAX without x64).
        ids = xp.cast(ids, "int64")
    return xp.logical_and(xp.greater_equal(ids, 0), xp.less(ids, input_dim))


def check_on_host(ids, input_dim, layer_name, valid=None):
    """Raises `InvalidIdError` naming the first invalid id, as received."""
    ids = np.asarray(ids)
    if valid is None:
        valid = valid_ids(ids, input_dim, np)
    valid = np.asarray(valid)
    if not valid.all():
        offending = ids[~valid].flat[0].item()
        raise InvalidIdError(
            invalid_ids_message(layer_name, input_dim, offending)
        )


def all_ids_valid(ids, input_dim):
    """Scalar bool: every (signed integer) id is in `[0, input_dim)`.

    On TensorFlow and JAX one reduction: as unsigned integers negative ids
    are huge, so the largest tells. PyTorch has no unsigned 64-bit
    reductions, so there it takes the min and the max.
    """
    ops = keras.ops
    if keras.backend.backend() in ("tensorflow", "jax"):
        return ops.less(ops.max(_as_unsigned(ids), initial=0), input_dim)
    return ops.logical_and(
        ops.greater_equal(ops.min(ids, initial=0), 0),
        ops.less(ops.max(ids, initial=0), input_dim),
    )


def _as_unsigned(ids):
    dtype = keras.backend.standardize_dtype(ids.dtype)
    return keras.ops.cast(ids, "uint64" if dtype == "int64" else "uint32")


def _tf_assertion(ids, valid, input_dim, layer_name):
    """TensorFlow graphs: an op that fails, with the message, if not `valid`.

    The data are the eager message's words around the offending id, so the
    text is the same, in TensorFlow's brackets (after its node trace).
    String formatting ops would not compile under XLA, which drops the
    assertion (`jit_compile=True`).
    """
    import tensorflow as tf

    before, after = invalid_ids_message(layer_name, input_dim, "\0").split(
        "\0"
    )
    flat_ids = tf.reshape(ids, [-1])
    bad = tf.logical_not(tf.reshape(valid, [-1]))
    first = tf.gather(flat_ids, tf.argmax(tf.cast(bad, tf.int32)))
    return tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)), [before, first, after]
    )


def fail_in_graph(rows, ids, input_dim, layer_name):
    """TensorFlow graphs: `rows`, after an assertion on the ids.

    Called only in the branch for a batch with invalid ids. Under XLA
    (`jit_compile=True`) the assertion is dropped and the zeroed `rows` are
    returned: never another row's vector.
    """
    if keras.backend.backend() != "tensorflow":
        return rows
    import tensorflow as tf

    valid = valid_ids(ids, input_dim, keras.ops)
    with tf.control_dependencies(
        [_tf_assertion(ids, valid, input_dim, layer_name)]
    ):
        return tf.identity(rows)


class _DropOwnErrors(logging.Filter):
    """Keeps JAX from logging an `InvalidIdError` before re-raising it.

    JAX logs every exception raised in a `pure_callback` and then raises it
    again wrapped in `JaxRuntimeError`: without this filter the message is
    printed twice.
    """

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, InvalidIdError)


_jax_filter = _DropOwnErrors()


def _check_jax(ids, input_dim, layer_name, valid):
    import jax
    import jax.numpy as jnp

    if not isinstance(ids, jax.core.Tracer):
        check_on_host(ids, input_dim, layer_name)
        return ids
    logging.getLogger("jax._src.callback").addFilter(_jax_filter)
    if valid is None:
        # As unsigned integers, negative ids are huge, so one max finds any
        # id outside [0, input_dim), and it is reported as received.
        largest = jnp.max(_as_unsigned(ids), initial=0)
        has_bad = largest >= input_dim
        offending = lambda: largest.astype(ids.dtype)  # noqa: E731
    else:
        bad = jnp.logical_not(valid).ravel()
        has_bad = jnp.any(bad)
        offending = lambda: ids.ravel()[jnp.argmax(bad)]  # noqa: E731

    def check(has_bad, offending):
        # Re-checked here: XLA may run a pure callback speculatively.
        if has_bad:
            raise InvalidIdError(invalid_ids_message(
                layer_name, input_dim, np.asarray(offending).item()
            ))
        return np.zeros((), ids.dtype)

    def checked_zero(has_bad):
        return jax.lax.cond(
            has_bad,
            lambda: jax.pure_callback(
                check, jax.ShapeDtypeStruct((), ids.dtype), has_bad,
                offending(),
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
    zero = checked_zero(has_bad)
    # Valid batches pay for one reduction and a branch, never for a trip to
    # the host. The callback is a `pure_callback` whose (zero) result the ids
    # depend on, so it is not dropped; an effectful `jax.debug.callback` would
    # make every call of the compiled program about 2x slower.
    return ids + zero


def _check_torch(ids, input_dim, layer_name, valid):
    # One reduction on the device and a single scalar read back; only a bad
    # batch is copied to the host to name its first invalid id.
    if valid is None:
        ok = all_ids_valid(ids, input_dim)
    else:
        ok = keras.ops.all(valid)
    if not bool(ok):
        check_on_host(keras.ops.convert_to_numpy(ids), input_dim, layer_name)
    return ids


def checked_on_host(ids):
    """Whether `check_ids` checked these ids in Python, not in a graph.

    True in eager mode, and always on PyTorch (even under `torch.compile`
    its check runs in Python, as a graph break). Then `check_ids` has
    raised for any invalid id, so the ids that follow it are valid.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(ids, jax.core.Tracer)
    return True


def check_ids(ids, input_dim, layer_name, valid=None):
    """Raises (or makes compiled code raise) if any id is invalid.

    `valid` is the ids' `valid_ids` mask; `None` for signed integer ids,
    which have faster checks. Returns the ids, made to depend on the check
    in compiled code so that it is not dropped.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            check_on_host(ids.numpy(), input_dim, layer_name)
        elif valid is not None:
            with tf.control_dependencies(
                [_tf_assertion(ids, valid, input_dim, layer_name)]
            ):
                return tf.identity(ids)
        # For signed ids in a graph the check is `fail_in_graph`, inside the
        # branch that only a bad batch runs.
        return ids
    if backend == "jax":
        return _check_jax(ids, input_dim, layer_name, valid)
    return _check_torch(ids, input_dim, layer_name, valid)


def has_fill_take():
    return keras.backend.backend() == "jax"


def fill_take(table, ids):
    """JAX only: one gather that returns zeros for invalid ids.

    `keras.ops.take` has no fill mode (on JAX it wraps negative ids and fills
    out-of-range ones with NaN). `jnp.take(mode="fill")` handles invalid ids
    inside the gather itself at no extra cost; casting to unsigned first turns
    negative ids into out-of-range ones instead of letting them wrap.
    """
    import jax.numpy as jnp

    unsigned = jnp.uint64 if ids.dtype == jnp.int64 else jnp.uint32
    return jnp.take(
        keras.ops.convert_to_tensor(table),
        ids.astype(unsigned),
        axis=0,
        mode="fill",
        fill_value=0,
    )


def gather_rows(table, ids):
    """`take(table, ids, axis=0)` for ids already known to be in range.

    On TensorFlow `keras.ops.take` first rewrites negative ids (three more
    ops per call); the ids here are never negative, so `tf.gather` is used.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(table, ids)
    return keras.ops.take(table, ids, axis=0)


def variable_handle(variable):
    """What a row-sparse lookup gathers from.

    On TensorFlow the `tf.Variable` itself, so that `tf.gather` reads only
    the rows it needs (`ResourceGather`). Gathering from the variable's value
    reads the whole table, and the optimizer's in-place row update then has
    to copy it: O(table) per step.
    """
    if keras.backend.backend() == "tensorflow":
        return variable.value
    return variable


def dense_gradient(table):
    """Identity on `table` whose gradient is a dense tensor on TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return table
    import tensorflow as tf

    @tf.custom_gradient
    def identity(x):
        return tf.identity(x), tf.convert_to_tensor

    return identity(tf.convert_to_tensor(table))


def fused_bag_sum(table, ids, weights):
    """`sum(weights[..., None] * table[ids], axis=-2)`, or `None`.

    PyTorch only: `F.embedding_bag(mode="sum", per_sample_weights=...)`
    reads each row and adds it into its bag in one kernel, so the gathered
    `(batch, bag, dim)` rows never exist (`keras.ops` has no such op; other
    backends return `None` and the caller gathers). Ids out of range must
    have weight 0: they are read as row 0.
    """
    if keras.backend.backend() != "torch" or ids.shape[-1] == 0:
        return None
    import torch
    import torch.nn.functional as F

    table = keras.ops.convert_to_tensor(table)
    bag = ids.shape[-1]
    valid = (ids >= 0) & (ids < table.shape[0])
    flat_ids = torch.where(valid, ids, 0).reshape(-1, bag)
    flat_weights = weights.to(table.dtype).reshape(-1, bag)
    sums = F.embedding_bag(flat_ids, table, mode="sum",
                           per_sample_weights=flat_weights)
    return sums.reshape(*ids.shape[:-1], table.shape[-1])


def is_ragged(x):
    """Whether `x` is a `tf.RaggedTensor` (only TensorFlow has them)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(x, tf.RaggedTensor)


def densify_ragged_bags(ids, bag_weights, dtype):
    """Ragged bags as dense `(ids, bag_weights)`, padded with weight 0.

    `keras.ops` has no ragged tensors, so the layers see dense bags: the
    padding ids are 0 with weight 0, which every combiner leaves out.
    `bag_weights` must be `None` or ragged like `ids`.
    """
    import tensorflow as tf

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


def layer_gradients(layer, ids, cotangent, compiled=False, **call_kwargs):
    """Gradients of `sum(layer(ids) * cotangent)` for `layer.trainable_weights`.

    `call_kwargs` go to the call (`bag_weights=`, `reverse=True`). With
    `compiled=True` the gradient runs as `model.fit` runs it: under
    `jax.jit` on JAX (one compilation instead of one per operation, much
    faster for a single call) and `tf.function` on TensorFlow; PyTorch
    stays eager, as Keras runs it. Keras has no backend-agnostic gradient
    function; the demo, the examples and the tests use this one. Returns
    NumPy arrays.
    """
    backend = keras.backend.backend()
    ids = keras.ops.convert_to_tensor(ids)
    cotangent = keras.ops.convert_to_tensor(cotangent, layer.compute_dtype)
    if not layer.built:
        layer.build(tuple(ids.shape))
    if backend == "tensorflow":
        import tensorflow as tf

        def gradients():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(ids, **call_kwargs) * cotangent)
            return tape.gradient(loss, layer.trainable_weights)

        if compiled:
            gradients = tf.function(gradients)
        return [np.asarray(tf.convert_to_tensor(g)) for g in gradients()]
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_weights]
        frozen = [v.value for v in layer.non_trainable_weights]

        def loss(trainable):
            outputs, _ = layer.stateless_call(trainable, frozen, ids,
                                              **call_kwargs)
            return jax.numpy.sum(outputs * cotangent)

        gradients = jax.jit(jax.grad(loss)) if compiled else jax.grad(loss)
        return [np.asarray(g) for g in gradients(trainable)]
    if backend == "torch":
        import torch

        for v in layer.trainable_weights:
            v.value.grad = None
        torch.sum(layer(ids, **call_kwargs) * cotangent).backward()
        return [v.value.grad.detach().cpu().numpy() for v in
                layer.trainable_weights]
    raise NotImplementedError(f"No gradient helper for backend {backend!r}.")


# Benchmark plumbing (`python -m keras_embedlab bench`): compiling a function
# and waiting for its result are backend-specific by nature.


def raw_gather(table, ids):
    """The backend's own gather, the anchor of the benchmark."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.take(table, ids, axis=0)
    if backend == "torch":
        import torch

        return torch.nn.functional.embedding(ids, table)
    import tensorflow as tf

    return tf.gather(table, ids)


def block(result):
    """Waits until `result` is computed (JAX dispatches asynchronously)."""
    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(result)


def device_name():
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU ({torch.cuda.get_device_name()})"
        return "CPU"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform.upper()} ({device.device_kind})"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def _optimizer(mode):
    if mode == "sgd":
        return keras.optimizers.SGD(0.01)
    return keras.optimizers.Adam(0.001)


def compile_benchmark(mode, fn, table, ids, cotangent):
    """A zero-argument callable running one compiled call of `mode`.

    `fn(table, ids)` returns rows. Modes: "forward"; "backward" (gradient of
    `sum(fn(table, ids) * cotangent)` with respect to the table); "sgd" and
    "adam" (that gradient applied by a Keras optimizer, as `model.fit` does).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return _compile_jax(mode, fn, table, ids, cotangent)
    if backend == "tensorflow":
        return _compile_tensorflow(mode, fn, table, ids, cotangent)
    if backend == "torch":
        return _eager_torch(mode, fn, table, ids, cotangent)
    raise NotImplementedError(f"bench does not support backend {backend!r}")


def _compile_jax(mode, fn, table, ids, cotangent):
    import jax
    import jax.numpy as jnp

    t, i, c = jnp.asarray(table), jnp.asarray(ids), jnp.asarray(cotangent)
    if mode == "forward":
        forward = jax.jit(fn)
        return lambda: forward(t, i)

    def loss(t, i, c):
        return jnp.sum(fn(t, i) * c)

    if mode == "backward":
        backward = jax.jit(jax.grad(loss))
        return lambda: backward(t, i, c)
    optimizer = _optimizer(mode)
    optimizer.build([keras.Variable(table)])

    # Donated state, as Keras's JAX trainer does.
    @jax.jit
    def step(t, optimizer_state, i, c):
        grads = [jax.grad(loss)(t, i, c)]
        (t,), optimizer_state = optimizer.stateless_apply(
            optimizer_state, grads, [t]
        )
        return t, optimizer_state

    step = jax.jit(step, donate_argnums=(0, 1))
    state = [t, [v.value for v in optimizer.variables]]

    def run():
        state[0], state[1] = step(state[0], state[1], i, c)
        return state[0]

    return run


def _compile_tensorflow(mode, fn, table, ids, cotangent):
    import tensorflow as tf

    i, c = tf.constant(ids), tf.constant(cotangent)
    if mode == "forward":
        t = tf.constant(table)
        forward = tf.function(fn)
        return lambda: forward(t, i)
    if mode == "backward":
        t = tf.constant(table)

        @tf.function
        def backward(t, i, c):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(fn(t, i) * c)
            return tape.gradient(loss, t)

        return lambda: backward(t, i, c)
    variable = keras.Variable(table)
    optimizer = _optimizer(mode)
    optimizer.build([variable])

    @tf.function
    def step(i, c):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(fn(variable.value, i) * c)
        grads = tape.gradient(loss, [variable.value])
        optimizer.apply(grads, [variable])
        return loss

    return lambda: step(i, c)


def _eager_torch(mode, fn, table, ids, cotangent):
    # Keras runs PyTorch eagerly unless `jit_compile=True`, so do we.
    import torch

    i, c = torch.as_tensor(ids), torch.as_tensor(cotangent)
    if mode == "forward":
        t = torch.as_tensor(table)

        def forward():
            with torch.no_grad():
                return fn(t, i)

        return forward
    if mode == "backward":
        t = torch.as_tensor(table).requires_grad_()

        def backward():
            t.grad = None
            torch.sum(fn(t, i) * c).backward()
            return t.grad

        return backward
    variable = keras.Variable(table)
    optimizer = _optimizer(mode)
    optimizer.build([variable])

    def step():
        variable.value.grad = None
        loss = torch.sum(fn(variable.value, i) * c)
        loss.backward()
        optimizer.apply([variable.value.grad], [variable])
        return loss

    return step
