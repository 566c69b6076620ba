"""Exported models in their formats' own runtimes: `run_exported`."""

from keras_embedlab.serving.runtimes import (  # noqa: F401
    EXTENSIONS,
    RUNTIMES,
    run_exported,
)
