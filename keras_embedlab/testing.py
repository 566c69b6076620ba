"""Test helpers that need a backend's autodiff: `layer_gradients`."""

from typing import Any

import keras
import numpy as np

from keras_embedlab import backend


def layer_gradients(
    layer: keras.layers.Layer,
    ids: Any,
    cotangent: Any,
    compiled: bool = False,
    **call_kwargs: Any,
) -> list[np.ndarray]:
    """Gradients of `sum(layer(ids) * cotangent)` for `layer.trainable_weights`.

    Keras has no backend-agnostic gradient function; the demo, the examples
    and the tests use this one. `call_kwargs` go to the call (`bag_weights=`,
    `reverse=True`). With `compiled=True` the gradient runs as `model.fit`
    runs it: `jax.jit` on JAX, `tf.function` on TensorFlow; PyTorch stays
    eager, as Keras runs it. Returns NumPy arrays, one per trainable weight.
    """
    return backend.layer_gradients(layer, ids, cotangent, compiled=compiled,
                                   **call_kwargs)
