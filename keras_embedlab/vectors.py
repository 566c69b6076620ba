"""Pretrained word vectors (GloVe, word2vec, fastText) as NumPy arrays.

NumPy only: reading and writing vectors needs no Keras import. The formats
and their quirks are handled in `keras_embedlab._vector_formats`.
"""

import os
import sys
import warnings

import numpy as np

from keras_embedlab import _vector_formats as formats
from keras_embedlab._vector_formats import (
    MAX_LINE_BYTES,
    MAX_TOKEN_BYTES,
    VectorFileError,
)

FORMATS = ("auto", "glove", "word2vec-text", "word2vec-binary")
SAVE_FORMATS = ("word2vec-text", "word2vec-binary", "glove")
UNICODE_ERRORS = ("strict", "replace", "ignore")
NONFINITE = ("error", "skip", "keep")
VERBOSE_MODES = ("auto", 0, 1)
# verbose="auto" shows progress for files larger than this, on a terminal.
PROGRESS_MIN_BYTES = 8 << 20

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TOKEN_BYTES",
    "Vectors",
    "VectorFileError",
    "load_vectors",
]


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
        _check_choice("format", format, SAVE_FORMATS)
        if format == "glove" and not len(self):
            raise ValueError(
                "Cannot save 0 vectors with format='glove': an empty file "
                "cannot be read back. Use format='word2vec-text'."
            )
        tokens = [_encode_token(word, format) for word in self._words]
        if format != "word2vec-binary":
            _check_text_values(self._words, self._matrix, format)
        with formats.open_for_writing(path) as f:
            formats.write_vectors(f, tokens, self._matrix, format)


def _short(word):
    """`repr(word)`, cut short for long words."""
    if len(word) <= 60:
        return repr(word)
    return f"{word[:40]!r}... ({len(word):,} characters)"


def _encode_token(word, fmt):
    """`word` in UTF-8, if the format can hold it and read it back."""
    token = word.encode("utf-8")
    fields = formats.split_fields(token)
    problem = None
    if not token:
        problem = "is empty"
    elif len(token) > formats.MAX_TOKEN_BYTES:
        problem = (
            f"is {len(token):,} bytes long in UTF-8; the limit is "
            f"{formats.MAX_TOKEN_BYTES:,} bytes"
        )
    elif b"\n" in token or b"\r" in token:
        problem = "contains a line break"
    elif token[:1] in (b" ", b"\t") or token[-1:] in (b" ", b"\t"):
        problem = "starts or ends with whitespace (a space or tab)"
    elif fmt == "word2vec-binary":
        if b" " in token or formats._has_control_bytes(token):
            problem = "contains a space or control character (binary format)"
    elif len(fields) > 1 and formats._is_number(fields[-1]):
        problem = "ends in a space-separated number, like a vector value"
    if problem:
        raise ValueError(
            f"Cannot save the word {_short(word)} with format={fmt!r}: it "
            f"{problem}."
        )
    return token


def _check_text_values(words, matrix, fmt):
    """Text holds NaN only as `nan` and `-nan`: refuses other payloads."""
    bits = matrix.view(np.uint32)
    odd = np.isnan(matrix) & ((bits & 0x7FFFFFFF) != 0x7FC00000)
    if odd.any():
        row, col = np.argwhere(odd)[0].tolist()
        raise ValueError(
            f"Cannot save the vector of {_short(words[row])} with "
            f"format={fmt!r}: value {col + 1} is a NaN with the bits "
            f"0x{int(bits[row, col]):08x}, which text cannot hold (it has "
            "only nan and -nan). Use format='word2vec-binary', or replace "
            "the value with np.nan."
        )


