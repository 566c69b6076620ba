"""keras_embedlab: embedding layers for Keras 3, and their one-hot twins."""

from keras_embedlab import distribution, sparse_updates
from keras_embedlab.lookup_embedding import LookupEmbedding
from keras_embedlab.one_hot_dense import OneHotDense
from keras_embedlab.pretrained_embedding import PretrainedEmbedding
from keras_embedlab.sparse_updates import (
    LazyAdam,
    RowSparseModel,
    SparseAdagrad,
    SparseSGD,
)
from keras_embedlab.vectors import VectorFileError, Vectors, load_vectors

__version__ = "0.1.0"

__all__ = [
    "LazyAdam",
    "LookupEmbedding",
    "OneHotDense",
    "PretrainedEmbedding",
    "RowSparseModel",
    "SparseAdagrad",
    "SparseSGD",
    "VectorFileError",
    "Vectors",
    "distribution",
    "load_vectors",
    "sparse_updates",
]
