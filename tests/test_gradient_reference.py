"""Gradients against an independent reference, not twin against twin.

Both layers share the row math (`ids/reader.py`), so their agreement alone
would not catch a wrong derivative of `max_norm` or of a combiner. Here the
reference is NumPy in float64: the forward pass written out directly, and
its gradient by central finite differences.
"""

import numpy as np
import pytest
from helpers import LAYERS

from keras_embedlab.testing import layer_gradients

V, D = 6, 3


def _forward(table, ids, cotangent, max_norm, norm_type, combiner, weights):
    rows = table[ids]
    if max_norm is not None:
        norms = np.sum(np.abs(rows) ** norm_type, axis=-1) ** (1 / norm_type)
        scale = np.where(norms > max_norm, max_norm / np.maximum(norms, 1e-30),
                         1.0)
        rows = rows * scale[..., None]
    if combiner is not None:
        total = np.sum(weights[..., None] * rows, axis=-2)
        if combiner == "mean":
            total = total / np.sum(weights, axis=-1, keepdims=True)
        elif combiner == "sqrtn":
            total = total / np.sqrt(np.sum(weights**2, axis=-1,
                                           keepdims=True))
        rows = total
    return np.sum(rows * cotangent)


def _numeric_gradient(f, table, step=1e-6):
    grad = np.zeros_like(table)
    for index in np.ndindex(table.shape):
        up, down = table.copy(), table.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (f(up) - f(down)) / (2 * step)
    return grad


CASES = [
    pytest.param(1.0, 1.0, None, id="max_norm-p1"),
    pytest.param(0.8, 3.0, None, id="max_norm-p3"),
    pytest.param(0.9, 0.5, None, id="max_norm-p0.5"),
    pytest.param(None, 2.0, "sum", id="sum"),
    pytest.param(None, 2.0, "mean", id="mean"),
    pytest.param(None, 2.0, "sqrtn", id="sqrtn"),
    pytest.param(1.0, 1.5, "mean", id="mean-max_norm-p1.5"),
    pytest.param(0.7, 2.0, "sqrtn", id="sqrtn-max_norm-p2"),
]


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("max_norm,norm_type,combiner", CASES)
def test_gradient_matches_finite_differences(layer_cls, max_norm, norm_type,
                                             combiner):
    rng = np.random.default_rng(7)
    table = rng.normal(size=(V, D))
    ids = np.array([[1, 4, 4], [0, 2, 5]], "int32")
    weights = rng.uniform(0.5, 2.0, size=ids.shape)
    out_shape = ids.shape[:-1] + (D,) if combiner else ids.shape + (D,)
    cotangent = rng.normal(size=out_shape)
    kwargs = {"bag_weights": weights.astype("float32")} if combiner else {}
    layer = layer_cls(V, D, weights=[table.astype("float32")],
                      max_norm=max_norm, norm_type=norm_type,
                      combiner=combiner)
    (got,) = layer_gradients(layer, ids, cotangent.astype("float32"),
                             **kwargs)

    def loss(t):
        return _forward(t, ids, cotangent, max_norm, norm_type, combiner,
                        weights)

    expected = _numeric_gradient(loss, table)
    # The rows are really clipped in these cases (the scale is exercised).
    if max_norm is not None:
        norms = np.sum(np.abs(table[ids]) ** norm_type, -1) ** (1 / norm_type)
        assert (norms > max_norm).any()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, 0)
