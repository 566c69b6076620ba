"""Export a model with keras_embedlab layers and serve it without Python's
Keras: every format Keras's `model.export` has on this backend, run in the
format's own runtime, compared with `model.predict`, then sent an invalid
id.

    KERAS_BACKEND=tensorflow python examples/export_and_serve.py
    KERAS_BACKEND=jax python examples/export_and_serve.py --format onnx

In `invalid_ids="error"` mode the runtime refuses the batch (its own
gather does), or the export stops where the format has no way to refuse;
in `"zeros"` mode the invalid id's row is zeros, as in Keras.
"""

import argparse
import os
import sys
import tempfile

import keras
import numpy as np

import keras_embedlab as kel
from keras_embedlab.serving import EXTENSIONS, FORMATS, RUNTIMES


def build(mode):
    """ids -> LookupEmbedding -> average -> Dense, plus a tied output."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((4,), dtype="int32", name="ids")
    table = kel.LookupEmbedding(100, 8, invalid_ids=mode)
    hidden = keras.layers.Dense(8)(
        keras.layers.GlobalAveragePooling1D()(table(ids)))
    model = keras.Model(ids, table(hidden, reverse=True))  # tied logits
    model(np.zeros((1, 4), "int32"))
    return model


def serve(model, fmt, folder, x, bad):
    path = os.path.join(folder, f"{model.name}{EXTENSIONS[fmt]}")
    try:
        model.export(path, format=fmt, verbose=False)
    except ValueError as error:
        return f"export refused: {str(error).split(':')[0]}"
    run = kel.load_exported(path, fmt, ["ids"])
    difference = np.abs(run([x])[0] - model.predict(x, verbose=0)).max()
    try:
        out = run([bad])[0]
        invalid = ("zero row" if np.allclose(
            out, model.predict(bad, verbose=0), atol=1e-6) else "a row!")
    except Exception as error:  # Each runtime has its own error type.
        invalid = f"refused ({type(error).__name__})"
    return f"max |runtime - predict| = {difference:.1e}; id 100: {invalid}"


def main(argv=None):
    backend = keras.backend.backend()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=FORMATS,
                        action="append", help="default: all of them")
    args = parser.parse_args(argv)
    x = np.array([[3, 1, 4, 1]], "int32")
    bad = np.array([[3, 1, 4, 100]], "int32")  # input_dim is 100
    folder = tempfile.mkdtemp()
    print(f"backend: {backend}")
    for fmt in args.format or FORMATS:
        for mode in ("error", "zeros"):
            model = build(mode)
            model.name = f"model_{mode}"
            result = serve(model, fmt, folder, x, bad)
            print(f"{fmt:15s} ({RUNTIMES[fmt]}), invalid_ids={mode!r}: "
                  f"{result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
