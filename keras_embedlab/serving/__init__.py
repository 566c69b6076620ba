"""Exported models in their formats' own runtimes: `load_exported`,
`run_exported`; `FORMATS`, the `model.export` formats that keras_embedlab
layers export to on the active backend (where Keras's own `Embedding`
does)."""

from keras_embedlab import backend
from keras_embedlab.serving.runtimes import (  # noqa: F401
    EXTENSIONS,
    RUNTIMES,
    load_exported,
    run_exported,
)

FORMATS = backend.EXPORT_FORMATS
