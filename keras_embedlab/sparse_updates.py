"""Row-sparse training: updates that cost the batch, not the table."""

from keras_embedlab import _ids


def check_sparse(sparse, layer):
    _ids.check_bool("sparse", sparse)
    if not sparse:
        return
    for name in ("embeddings_regularizer", "embeddings_constraint"):
        if getattr(layer, name) is not None:
            raise ValueError(
                f"`sparse=True` updates only the rows in the batch, but "
                f"`{name}` acts on the whole table on every step. Received: "
                f"sparse=True with {name}={getattr(layer, name)!r} on layer "
                f"'{layer.name}'. Drop `{name}` or use sparse=False."
            )


def trace_rows(layer, ids, rows):
    return rows
