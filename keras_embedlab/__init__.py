"""keras_embedlab: embedding layers for Keras 3, and their one-hot twins."""

from keras_embedlab.lookup_embedding import LookupEmbedding
from keras_embedlab.one_hot_dense import OneHotDense

__version__ = "0.1.0"

__all__ = ["LookupEmbedding", "OneHotDense"]