def _check_path(path):
    """The name of `path` for messages; a TypeError if it is not a path."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise TypeError(
            "`path` must be a file path (str or os.PathLike). Received: "
            f"path={path!r} (of type {type(path).__name__})."
        ) from None
    return os.fsdecode(name)


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
    finite unless `nonfinite="keep"`; parses values for those rows only.

    Values go straight into one float32 matrix that grows in place
    (`ndarray.resize`, a `realloc`: large blocks move without copying), so
    peak memory is about the result, not twice it.
    """

    def __init__(
        self, name, dim, vocabulary, encoding, errors, nonfinite, capacity
    ):
        self.name, self.dim = name, dim
        self.vocabulary = vocabulary
        self.encoding, self.errors = encoding, errors
        self.nonfinite = nonfinite
        self.words, self.index = [], {}
        self.seen = self.rows = self.duplicates = 0
        self.first_duplicate = None
        self.left_out = []  # words whose rows are not finite ("skip")
        self.first_left_out = None
        if vocabulary is not None:
            capacity = min(capacity, len(vocabulary))
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
        self.seen += len(rows.tokens)
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
        matrix = self.matrix
        if self.rows < len(matrix):
            matrix.resize((self.rows, self.dim), refcheck=False)
        for word in self.left_out:
            del self.index[word]
        if self.left_out:
            word, where = self.first_left_out
            warnings.warn(
                f"{self.name}: left out {len(self.left_out)} row(s) with a "
                f"NaN or infinite value (nonfinite='skip'); the first is "
                f"{word!r} at {where}.",
                UserWarning,
                stacklevel=3,
            )
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
    nonfinite="error",
):
    """Reads a GloVe, word2vec or fastText vectors file.

    Handles the files people have: tokens with spaces or non-breaking
    spaces (a row is the last `dim` fields; everything before them is the
    token), CRLF line endings, trailing spaces and tabs, blank lines, a
    last line without a newline, and `.gz`, `.bz2` or `.xz` compression
    (detected by content). Duplicate tokens keep their first row, with one
    warning saying how many were dropped. Files are data: nothing in them
    is ever executed or unpickled. Only regular files are read (not
    directories, FIFOs or devices).

    Text files: lines end with `\\n` or `\\r\\n` (a `\\r` anywhere else is
    an error); only ASCII spaces and tabs separate fields. A line has at
    most 16 MiB (`MAX_LINE_BYTES`, also the limit for a binary record) and
    a token at most 10,000 bytes (`MAX_TOKEN_BYTES`).

    Which rows are checked: every row read, up to `limit`, is checked
    whether or not `vocabulary` keeps it: its number of fields, its
    token's length and decoding, and stray `\\r`s (binary: the record's
    token). Values are parsed, and so checked to be numbers (and finite),
    only for the rows returned. Rows after the first `limit` rows are not
    read at all.

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
        nonfinite: What to do with a returned row that holds a NaN or an
            infinite value (including a decimal too large for float32):
            `"error"` (raise `VectorFileError` naming its line and column,
            or binary record and byte offset), `"skip"` (leave the row out,
            with one warning; its token's later duplicates are still
            dropped) or `"keep"`.

    Returns:
        A `Vectors`.

    Raises:
        VectorFileError: The file is not a regular file, empty, truncated
            (fewer rows than its header says, or a binary vector cut
            short), has a row with the wrong number of values, a value that
            is not a number or not finite, a line or token over the limits,
            a header that is not two integers, or a header whose `count`
            or `dim` does not fit the file. The message names the file and
            the line (text) or byte offset (binary).
        ValueError, TypeError: An argument is invalid; all are checked
            before the file is opened.
    """
    name = _check_path(path)
    _check_choice("format", format, FORMATS)
    verbose = _check_arguments(limit, encoding, unicode_errors, verbose)
    _check_choice("nonfinite", nonfinite, NONFINITE)
    vocabulary = _as_vocabulary(vocabulary)
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
        head, first_line = formats.read_head(source)
        fmt, count, dim, body, body_line = formats.detect(
            head, format, name, first_line
        )
        binary = fmt == "word2vec-binary"
        # Read `stop` rows (None: all). Without a limit below the header's
        # count, more rows than the count are an error.
        if count is None or (limit is not None and limit <= count):
            stop, check_extra = limit, False
        else:
            stop, check_extra = count, True
        if binary:
            _check_binary_size(source, len(body), count, stop, dim)
        collector = _Collector(
            name,
            dim,
            vocabulary,
            encoding,
            unicode_errors,
            nonfinite,
            _initial_rows(source, head, binary, stop, dim),
        )
        if binary:
            rows = formats.iter_binary_rows(
                source,
                body,
                source.offset - len(body),
                count,
                dim,
                stop,
                check_extra,
            )
        else:
            rows = formats.iter_text_rows(
                source,
                body,
                body_line,
                dim,
                fmt == "glove",
                stop,
                check_extra,
            )
        for chunk in rows:
            collector.add(chunk)
        if count is not None and collector.seen < stop:
            raise VectorFileError(
                f"{name}: the file is truncated: its header says {count} "
                f"vectors but it has only {collector.seen} rows."
            )
        return collector.result()
    finally:
        source.close()


def _initial_rows(source, head, binary, stop, dim):
    """How many rows to allocate at first; more are added as rows arrive.

    Sized by bytes: never more rows than the file's size can hold, and for
    compressed files (whose size says little) `INITIAL_MATRIX_BYTES`.
    Files without a header get an estimate from their first lines.
    """
    wanted = 1 << 62 if stop is None else stop
    if source.compression is not None:
        return min(wanted, formats.INITIAL_MATRIX_BYTES // (4 * dim))
    shortest = 4 * dim + 2 if binary else 2 * dim + 1  # a 1-byte token
    wanted = min(wanted, source.size // shortest + 1)
    if stop is None:
        per_row = len(head) / max(head.count(b"\n"), 1)
        return min(wanted, int(source.size / per_row * 1.05) + 64)
    return wanted


def _check_binary_size(source, body_size, count, rows, dim):
    """Fails early when an uncompressed binary file cannot hold the `rows`
    (of the header's `count`) it should have. (Text needs no such check:
    `_initial_rows` is bounded by the file size, and a row by
    `MAX_LINE_BYTES`.)"""
    if source.compression is not None or not rows:
        return
    available = source.size - (source.offset - body_size)
    needed = rows * (4 * dim + 2)  # at least a 1-byte token and a space
    if needed > available:
        raise VectorFileError(
            f"{source.name}: the header says {count:,} vectors of "
            f"dim={dim:,}; {rows:,} of them need at least {needed:,} bytes, "
            f"but only {available:,} follow the header: the file is "
            "truncated or the header is wrong."
        )
