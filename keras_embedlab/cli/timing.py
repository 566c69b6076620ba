"""Benchmark plumbing for `python -m keras_embedlab bench`: the raw gather
each backend offers, compiling one call the way Keras compiles it, and
waiting for its result. Backend-specific by nature; not used at run time.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

Rows = Callable[[Any, Any], Any]


def prepare() -> str | None:
    """Makes every contender's call take the same path; returns a note for
    the report when it cannot.

    On CPU, JAX runs a program on a worker thread and returns at once
    (async dispatch), except a program that holds a host callback, which
    it runs inline on the calling thread. `LookupEmbedding`'s id check is
    such a callback: timed call by call, each waited for, every other
    contender paid a thread hand-off (about 0.1 ms on a busy machine) that
    `LookupEmbedding` did not, and the wrapper came out 4-6x faster than
    the gather it wraps. Synchronous dispatch runs every program inline:
    each timed call is then dispatch + execution, the same for all.
    """
    if keras.backend.backend() != "jax":
        return None
    import jax

    try:  # Whether JAX's clients exist yet (the flag is read at creation).
        from jax._src import xla_bridge

        started = bool(getattr(xla_bridge, "_backends", None))
    except ImportError:
        started = False
    if started and jax.config.read("jax_cpu_enable_async_dispatch"):
        if jax.default_backend() != "cpu":
            return None  # Accelerators: every call is waited for alike.
        return ("note: JAX's CPU client was started before the bench with "
                "async dispatch, so a program with a host callback "
                "(LookupEmbedding's id check) runs inline and the others "
                "on a worker thread: their times differ by the hand-off. "
                "Run `python -m keras_embedlab bench` in a fresh process, "
                "or set JAX_CPU_ENABLE_ASYNC_DISPATCH=false.")
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return None


def raw_gather(table: Any, ids: Any) -> Any:
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


def block(result: Any) -> None:
    """Waits until `result` is computed (JAX dispatches asynchronously)."""
    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(result)


def device_name() -> str:
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


def _optimizer(mode: str) -> keras.optimizers.Optimizer:
    if mode == "sgd":
        return keras.optimizers.SGD(0.01)
    return keras.optimizers.Adam(0.001)


def compile_benchmark(mode: str, fn: Rows, table: np.ndarray,
                      ids: np.ndarray,
                      cotangent: np.ndarray) -> Callable[[], Any]:
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
