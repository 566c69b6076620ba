"""Pretrained word vectors (GloVe, word2vec, fastText) as NumPy arrays.

NumPy only: reading and writing vectors needs no Keras import. The public
names are `load_vectors`, `Vectors`, `FastTextVectors`, `VectorFileError`
and the limits `MAX_LINE_BYTES` and `MAX_TOKEN_BYTES`; they are defined in
the private submodules, one concern each:

- `_rules`: the limits, `VectorFileError`, and what a line, a field, a
  number and a token byte are, for every reader and the writer.
- `_source`: opening a file: regular files only, decompression detected by
  content (`Source`), the progress bar (`Progress`).
- `_detect`: the start of a file: BOM, blank lines, header, and which
  format it is, with what `dim`.
- `_numbers`: the vectorized decimal parser of text values.
- `_rows`: `Rows`, a chunk of tokens whose values are parsed on demand.
- `_text`: text files (GloVe, word2vec text) split into `TextRows`.
- `_binary`: word2vec binary records as `BinaryRows`.
- `_write`: writing files, after refusing what would not read back
  bit-exact.
- `_vectors`: the `Vectors` class.
- `_evaluate`: nearest neighbours in chunks of rows, word-pair
  correlations (with NumPy p-values) and analogies, as gensim computes
  them; `Vectors`' methods call it.
- `_projector`: `Vectors.to_projector`, TensorBoard projector files.
- `_plot`: `plot_embeddings`, a 2-D PCA of words and their neighbours
  (matplotlib imported on call).
- `_fasttext`: fastText `.bin` models: header, dictionary, where the
  input matrix is (`read_header`, a `ModelHeader`).
- `_subwords`: fastText's n-gram hashing and the averaged rows, for many
  words at once, read window by window from the file.
- `_fasttext_vectors`: the `FastTextVectors` class.
- `_collect`: collectors, what keeps the rows read (first of duplicates,
  in the vocabulary, finite): `Collector` in one growing matrix for
  `load_vectors`, `StreamingCollector` one chunk at a time for the int8
  loader.
- `_pipeline`: the one loading pipeline (`read_rows`): progress,
  detection, the stop rule, the readers, into a collector; and the
  argument checks every loader shares.
- `_load`: `load_vectors`: its arguments, then a fastText model or the
  pipeline into a `Collector`.
- `_quantized`: `load_int8`, the pipeline into a `StreamingCollector` whose
  rows are quantized to int8 and aligned to a vocabulary as they pass.

`align` (public, with `Coverage`; in `align.py`) aligns vectors to a
vocabulary, for `PretrainedEmbedding`.
"""

from keras_embedlab.vectors._evaluate import Correlation
from keras_embedlab.vectors._fasttext_vectors import FastTextVectors
from keras_embedlab.vectors._load import load_vectors
from keras_embedlab.vectors._plot import EmbeddingPlot, plot_embeddings
from keras_embedlab.vectors._rules import CHUNK_SIZE as CHUNK_SIZE
from keras_embedlab.vectors._rules import (
    MAX_LINE_BYTES,
    MAX_TOKEN_BYTES,
    VectorFileError,
)
from keras_embedlab.vectors._vectors import Vectors
from keras_embedlab.vectors._write import write_vectors as write_vectors
from keras_embedlab.vectors.align import Coverage, align

# `CHUNK_SIZE` (the read size) and `write_vectors` (the low-level writer)
# are importable here for the tests, but not public.
__all__ = [
    "Correlation",
    "Coverage",
    "EmbeddingPlot",
    "FastTextVectors",
    "MAX_LINE_BYTES",
    "MAX_TOKEN_BYTES",
    "Vectors",
    "VectorFileError",
    "align",
    "load_vectors",
    "plot_embeddings",
]

# Documented, and pickled, as `keras_embedlab.vectors.<name>`.
for _public in (VectorFileError, Vectors, FastTextVectors,
                load_vectors, Correlation, EmbeddingPlot, plot_embeddings):
    _public.__module__ = __name__
del _public
