"""Command line: `python -m keras_embedlab demo` and `... bench`."""

import argparse
import importlib.util
import json
import os
import sys

from keras_embedlab import __version__
from keras_embedlab.cli import flags

# Keras (and so TensorFlow) is imported only after the flags are parsed:
# `--help`, `--version` and a bad flag answer at once.

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_embedlab")
    parser.add_argument("--version", action="version",
                        version=f"keras_embedlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the embedding/Dense equivalence")
    bench_parser = commands.add_parser(
        "bench", help="time lookup against one-hot matmul on this backend"
    )
    flags.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    choose_backend()
    if args.command == "bench":
        settings = flags.resolve(args)
        from keras_embedlab.cli import bench

        bench.run(**settings)
        return 0
    from keras_embedlab.cli.demo import demo

    return demo()


if __name__ == "__main__":
    sys.exit(main())
