"""Collectors: what keeps the rows that `_pipeline.read_rows` reads.

`Collector` keeps the rows `load_vectors` returns, in one growing matrix;
`StreamingCollector` keeps one chunk at a time and hands its rows on (the
int8 loader quantizes them). Both apply the same rules: first of
duplicates, in the vocabulary, finite unless `nonfinite="keep"`, values
parsed for the rows kept only.
"""

import warnings

import numpy as np

from keras_embedlab.vectors._vectors import Vectors


class Collector:
    """Keeps the rows to return: first of duplicates, in the vocabulary,
    finite unless `nonfinite="keep"`; parses values for those rows only.

    Values go straight into one float32 matrix that grows in place
    (`ndarray.resize`, a `realloc`: large blocks move without copying), so
    peak memory is about the result, not twice it.

    The pipeline calls `start(dim, capacity)` once it knows `dim`, then
    `add(rows)` for each chunk; the loader then calls `result()`.
    """

    def __init__(self, name, vocabulary, encoding, errors, nonfinite):
        self.name = name
        self.vocabulary = vocabulary
        self.encoding, self.errors = encoding, errors
        self.nonfinite = nonfinite
        self.words, self.index = [], {}
        self.rows = self.duplicates = 0
        self.first_duplicate = None
        self.left_out = []  # words whose rows are not finite ("skip")
        self.first_left_out = None
        self.dim = self.matrix = None

    def start(self, dim, capacity):
        """Allocates `capacity` rows of `dim` values (fewer with a
        vocabulary: no more than it has tokens)."""
        self.dim = dim
        if self.vocabulary is not None:
            capacity = min(capacity, len(self.vocabulary))
        self.matrix = np.empty((capacity, dim), np.float32)

    def _reserve(self, rows):
        if rows > len(self.matrix):
            capacity = max(rows, 2 * len(self.matrix))
            self.matrix.resize((capacity, self.dim), refcheck=False)

    def add(self, rows):
        """Adds a chunk of rows."""
        keep = []
        index, words, vocabulary = self.index, self.words, self.vocabulary
        start = len(words)
        for i, word in enumerate(rows.decode(self.encoding, self.errors)):
            if word in index:
                self.duplicates += 1
                if self.first_duplicate is None:
                    self.first_duplicate = (word, rows.where(i))
            elif vocabulary is None or word in vocabulary:
                index[word] = len(words)
                words.append(word)
                keep.append(i)
        if not keep:
            return
        select = np.array(keep, np.intp)
        end = self.rows + len(keep)
        self._reserve(end)
        block = self.matrix[self.rows : end]
        rows.values(select, out=block)
        if self.nonfinite != "keep":
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                if self.nonfinite == "error":
                    row = int(np.argmin(finite))
                    col = int(np.argmin(np.isfinite(block[row])))
                    raise rows.nonfinite_error(
                        select, row, col, block[row, col]
                    )
                end = self.rows + self._leave_out(
                    rows, select, block, finite, start
                )
        self.rows = end

    def _leave_out(self, rows, select, block, finite, start):
        """Drops the rows of `block` that are not `finite`; returns how many
        are left. Their words stay in the index until the end, so that
        later duplicates are still dropped."""
        kept = int(finite.sum())
        block[:kept] = block[finite]
        words = self.words[start:]
        del self.words[start:]
        for word, ok, i in zip(words, finite.tolist(), select.tolist()):
            if ok:
                self.index[word] = len(self.words)
                self.words.append(word)
            else:
                self.left_out.append(word)
                if self.first_left_out is None:
                    self.first_left_out = (word, rows.where(i))
        return kept

    def result(self):
        """The `Vectors` kept, with one warning for the duplicates dropped
        and one for the rows left out (stacklevel: the loader's caller)."""
        matrix = self.matrix
        if self.rows < len(matrix):
            matrix.resize((self.rows, self.dim), refcheck=False)
        self._warn()
        return Vectors._trusted(self.words, matrix, self.index)

    def _warn(self):
        """Forgets the words left out, then warns. Called by `result`,
        itself called by the loader: the warnings name the loader's
        caller."""
        for word in self.left_out:
            del self.index[word]
        if self.left_out:
            word, where = self.first_left_out
            warnings.warn(
                f"{self.name}: left out {len(self.left_out)} row(s) with a "
                f"NaN or infinite value (nonfinite='skip'); the first is "
                f"{word!r} at {where}.",
                UserWarning,
                stacklevel=4,
            )
        if self.duplicates:
            word, where = self.first_duplicate
            warnings.warn(
                f"{self.name}: dropped {self.duplicates} duplicate "
                f"token(s), keeping the first occurrence of each; the first "
                f"duplicate is {word!r} at {where}.",
                UserWarning,
                stacklevel=4,
            )


class StreamingCollector(Collector):
    """A `Collector` whose matrix holds one chunk: `sink.start(dim)` is
    called with the collector's, and each chunk's kept rows go to
    `sink.add(words, rows)`, after which the matrix is reused.

    Nothing grows with the file or the vocabulary here: the words kept so
    far (for the duplicate rule) are `sink.seen`, flags the sink keeps on
    its own dictionaries (`in`, `seen[word] = ...`, `del seen[word]`, as
    `Collector.index`), and only the first few words kept are remembered
    (`result()`, for the no-overlap message)."""

    # Rows of the one-chunk matrix at first; it grows to a chunk's rows.
    CAPACITY = 1024
    # Words `result()` returns: more than a message shows (`align.EXAMPLES`).
    FIRST_WORDS = 16

    def __init__(self, name, vocabulary, encoding, errors, nonfinite, sink):
        super().__init__(name, vocabulary, encoding, errors, nonfinite)
        self.sink = sink
        self.index = sink.seen
        self.first_words = []

    def start(self, dim, capacity):
        super().start(dim, self.CAPACITY)
        self.sink.start(dim)

    def add(self, rows):
        super().add(rows)
        if self.rows:
            self.sink.add(self.words, self.matrix[:self.rows])
        room = self.FIRST_WORDS - len(self.first_words)
        if room > 0:
            self.first_words += self.words[:room]
        self.words = []
        self.rows = 0

    def result(self):
        """The first words kept, in file order (their rows went to the
        sink), with the same warnings as `Collector.result`."""
        self._warn()
        return self.first_words
