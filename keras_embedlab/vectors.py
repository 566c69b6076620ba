"""Pretrained word vectors (GloVe, word2vec, fastText) as NumPy arrays.

NumPy only: reading and writing vectors needs no Keras import. The formats
and their quirks are handled in `keras_embedlab._vector_formats`.
"""

import os
import sys
import warnings

import numpy as np

from keras_embedlab import _vector_formats as formats
from keras_embedlab._vector_formats import VectorFileError

FORMATS = ("auto", "glove", "word2vec-text", "word2vec-binary")
SAVE_FORMATS = ("word2vec-text", "word2vec-binary", "glove")
UNICODE_ERRORS = ("strict", "replace", "ignore")
VERBOSE_MODES = ("auto", 0, 1)
# verbose="auto" shows progress for files larger than this, on a terminal.
PROGRESS_MIN_BYTES = 8 << 20

__all__ = ["Vectors", "VectorFileError", "load_vectors"]


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}."
        )


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

    Example:

    >>> vectors = Vectors(["king", "queen"], [[1.0, 0.0], [0.9, 0.1]])
    >>> vectors["queen"]
    array([0.9, 0.1], dtype=float32)
    >>> vectors.save("tiny.vec")  # word2vec text, readable by gensim
    """

    def __init__(self, words, matrix):
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
    def words(self):
        return self._words

    @property
    def matrix(self):
        return self._matrix

    @property
    def dim(self):
        return self._matrix.shape[1]

    def __len__(self):
        return len(self._words)

    def __contains__(self, word):
        try:
            return word in self._index
        except TypeError:  # unhashable
            return False

    def index(self, word):
        """The row of `word` in `matrix`; `KeyError` if it is missing."""
        try:
            return self._index[word]
        except (KeyError, TypeError):
            raise KeyError(
                f"{word!r} is not among these {len(self)} words."
            ) from None

    def __getitem__(self, word):
        return self._matrix[self.index(word)]

    def __repr__(self):
        return f"<Vectors: {len(self):,} words, dim={self.dim}>"

    def save(self, path, format="word2vec-text"):
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

        Tokens must be non-empty, must not start or end with whitespace and
        must not contain line breaks. Text tokens may contain spaces but not
        end in a space-separated number (a reader could not tell it from a
        value); binary tokens may not contain spaces or control characters.
        A GloVe file whose first row is an integer token with one integer
        value reads as a word2vec header; load it with `format="glove"`.
        """
        _check_choice("format", format, SAVE_FORMATS)
        if format == "glove" and not len(self):
            raise ValueError(
                "Cannot save 0 vectors with format='glove': an empty file "
                "cannot be read back. Use format='word2vec-text'."
            )
        tokens = [_encode_token(word, format) for word in self._words]
        with formats.open_for_writing(path) as f:
            formats.write_vectors(f, tokens, self._matrix, format)


def _encode_token(word, fmt):
    token = word.encode("utf-8")
    problem = None
    if not token or token.strip() != token:
        problem = "is empty or starts or ends with whitespace"
    elif b"\n" in token or b"\r" in token:
        problem = "contains a line break"
    elif fmt == "word2vec-binary" and (
        b" " in token or formats._has_control_bytes(token)
    ):
        problem = "contains a space or control character (binary format)"
    elif len(token.split()) > 1 and formats._is_number(token.split()[-1]):
        problem = "ends in a space-separated number, like a vector value"
    if problem:
        raise ValueError(
            f"Cannot save the word {word!r} with format={fmt!r}: it {problem}."
        )
    return token


def _check_arguments(limit, encoding, unicode_errors, verbose):
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
    ):
        raise ValueError(
            "`limit` must be a positive integer or None. "
            f"Received: limit={limit!r} (of type {type(limit).__name__})."
        )
    try:
        probe = "0 .-+eE\n\tnaif"
        ascii_ok = probe.encode(encoding).endswith(probe.encode("ascii"))
    except (LookupError, TypeError, UnicodeError):
        ascii_ok = False
    if not ascii_ok:
        raise ValueError(
            "`encoding` must be the name of an ASCII-compatible text "
            "encoding, such as 'utf-8' or 'latin-1'. "
            f"Received: encoding={encoding!r}."
        )
    _check_choice("unicode_errors", unicode_errors, UNICODE_ERRORS)
    if isinstance(verbose, bool):
        verbose = int(verbose)
    if verbose not in VERBOSE_MODES or isinstance(verbose, float):
        raise ValueError(
            "`verbose` must be 'auto', 0 (or False) or 1 (or True). "
            f"Received: verbose={verbose!r}."
        )
    return verbose


