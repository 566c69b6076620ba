"""keras_embedlab: embedding layers for Keras 3, and their one-hot twins.

The package imports lazily (PEP 562): `import keras_embedlab.vectors` reads
and writes vector files with NumPy alone, without importing Keras or a
backend. The Keras-based names load on first use, and as soon as Keras is
imported, so that `keras.saving.load_model` finds our registered layers and
optimizers whichever of `keras` and `keras_embedlab` is imported first.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "FastTextVectors": "vectors",
    "LazyAdam": "sparse_updates",
    "LookupEmbedding": "lookup_embedding",
    "OneHotDense": "one_hot_dense",
    "PretrainedEmbedding": "pretrained_embedding",
    "RowSparseModel": "sparse_updates",
    "SparseAdagrad": "sparse_updates",
    "SparseSGD": "sparse_updates",
    "VectorFileError": "vectors",
    "Vectors": "vectors",
    "load_vectors": "vectors",
}
_SUBMODULES = ("distribution", "sparse_updates", "testing", "vectors")
# The modules whose import registers our classes with Keras.
_KERAS_MODULES = ("sparse_updates", "lookup_embedding", "one_hot_dense",
                  "pretrained_embedding", "distribution")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        _register_with_keras()
        return getattr(module, name)
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        _register_with_keras()
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__


def _register_with_keras():
    """Imports the modules that register Keras classes, once Keras is in.

    Not while one of ours is half imported (it imported Keras, which woke
    `_AfterKerasImport`): `__getattr__` calls again once it is complete.
    """
    if "keras" not in sys.modules:
        return
    for name, module in list(sys.modules.items()):
        if name.startswith(f"{__name__}.") and getattr(
                getattr(module, "__spec__", None), "_initializing", False):
            return
    for module in _KERAS_MODULES:
        importlib.import_module(f"{__name__}.{module}")


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers our Keras classes right after `keras` itself is imported.

    Without it, `import keras_embedlab` followed by `import keras` and
    `keras.saving.load_model(...)` would not find `LookupEmbedding`: Keras
    only knows classes whose module has run. The finder acts once, on the
    top-level `keras` import, and then removes itself.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_with_keras()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_with_keras()
else:
    sys.meta_path.insert(0, _AfterKerasImport())
