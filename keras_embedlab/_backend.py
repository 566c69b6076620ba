"""Backend-specific helpers, kept to the two things `keras.ops` cannot do.

1. Raising on invalid ids from inside compiled code. `keras.ops` has no
   assertion op, and each backend needs its own mechanism to stop a compiled
   program at run time: `tf.debugging.Assert` in TensorFlow graphs, a host
   callback under `jax.lax.cond` in JAX. Eager tensors are checked on the host.
2. Making the TensorFlow gradient of a gather dense. `tf.gather` returns a
   `tf.IndexedSlices` gradient, which Keras optimizers such as Adam apply to
   only part of their state, so training would differ from JAX (and from
   one-hot matmul). Densifying it gives the same update on every backend.
3. A gather with a zero fill value on JAX, which `keras.ops.take` lacks.

Backends are imported lazily, only when the active backend needs them.
"""

import keras
import numpy as np


def invalid_ids_message(layer_name, input_dim, offending_id):
    return (
        f"Layer '{layer_name}' received an invalid id: {offending_id} is "
        f"outside the valid range [0, {input_dim}) (input_dim={input_dim}). "
        "Ids must satisfy 0 <= id < input_dim: fix the ids, increase "
        "`input_dim`, or pass invalid_ids='zeros' to map invalid ids to "
        "all-zero rows."
    )


def _check_on_host(ids, input_dim, layer_name):
    ids = np.asarray(ids)
    bad = (ids < 0) | (ids >= input_dim)
    if bad.any():
        offending = int(ids[bad].flat[0])
        raise ValueError(invalid_ids_message(layer_name, input_dim, offending))


def _check_tensorflow(ids, input_dim, layer_name):
    import tensorflow as tf

    if tf.executing_eagerly():
        _check_on_host(ids.numpy(), input_dim, layer_name)
        return ids
    lo = tf.reduce_min(ids)
    hi = tf.reduce_max(ids)
    ok = tf.logical_and(lo >= 0, hi < input_dim)
    offending = tf.where(lo < 0, lo, hi)
    # Under XLA (`jit_compile=True`) the assertion is dropped; the caller's
    # safe lookup then returns zero rows, never another row's vector.
    assertion = tf.debugging.Assert(
        ok,
        [
            f"Layer '{layer_name}' received an invalid id:",
            offending,
            f"is outside the valid range [0, {input_dim}) "
            f"(input_dim={input_dim}). Fix the ids, increase `input_dim`, or "
            "pass invalid_ids='zeros'.",
        ],
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(ids)


def _check_jax(ids, input_dim, layer_name):
    import jax

    if not isinstance(ids, jax.core.Tracer):
        _check_on_host(ids, input_dim, layer_name)
        return ids

    def raise_error(lo, hi):
        offending = int(lo) if lo < 0 else int(hi)
        raise ValueError(invalid_ids_message(layer_name, input_dim, offending))

    lo = jax.numpy.min(ids)
    hi = jax.numpy.max(ids)
    bad = (lo < 0) | (hi >= input_dim)
    # The callback runs only when an id is invalid, so valid batches pay for
    # two reductions and a branch, not for a round trip to the host.
    jax.lax.cond(
        bad,
        lambda: jax.debug.callback(raise_error, lo, hi),
        lambda: None,
    )
    return ids


def check_ids(ids, input_dim, layer_name):
    """Raises (or makes compiled code raise) if any id is outside the table."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _check_tensorflow(ids, input_dim, layer_name)
    if backend == "jax":
        return _check_jax(ids, input_dim, layer_name)
    _check_on_host(keras.ops.convert_to_numpy(ids), input_dim, layer_name)
    return ids


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


def dense_gradient(table):
    """Identity on `table` whose gradient is a dense tensor on TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return table
    import tensorflow as tf

    @tf.custom_gradient
    def identity(x):
        return tf.identity(x), tf.convert_to_tensor

    return identity(tf.convert_to_tensor(table))


def layer_gradients(layer, ids, cotangent):
    """Gradients of `sum(layer(ids) * cotangent)` for `layer.trainable_weights`.

    Keras has no backend-agnostic gradient function; the demo, the examples
    and the tests use this one. Returns NumPy arrays.
    """
    backend = keras.backend.backend()
    ids = keras.ops.convert_to_tensor(ids)
    cotangent = keras.ops.convert_to_tensor(cotangent, layer.compute_dtype)
    if not layer.built:
        layer.build(tuple(ids.shape))
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(ids) * cotangent)
        grads = tape.gradient(loss, layer.trainable_weights)
        return [np.asarray(tf.convert_to_tensor(g)) for g in grads]
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_weights]
        frozen = [v.value for v in layer.non_trainable_weights]

        def loss(trainable):
            outputs, _ = layer.stateless_call(trainable, frozen, ids)
            return jax.numpy.sum(outputs * cotangent)

        return [np.asarray(g) for g in jax.grad(loss)(trainable)]
    if backend == "torch":
        import torch

        for v in layer.trainable_weights:
            v.value.grad = None
        torch.sum(layer(ids) * cotangent).backward()
        return [v.value.grad.detach().cpu().numpy() for v in
                layer.trainable_weights]
    raise NotImplementedError(f"No gradient helper for backend {backend!r}.")