def _as_vocabulary(vocabulary):
    if vocabulary is None:
        return None
    if isinstance(vocabulary, (str, bytes)):
        raise ValueError(
            "`vocabulary` must be a collection of tokens, not a single "
            f"string. Received: vocabulary={vocabulary!r}."
        )
    if not isinstance(vocabulary, (set, frozenset, dict)):
        vocabulary = set(vocabulary)
    for token in vocabulary:
        if not isinstance(token, str):
            raise ValueError(
                "`vocabulary` must contain only strings. Received: "
                f"{token!r} (of type {type(token).__name__})."
            )
    return vocabulary


class _Collector:
    """Keeps the rows to return: first of duplicates, in the vocabulary,
    within `limit`; parses values for those rows only.

    Values go straight into one float32 matrix that grows in place
    (`ndarray.resize`, a `realloc`: large blocks move without copying), so
    peak memory is about the result, not twice it.
    """

    def __init__(
        self, name, dim, count, limit, vocabulary, encoding, errors, capacity
    ):
        self.name, self.dim, self.count = name, dim, count
        self.vocabulary = vocabulary
        self.encoding, self.errors = encoding, errors
        if count is None or (limit is not None and limit <= count):
            self.stop = limit  # read this many rows (None: all), then stop
            self.check_extra = False
        else:
            self.stop = count  # more rows than the header says is an error
            self.check_extra = True
        self.words, self.index = [], {}
        self.seen = self.rows = self.duplicates = 0
        self.first_duplicate = None
        if vocabulary is not None:
            capacity = min(capacity, len(vocabulary))
        self.matrix = np.empty((capacity, dim), np.float32)

    def _reserve(self, rows):
        if rows > len(self.matrix):
            capacity = max(rows, 2 * len(self.matrix))
            self.matrix.resize((capacity, self.dim), refcheck=False)

    def add(self, rows):
        """Adds a chunk of rows; returns True once no more are wanted."""
        n = len(rows.tokens)
        if self.stop is not None and self.seen + n > self.stop:
            n = self.stop - self.seen
            if self.check_extra:
                raise VectorFileError(
                    f"{self.name}: {rows.where(n)}: the header says "
                    f"{self.count} vectors but the file has more rows; the "
                    "header's count is wrong."
                )
            rows.tokens = rows.tokens[:n]
        keep = []
        index, words, vocabulary = self.index, self.words, self.vocabulary
        for i, word in enumerate(rows.decode(self.encoding, self.errors)):
            if word in index:
                self.duplicates += 1
                if self.first_duplicate is None:
                    self.first_duplicate = (word, rows.where(i))
            elif vocabulary is None or word in vocabulary:
                index[word] = len(words)
                words.append(word)
                keep.append(i)
        self.seen += n
        if keep:
            end = self.rows + len(keep)
            self._reserve(end)
            rows.values(
                np.array(keep, np.intp), out=self.matrix[self.rows : end]
            )
            self.rows = end
        return self.full

    @property
    def full(self):
        """True once no more rows are wanted (and none are checked)."""
        return (
            self.stop is not None
            and self.seen >= self.stop
            and not self.check_extra
        )

    def result(self):
        matrix = self.matrix
        if self.rows < len(matrix):
            matrix.resize((self.rows, self.dim), refcheck=False)
        if self.duplicates:
            word, where = self.first_duplicate
            warnings.warn(
                f"{self.name}: dropped {self.duplicates} duplicate "
                f"token(s), keeping the first occurrence of each; the first "
                f"duplicate is {word!r} at {where}.",
                UserWarning,
                stacklevel=3,
            )
        return Vectors._trusted(self.words, matrix, self.index)


