"""Command line: `python -m keras_embedlab demo` and `... bench`."""

import argparse
import importlib.util
import json
import os
import sys

import numpy as np

from keras_embedlab import __version__, _bench_args

# Keras (and so TensorFlow) is imported only after the flags are parsed:
# `--help`, `--version` and a bad flag answer at once.

WORKED_WEIGHTS = np.array(
    [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 0.0, 0.1, 0.2]],
    dtype="float32",
)
WORKED_IDS = np.array([0, 2, 1, 2], dtype="int32")


# Keras's backends, by the name of the module each needs.
_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax",
                    "torch": "torch", "numpy": "numpy",
                    "openvino": "openvino"}
# What to use, in this order, when Keras's backend is not installed.
_FALLBACK_BACKENDS = ("jax", "torch")


def _configured_backend() -> tuple[str, str]:
    """The backend Keras will use when `KERAS_BACKEND` is unset, and why:
    its `keras.json` (where Keras keeps it), else its default."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp",
                            ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path) as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    if isinstance(backend, str) and backend:
        return backend, f"set in {path}"
    return "tensorflow", "Keras's default"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def choose_backend() -> str | None:
    """Sets `KERAS_BACKEND` to an installed backend when the one Keras would
    use is not installed (a JAX-only install: Keras defaults to TensorFlow),
    and says so. Returns the backend it chose, or None when Keras's own
    choice stands. Must run before Keras is imported."""
    if os.environ.get("KERAS_BACKEND") or "keras" in sys.modules:
        return None
    backend, reason = _configured_backend()
    if _installed(_BACKEND_MODULES.get(backend, backend)):
        return None
    for candidate in _FALLBACK_BACKENDS:
        if _installed(candidate):
            os.environ["KERAS_BACKEND"] = candidate
            print(f"KERAS_BACKEND is not set and Keras's backend "
                  f"{backend!r} ({reason}) is not installed: using "
                  f"{candidate}. Set KERAS_BACKEND=tensorflow, jax or torch "
                  "to choose.\n", flush=True)
            return candidate
    sys.exit(f"Keras needs a backend and none is installed (KERAS_BACKEND "
             f"is not set; Keras's backend is {backend!r}, {reason}). "
             "Install one with the package's extras: pip install "
             "'keras_embedlab[jax]' (or [tensorflow] or [torch]).")


def demo() -> int:
    import keras

    from keras_embedlab import LookupEmbedding, OneHotDense
    from keras_embedlab.testing import layer_gradients

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_embedlab")
    parser.add_argument("--version", action="version",
                        version=f"keras_embedlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the embedding/Dense equivalence")
    bench_parser = commands.add_parser(
        "bench", help="time lookup against one-hot matmul on this backend"
    )
    _bench_args.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    choose_backend()
    if args.command == "bench":
        settings = _bench_args.resolve(args)
        from keras_embedlab import bench

        bench.run(**settings)
        return 0
    return demo()


if __name__ == "__main__":
    sys.exit(main())
