"""Exported models in their formats' own runtimes: `load_exported`,
`run_exported`."""

from keras_embedlab.serving.runtimes import (  # noqa: F401
    EXTENSIONS,
    RUNTIMES,
    load_exported,
    run_exported,
)
