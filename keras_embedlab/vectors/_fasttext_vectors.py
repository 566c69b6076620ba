"""`FastTextVectors`: a fastText model's vectors, for any word."""

import os
import threading
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from keras_embedlab.vectors._rules import VectorFileError
from keras_embedlab.vectors._subwords import average_rows, rows_of
from keras_embedlab.vectors._vectors import Vectors
from keras_embedlab.vectors.align import token_list


class FastTextVectors:
    """The word vectors of a fastText `.bin` model, for words in or out of
    its dictionary, as fastText's `get_word_vector` computes them.

    Made by `load_vectors("model.bin")`. A word's vector is the average of
    its own row (for a word of the model) and the rows of its character
    n-grams (`minn` to `maxn` characters of `"<" + word + ">"`, hashed into
    `bucket` rows), so a word the model never saw gets a vector from its
    pieces. Only the dictionary is held in memory: rows are read from the
    file when asked for (the file must stay in place for that), except the
    vectors of the `vocabulary` given to `load_vectors`, computed once at
    load.

    Attributes:
        words: The model's words (`list[str]`, most frequent first; labels
            of supervised models are left out).
        dim: Length of each vector.
        minn, maxn, bucket: The model's n-gram sizes and bucket count.
        path: The model file.

    `len(vectors)` and `word in vectors` are about the model's words;
    `vectors[word]` is the vector of any word with a row or an n-gram
    (`KeyError` for one without, e.g. `""` when `minn > 2`, or any word
    that is not in the dictionary of a model with `maxn=0`, as supervised
    models have).

    A word the dictionary holds twice is used as fastText uses it: the
    last copy (its row) wins, and `words` lists the word once, where that
    copy is. With `load_vectors(..., nonfinite="skip")`, a token whose
    vector (its own row averaged with its n-grams' rows) holds a NaN or an
    infinite value has no vector: `lookup` marks it not found and
    `vectors[token]` raises `KeyError`; a word of the model stays one
    (`in`, `words`), and is not given its n-grams' vector instead (a vector
    fastText would not give it). `align` and `PretrainedEmbedding`
    count such a token as missing.

    Lookups may run from several threads at once.

    Example:

    >>> vectors = load_vectors("cc.en.300.bin")
    >>> "unfathomably" in vectors, vectors["unfathomably"].shape
    (False, (300,))
    >>> matrix, whole_word, found = vectors.lookup(["cat", "catz"])
    """

    def __init__(self, model, nonfinite="error"):
        self._model = model
        # Word to entry (row), the last copy of a repeated word winning, as
        # in fastText's dictionary; `words` holds each word once, there.
        self._index = {word: i for i, word in enumerate(model.words)}
        self._words = [word for i, word in enumerate(model.words[:model.nwords])
                       if self._index[word] == i]
        self._position = {word: i for i, word in enumerate(self._words)}
        self._nonfinite = nonfinite
        # Token to its row in `_cached` (-1: no vector); `_cached` only
        # grows, each time as a new array, under `_lock`.
        self._cache = {}
        self._cached = np.zeros((0, model.dim), np.float32)
        self._skipped = set()  # no vector: not finite, nonfinite="skip"
        self._lock = threading.Lock()
        self._matrix = None

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def words(self) -> list[str]:
        return self._words

    @property
    def dim(self) -> int:
        return self._model.dim

    @property
    def minn(self) -> int:
        return self._model.minn

    @property
    def maxn(self) -> int:
        return self._model.maxn

    @property
    def bucket(self) -> int:
        return self._model.bucket

    @property
    def path(self) -> str:
        return self._model.path

    @property
    def matrix(self) -> np.ndarray:
        """The vectors of `words` (row `i` for `words[i]`), computed on
        first use: this reads the whole matrix of the file. A word without
        a vector (`nonfinite="skip"`) has a row of zeros."""
        if self._matrix is None:
            self._matrix = self.lookup(self._words)[0]
        return self._matrix

    def __len__(self):
        return len(self._words)

    def __contains__(self, word):
        try:
            return word in self._position
        except TypeError:  # unhashable
            return False

    def index(self, word: str) -> int:
        """The position of `word` in `words`; `KeyError` if it is not one."""
        if word not in self:
            raise KeyError(f"{word!r} is not among the model's "
                           f"{len(self):,} words.")
        return self._position[word]

    def __getitem__(self, word: str) -> np.ndarray:
        matrix, _, found = self.lookup([word])
        if found[0]:
            return matrix[0]
        if word in self._skipped:
            raise KeyError(
                f"{word!r} has no vector: its vector has a NaN or infinite "
                "value, left out by nonfinite='skip'."
            )
        if self.maxn == 0 or self.bucket == 0:
            raise KeyError(
                f"{word!r} has no vector: it is not a word of the model, "
                "and the model has no n-grams (maxn=0 or bucket=0) to make "
                "one from."
            )
        raise KeyError(
            f"{word!r} has no vector: it is not a word of the model and "
            f"has no n-gram of {self.minn} to {self.maxn} characters."
        )

    def __repr__(self):
        return (f"<FastTextVectors: {len(self):,} words, dim={self.dim}, "
                f"n-grams {self.minn}-{self.maxn} in {self.bucket:,} "
                "buckets>")

    def lookup(self, tokens: Sequence[str]):
        """`(matrix, whole_word, found)` for a list of tokens.

        Row `i` of `matrix` (float32, `(len(tokens), dim)`) is the vector
        of `tokens[i]`, or zeros when `found[i]` is False (no row and no
        n-gram). `whole_word[i]` says whether `tokens[i]` is a word of the
        model (its vector then includes its own row). All tokens are
        computed together, reading each needed row of the file once.
        """
        if not isinstance(tokens, (list, tuple, str)):
            tokens = list(tokens)
        tokens = token_list(tokens, "`tokens`")
        with self._lock:
            missing = [t for t in dict.fromkeys(tokens)
                       if t not in self._cache]
        if missing:
            self._compute(missing)
        with self._lock:  # Positions and the array they index, together.
            at = np.array([self._cache[t] for t in tokens], np.int64)
            cached = self._cached
        found = at >= 0
        matrix = np.zeros((len(tokens), self.dim), np.float32)
        matrix[found] = cached[at[found]]
        whole = np.array([t in self for t in tokens], bool)
        return matrix, whole, found

    def _compute(self, tokens):
        """Computes the vectors of `tokens` (outside the lock: it reads
        the file), then adds those no other thread added meanwhile."""
        owner, rows, _ = rows_of(self._model, tokens, self._index)
        matrix, counts = average_rows(self._model, owner, rows, len(tokens))
        found = counts > 0
        bad = np.zeros_like(found)
        if self._nonfinite != "keep":
            bad = found & ~np.isfinite(matrix).all(axis=1)
            if bad.any() and self._nonfinite == "error":
                token = tokens[int(np.argmax(bad))]
                raise VectorFileError(
                    f"{self._model.name}: the vector of {token!r} has a NaN "
                    "or infinite value (from the model's input matrix); "
                    "pass nonfinite='skip' to leave such words out, or "
                    "'keep'."
                )
            found &= ~bad
        with self._lock:
            new = [i for i, t in enumerate(tokens) if t not in self._cache]
            keep = [i for i in new if found[i]]
            start = len(self._cached)
            if keep:
                self._cached = np.concatenate([self._cached, matrix[keep]])
            rows_found = iter(range(start, start + len(keep)))
            for i in new:
                self._cache[tokens[i]] = next(rows_found) if found[i] else -1
            skipped = [tokens[i] for i in new if bad[i]]
            self._skipped.update(skipped)
        if skipped:
            warnings.warn(
                f"{self._model.name}: {len(skipped)} token(s) have a NaN or "
                "infinite value in their vector (from the model's input "
                "matrix) and get no vector (nonfinite='skip'); the first is "
                f"{skipped[0]!r}.",
                UserWarning,
                stacklevel=3,
            )

    def save(self, path: str | os.PathLike,
             format: str = "word2vec-text") -> None:
        """Writes the vectors of `words` as a `Vectors` file (see
        `Vectors.save`); n-grams are not kept, nor words without a vector
        (`nonfinite="skip"`)."""
        matrix, _, found = self.lookup(self._words)
        words = [w for w, ok in zip(self._words, found.tolist()) if ok]
        Vectors(words, matrix[found]).save(path, format=format)


def load_fasttext(header, vocabulary: Iterable[str] | None, nonfinite):
    """The `FastTextVectors` of the model `header` (a `ModelHeader`) tells
    of, the vocabulary's computed."""
    vectors = FastTextVectors(header, nonfinite)
    if vocabulary is not None:
        vectors.lookup(list(vocabulary))
    return vectors
