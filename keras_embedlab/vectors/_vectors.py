"""The `Vectors` class: words and their float32 matrix, and `save`."""

import os
from collections.abc import Sequence

import numpy as np

from keras_embedlab.utils.argument_checks import check_choice
from keras_embedlab.vectors import _evaluate
from keras_embedlab.vectors._evaluate import Correlation
from keras_embedlab.vectors._projector import to_projector
from keras_embedlab.vectors._write import write_file

SAVE_FORMATS = ("word2vec-text", "word2vec-binary", "glove")


class Vectors:
    """Words and their vectors: row `i` of `matrix` is the vector of `words[i]`.

    Args:
        words: Sequence of unique strings.
        matrix: Array-like of real numbers, shape `(len(words), dim)`, stored
            as float32.

    Attributes:
        words: `list[str]`, in file order for loaded vectors.
        matrix: float32 `np.ndarray` of shape `(len(words), dim)`.
        dim: Length of each vector.

    `len(vectors)`, `word in vectors` and `vectors[word]` (the word's vector,
    shape `(dim,)`; `KeyError` for a missing word) work as for a dict.

    Neighbours and evaluation as gensim's `KeyedVectors` has them:
    `most_similar`, `most_similar_cosmul`, `similarity`,
    `evaluate_word_pairs`, `evaluate_word_analogies`; `to_projector` writes
    TensorBoard projector files. A Keras layer's table is evaluated the
    same way: `Vectors(vocabulary,
    keras.ops.convert_to_numpy(layer.embeddings))`.

    Example:

    >>> vectors = Vectors(["king", "queen"], [[1.0, 0.0], [0.9, 0.1]])
    >>> vectors["queen"]
    array([0.9, 0.1], dtype=float32)
    >>> vectors.save("tiny.vec")  # word2vec text, readable by gensim
    """

    def __init__(self, words: Sequence[str], matrix: np.ndarray) -> None:
        if isinstance(words, (str, bytes)):
            raise ValueError(
                "`words` must be a sequence of strings, not a single string. "
                f"Received: words={words!r}."
            )
        words = list(words)
        index = {}
        for i, word in enumerate(words):
            if not isinstance(word, str):
                raise ValueError(
                    "`words` must contain only strings. Received: "
                    f"words[{i}]={word!r} (of type {type(word).__name__})."
                )
            if word in index:
                raise ValueError(
                    f"`words` must be unique. Received: {word!r} at "
                    f"positions {index[word]} and {i}."
                )
            index[word] = i
        words = [str(word) for word in words]  # e.g. np.str_ to str
        array = np.asarray(matrix)
        if array.dtype.kind not in "fiu" or array.ndim != 2:
            raise ValueError(
                "`matrix` must be a 2-D array of real numbers. Received: "
                f"matrix with shape {array.shape} and dtype {array.dtype}."
            )
        if array.shape[0] != len(words) or array.shape[1] < 1:
            raise ValueError(
                "`matrix` must have shape (len(words), dim) with dim >= 1. "
                f"Received: matrix.shape={array.shape} for {len(words)} words."
            )
        with np.errstate(over="ignore"):
            array = np.ascontiguousarray(array, dtype=np.float32)
        self._set(words, array, index)

    def _set(self, words, matrix, index):
        self._words = words
        self._matrix = matrix
        self._index = index

    @classmethod
    def _trusted(cls, words, matrix, index):
        vectors = cls.__new__(cls)
        vectors._set(words, matrix, index)
        return vectors

    @property
    def words(self) -> list[str]:
        return self._words

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix

    @property
    def dim(self) -> int:
        return self._matrix.shape[1]

    def __len__(self):
        return len(self._words)

    def __contains__(self, word):
        try:
            return word in self._index
        except TypeError:  # unhashable
            return False

    def index(self, word: str) -> int:
        """The row of `word` in `matrix`; `KeyError` if it is missing."""
        try:
            return self._index[word]
        except (KeyError, TypeError):
            raise KeyError(
                f"{word!r} is not among these {len(self)} words."
            ) from None

    def __getitem__(self, word: str) -> np.ndarray:
        return self._matrix[self.index(word)]

    def __repr__(self):
        return f"<Vectors: {len(self):,} words, dim={self.dim}>"

    def save(self, path: str | os.PathLike,
             format: str = "word2vec-text") -> None:
        """Writes the vectors to `path` (UTF-8 tokens); `load_vectors` reads
        them back bit-exact.

        Args:
            path: File path. A name ending in `.gz`, `.bz2` or `.xz` is
                compressed accordingly.
            format: `"word2vec-text"` (a `count dim` header line, then
                `token v1 ... vdim` lines, as fastText `.vec` files),
                `"word2vec-binary"` (header, then token, space, `dim`
                little-endian float32 values and a newline, as the
                word2vec C tool writes) or `"glove"` (text without header).
                Text values are written with 9 significant digits, which
                round-trip every float32. gensim's
                `KeyedVectors.load_word2vec_format` reads both word2vec
                formats.

        What cannot be read back bit-exact raises `ValueError` naming the
        word, before the file is opened. Tokens must be non-empty, at most
        10,000 bytes long in UTF-8 (`MAX_TOKEN_BYTES`), must not contain
        line breaks (`\\n`, `\\r`) and must not start or end with a space
        or tab. Text tokens may contain spaces and tabs but not end in a
        space-separated number (a reader could not tell it from a value);
        binary tokens may not contain spaces or control characters. Text
        holds NaN only as `nan` and `-nan`: a NaN with another payload needs
        `"word2vec-binary"`. Loading NaN or infinite values back needs
        `load_vectors(..., nonfinite="keep")`. A GloVe file whose first row
        is an integer token with one integer value reads as a word2vec
        header; load it with `format="glove"`.
        """
        check_choice("format", format, SAVE_FORMATS)
        if format == "glove" and not len(self):
            raise ValueError(
                "Cannot save 0 vectors with format='glove': an empty file "
                "cannot be read back. Use format='word2vec-text'."
            )
        write_file(path, self._words, self._matrix, format)

    # --- Neighbours and evaluation, as gensim's `KeyedVectors` ------------

    def similarity(self, first: str, second: str) -> float:
        """The cosine similarity of two words' vectors."""
        return _evaluate.similarity(self, first, second)

    def most_similar(self, positive=None, negative=None, topn: int | None = 10,
                     restrict_vocab: int | None = None):
        """The `topn` words nearest to the mean of `positive` minus
        `negative` (3CosAdd), as gensim's `KeyedVectors.most_similar`.

        Args:
            positive: A word, a vector of shape `(dim,)`, or a list of
                words, vectors and `(word or vector, weight)` pairs.
            negative: The same, subtracted (default weight -1).
            topn: Number of `(word, cosine similarity)` pairs returned,
                best first; the query words themselves are left out. `None`
                returns the similarity of every searched row (an array).
            restrict_vocab: Search only the first `restrict_vocab` rows
                (the most frequent words in a frequency-sorted file).

        Each word's vector is scaled to unit length before the weighted
        mean; rows are scored a chunk at a time, so a table of millions of
        rows needs no matrix of that size beyond itself. A row of zeros has
        no direction: its similarity is NaN and it comes last. `KeyError`
        for a word not among these vectors.

        Example:

        >>> vectors.most_similar(positive=["queen", "man"],
        ...                      negative=["woman"], topn=1)
        [('king', 0.87...)]
        """
        return _evaluate.most_similar(self, positive, negative, topn,
                                      restrict_vocab, cosmul=False)

    def most_similar_cosmul(self, positive=None, negative=None,
                            topn: int | None = 10,
                            restrict_vocab: int | None = None):
        """As `most_similar`, with Levy and Goldberg's 3CosMul objective,
        as gensim's `KeyedVectors.most_similar_cosmul`: each row's score is
        the product of `(1 + cos) / 2` with every positive term, divided by
        the same product over the negative terms plus 1e-6. Unlike gensim
        (which searches all rows), `restrict_vocab` is honoured."""
        return _evaluate.most_similar(self, positive, negative, topn,
                                      restrict_vocab, cosmul=True)

    def evaluate_word_pairs(
            self, path: str | os.PathLike, delimiter: str = "\t",
            encoding: str = "utf8", restrict_vocab: int | None = 300000,
            case_insensitive: bool = True, dummy4unknown: bool = False,
    ) -> tuple[Correlation, Correlation, float]:
        """How well cosine similarities follow human judgements, as gensim's
        `KeyedVectors.evaluate_word_pairs`.

        Args:
            path: A text file of `word1<delimiter>word2<delimiter>score`
                lines (e.g. WordSim-353); lines starting with `#` are
                comments.
            delimiter: The field separator.
            encoding: The file's text encoding.
            restrict_vocab: Only the first `restrict_vocab` words count as
                known (None: all).
            case_insensitive: Compare words upper-cased; of several case
                variants of a word, the first in the table is used.
            dummy4unknown: A pair with an unknown word counts with
                similarity 0 instead of being left out.

        Returns:
            `(pearson, spearman, oov_ratio)`: each correlation a
            `Correlation(statistic, pvalue)` (two-sided p-value, equal to
            SciPy's; NumPy only), and the percentage of pairs with an
            unknown word.

        Other malformed lines are skipped, as gensim does, with a warning
        naming them.
        """
        return _evaluate.evaluate_word_pairs(
            self, path, delimiter, encoding, restrict_vocab,
            case_insensitive, dummy4unknown)

    def evaluate_word_analogies(
            self, path: str | os.PathLike,
            restrict_vocab: int | None = 300000,
            case_insensitive: bool = True, dummy4unknown: bool = False,
            similarity_function: str = "most_similar",
    ) -> tuple[float, list[dict]]:
        """Accuracy on analogy questions ("a is to b as c is to ?"), as
        gensim's `KeyedVectors.evaluate_word_analogies`.

        Args:
            path: A text file of `: section name` lines, each followed by
                lines of 4 words `a b c expected` (e.g. Mikolov's
                `questions-words.txt`).
            restrict_vocab: Only the first `restrict_vocab` words are known
                and searched (in a frequency-sorted table, the most
                frequent ones). None: all.
            case_insensitive: Compare words upper-cased; of several case
                variants of a word, the first in the table is used.
            dummy4unknown: A question with an unknown word counts as wrong
                instead of being left out.
            similarity_function: `"most_similar"` (3CosAdd: the row nearest
                to `b - a + c`) or `"most_similar_cosmul"` (3CosMul).

        Returns:
            `(score, sections)`: the accuracy over all answered questions,
            and one dict per section, `{"section": name, "correct": [...],
            "incorrect": [...]}` (lists of the questions' 4-word tuples,
            upper-cased if `case_insensitive`), the last one named
            `"Total accuracy"`.

        A question is answered right when the first of the 5 best rows,
        leaving out the rows of `a`, `b` and `c` and any case variant of
        them, is `expected`. gensim 4.4 ignores `similarity_function`
        (always 3CosAdd); here it is honoured.
        """
        return _evaluate.evaluate_word_analogies(
            self, path, restrict_vocab, case_insensitive, dummy4unknown,
            similarity_function)

    def to_projector(self, folder: str | os.PathLike, metadata=None,
                     tensor_name: str = "embedding") -> str:
        """Writes files that TensorBoard's embedding projector loads:
        `tensors.tsv` (one tab-separated row per word, 9 significant
        digits: float32 exact), `metadata.tsv` and `projector_config.pbtxt`
        (paths relative to `folder`). Then run `tensorboard --logdir
        folder` and open the Projector tab.

        Args:
            folder: The directory (created if needed); nothing is written
                outside it, and a link planted in it is not followed.
            metadata: `None` (the words, one column, no header line), a
                sequence of one label per word, or a dict of column name to
                such a sequence (several columns get a header line). Tabs
                and line breaks in labels are written as `\\t`, `\\n`,
                `\\r`.
            tensor_name: The name the projector shows.

        Returns:
            The path of `projector_config.pbtxt`.

        Rows holding NaN or infinite values raise `ValueError` naming the
        word (the projector could not place them).
        """
        return to_projector(self, folder, metadata, tensor_name)
