"""`python -m keras_embedlab demo`: the embedding/Dense equivalence, shown."""

import keras
import numpy as np

from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.one_hot import OneHotDense
from keras_embedlab.testing import layer_gradients

WORKED_WEIGHTS = np.array(
    [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 0.0, 0.1, 0.2]],
    dtype="float32",
)
WORKED_IDS = np.array([0, 2, 1, 2], dtype="int32")



def demo() -> int:
    np.set_printoptions(precision=3, suppress=True)
    print(f"Keras {keras.__version__}, backend: {keras.backend.backend()}")
    print("(choose it with the KERAS_BACKEND environment variable)\n")

    print("1. An embedding lookup equals a Dense layer on one-hot input.")
    lookup = LookupEmbedding(3, 4, weights=WORKED_WEIGHTS)
    dense = OneHotDense.from_embedding(lookup)
    by_lookup = keras.ops.convert_to_numpy(lookup(WORKED_IDS))
    by_matmul = keras.ops.convert_to_numpy(dense(WORKED_IDS))
    print(f"weights =\n{WORKED_WEIGHTS}\nids = {WORKED_IDS.tolist()}")
    print(f"LookupEmbedding (ops.take):\n{by_lookup}")
    print(f"OneHotDense (one_hot @ kernel):\n{by_matmul}")
    equal = np.array_equal(by_lookup, by_matmul) and np.array_equal(
        by_lookup, WORKED_WEIGHTS[WORKED_IDS]
    )
    print(f"bit-for-bit equal to weights[ids]: {equal}\n")

    print("2. The gradient of a lookup touches only the rows in the batch.")
    table = LookupEmbedding(10, 4)
    ids = WORKED_IDS
    (grad,) = layer_gradients(
        table, ids, np.ones((len(ids), 4), "float32")
    )
    print(f"d sum(lookup(ids)) / d table, 10-row table, ids {ids.tolist()}:")
    print(grad)
    touched = np.flatnonzero(np.abs(grad).sum(axis=1)).tolist()
    print(f"non-zero rows: {touched} (row 2 is used twice, so its gradient "
          f"is {grad[2, 0] / grad[0, 0]:g}x a single use)\n")

    print("3. Parameters: 12 months + padding id 0 = 13 ids x 3 dims = 39.")
    model = keras.Sequential(
        [keras.Input((1000,), dtype="int32"), LookupEmbedding(13, 3)],
        name="months",
    )
    model.summary()
    return 0 if equal and touched == [0, 1, 2] else 1
