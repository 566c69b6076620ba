"""Training word vectors with our tables: `Word2Vec` (skip-gram and CBOW
with negative sampling, gensim's arguments and procedure).

`_corpus` is the NumPy side (corpus, vocabulary, subsampling, negative
table, windows, learning rate); `_model` the tables and compiled step.
"""

from keras_embedlab.word2vec._model import Word2Vec

__all__ = ["Word2Vec"]
