"""keras_embedlab: embedding layers for Keras 3, and their one-hot twins.

The package imports lazily (PEP 562): `import keras_embedlab.vectors` reads
and writes vector files with NumPy alone, without importing Keras or a
backend. The Keras-based names load on first use, and as soon as Keras is
imported, so that `keras.saving.load_model` finds our registered layers and
optimizers whichever of `keras`, `keras_embedlab` and its submodules is
imported first.
"""

import importlib
import importlib.abc
import sys
import warnings

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "DynamicEmbedding": "layers.dynamic",
    "FastTextVectors": "vectors",
    "HashedEmbedding": "layers.hashed",
    "LazyAdam": "sparse_updates",
    "LookupEmbedding": "layers.lookup",
    "OneHotDense": "layers.one_hot",
    "PretrainedEmbedding": "layers.pretrained.layer",
    "QREmbedding": "layers.qr",
    "RowSparseModel": "sparse_updates",
    "SampledSoftmaxLoss": "sampled_softmax",
    "SparseAdagrad": "sparse_updates",
    "SparseSGD": "sparse_updates",
    "VectorFileError": "vectors",
    "from_keras": "convert.models",
    "hash_ids": "hashing.ids",
    "hash_strings": "hashing.strings",
    "load_converted_weights": "convert.models",
    "load_exported": "serving",
    "load_vectors": "vectors",
    "log_uniform_candidate_sampler": "sampled_softmax",
    "plot_embeddings": "vectors",
    "run_exported": "serving",
    "sampled_softmax_loss": "sampled_softmax",
    "split_ids": "hashing.ids",
    "to_keras": "convert.models",
    "Vectors": "vectors",
    "Word2Vec": "word2vec",
}
_SUBMODULES = ("distribution", "sparse_updates", "testing", "vectors")
# The modules whose import registers our classes with Keras.
_KERAS_MODULES = ("sparse_updates", "layers.lookup", "layers.one_hot",
                  "layers.pretrained.layer", "layers.hashed", "layers.qr",
                  "layers.dynamic", "distribution", "sampled_softmax")

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


_registered = False


def _register_with_keras(finished=None):
    """Imports the modules that register Keras classes, once Keras is in.

    Not while one of ours is still being imported (it imported Keras, or
    Keras woke `_RegisterAfterImport` inside it): its half-run module
    cannot be imported again. `_RegisterAfterImport` calls again as each of
    our modules completes; `finished` names the module that just completed
    (the import system still marks it as initializing).
    """
    global _registered
    if _registered or "keras" not in sys.modules:
        return
    for name, module in list(sys.modules.items()):
        if (name.startswith(f"{__name__}.") and name != finished
                and getattr(getattr(module, "__spec__", None),
                            "_initializing", False)):
            return
    _registered = True
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    try:
        for module in _KERAS_MODULES:
            importlib.import_module(f"{__name__}.{module}")
    except ImportError as error:
        # Registration runs inside the user's own import (of `keras`, or of
        # a NumPy-only part such as `keras_embedlab.vectors`): that import
        # must not fail for it. Using a layer raises the same error.
        warnings.warn(f"keras_embedlab's Keras classes are not registered: "
                      f"{error}", stacklevel=2)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Registers our Keras classes when the import that brought Keras in ends.

    Keras only knows the classes whose module has run. Keras can come in
    before us (`import keras` first: the package registers at once), after
    us (`import keras_embedlab` then `import keras`), or in the middle of
    one of our submodules (`import keras_embedlab.distribution`, whose
    first lines import Keras). The finder wraps the loading of `keras` and
    of every `keras_embedlab.*` module, and calls `_register_with_keras`
    after each completes, which acts at the first moment Keras is in and
    none of ours is half imported. It leaves `sys.meta_path` once that is
    done.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras" and not name.startswith(f"{__name__}."):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module):
            # A loader may serve several modules (a zip importer): only the
            # one found here registers, and the loader gets its method back.
            if module.__name__ != name:
                return exec_module(module)
            vars(loader).pop("exec_module", None)
            exec_module(module)
            _register_with_keras(finished=name)

        try:
            loader.exec_module = exec_then_register
        except AttributeError:  # A loader without `__dict__`: left alone.
            pass
        return spec


_FINDER = _RegisterAfterImport()
sys.meta_path.insert(0, _FINDER)
_register_with_keras()