def load_vectors(
    path,
    format="auto",
    vocabulary=None,
    limit=None,
    encoding="utf-8",
    unicode_errors="strict",
    verbose="auto",
):
    """Reads a GloVe, word2vec or fastText vectors file.

    Handles the files people have: tokens with spaces or non-breaking
    spaces (a row is the last `dim` fields; everything before them is the
    token, and only ASCII spaces and tabs separate fields), CRLF line
    endings, trailing spaces, a last line without a newline, and `.gz`,
    `.bz2` or `.xz` compression (detected by content). Duplicate tokens keep
    their first row, with one warning saying how many were dropped. Files
    are data: nothing in them is ever executed or unpickled.

    Args:
        path: Path of the file.
        format: `"auto"` (detect from the content), `"glove"` (text without
            header), `"word2vec-text"` (a `count dim` header line; fastText
            `.vec` files) or `"word2vec-binary"`.
        vocabulary: Optional collection of tokens. Rows for other tokens are
            skipped without parsing their values, so memory follows the
            vocabulary, not the file. The result keeps file order.
        limit: Optional positive int: read only the first `limit` rows of
            the file (before vocabulary filtering).
        encoding: ASCII-compatible encoding of the tokens.
        unicode_errors: `"strict"` (an invalid token raises
            `VectorFileError` naming its line or byte offset), `"replace"`
            or `"ignore"`, as in Python's codecs.
        verbose: `"auto"` shows a progress bar on stderr for files over
            8 MB when stderr is a terminal; 0 or False never, 1 or True
            always.

    Returns:
        A `Vectors`.

    Raises:
        VectorFileError: The file is empty, truncated (fewer rows than its
            header says, or a binary vector cut short), has a row with the
            wrong number of values, a value that is not a number, a header
            that is not two integers, or a binary header whose `dim` does
            not fit the data. The message names the file and the line (text)
            or byte offset (binary).
    """
    _check_choice("format", format, FORMATS)
    verbose = _check_arguments(limit, encoding, unicode_errors, verbose)
    vocabulary = _as_vocabulary(vocabulary)
    name = os.fspath(path)
    source = formats.Source(path, name)
    try:
        show = verbose == 1 or (
            verbose == "auto"
            and source.size > PROGRESS_MIN_BYTES
            and sys.stderr.isatty()
        )
        if show:
            label = f"Loading {os.path.basename(name)}"
            source.progress = formats.Progress(source.size, label)
        head = formats.read_head(source)
        fmt, count, dim, body = formats.detect(head, format, name)
        binary = fmt == "word2vec-binary"
        rows = _expected_rows(source, head, binary, count, limit, dim)
        collector = _Collector(
            name,
            dim,
            count,
            limit,
            vocabulary,
            encoding,
            unicode_errors,
            rows,
        )
        if binary:
            _check_binary_size(source, len(body), collector.stop, dim)
            rows = formats.iter_binary_rows(
                source, body, source.offset - len(body), count, dim
            )
        else:
            first_line = 1 if fmt == "glove" else 2
            rows = formats.iter_text_rows(
                source, body, first_line, dim, fmt == "glove"
            )
        if not collector.full:
            for chunk in rows:
                if collector.add(chunk):
                    break
        if count is not None and collector.seen < collector.stop:
            raise VectorFileError(
                f"{name}: the file is truncated: its header says {count} "
                f"vectors but it has only {collector.seen} rows."
            )
        return collector.result()
    finally:
        source.close()


def _expected_rows(source, head, binary, count, limit, dim):
    """How many rows to allocate at first; more are added as needed.

    Headers are not trusted beyond what the file size allows; for files
    without a header, the first lines' length gives an estimate.
    """
    wanted = 1 << 62 if count is None else count
    if limit is not None:
        wanted = min(wanted, limit)
    if source.compression is not None:
        return min(wanted, 1 << 16)
    if count is None:
        per_row = len(head) / max(head.count(b"\n"), 1)
        return min(wanted, int(source.size / per_row * 1.05) + 64)
    # A row holds at least a 1-byte token, a space and its values.
    per_row = 4 * dim + 2 if binary else 2 * dim + 1
    return min(wanted, source.size // per_row + 1)


def _check_binary_size(source, body_size, rows, dim):
    """Fails early when an uncompressed binary file cannot hold its rows."""
    if source.compression is not None or not rows:
        return
    available = source.size - (source.offset - body_size)
    needed = rows * (4 * dim + 2)  # at least a 1-byte token and a space
    if needed > available:
        raise VectorFileError(
            f"{source.name}: the header says {rows} vectors of dim={dim}, "
            f"which need at least {needed:,} bytes, but only "
            f"{available:,} follow the header: the file is truncated or the "
            "header's dim is wrong."
        )
