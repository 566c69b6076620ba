"""`load_vectors`: its arguments, then detection, a reader, collection."""

import os
import sys
from collections.abc import Iterable

from keras_embedlab._validation import check_choice
from keras_embedlab.vectors._binary import iter_binary_rows
from keras_embedlab.vectors._collect import Collector
from keras_embedlab.vectors._detect import detect, read_head
from keras_embedlab.vectors._fasttext import (
    HEAD_BYTES,
    is_fasttext,
    read_model,
)
from keras_embedlab.vectors._fasttext_vectors import (
    FastTextVectors,
    load_fasttext,
)
from keras_embedlab.vectors._rules import VectorFileError
from keras_embedlab.vectors._source import Progress, Source
from keras_embedlab.vectors._text import iter_text_rows
from keras_embedlab.vectors._vectors import Vectors

FORMATS = ("auto", "glove", "word2vec-text", "word2vec-binary",
           "fasttext-binary")
UNICODE_ERRORS = ("strict", "replace", "ignore")
NONFINITE = ("error", "skip", "keep")
VERBOSE_MODES = ("auto", 0, 1)
# verbose="auto" shows progress for files larger than this, on a terminal.
PROGRESS_MIN_BYTES = 8 << 20
# The matrix of a compressed file starts at this size, then grows.
INITIAL_MATRIX_BYTES = 64 << 20


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
    check_choice("unicode_errors", unicode_errors, UNICODE_ERRORS)
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



def load_vectors(
    path: str | os.PathLike,
    format: str = "auto",
    vocabulary: Iterable[str] | None = None,
    limit: int | None = None,
    encoding: str = "utf-8",
    unicode_errors: str = "strict",
    verbose: str | int | bool = "auto",
    nonfinite: str = "error",
) -> Vectors | FastTextVectors:
    """Reads a GloVe, word2vec or fastText vectors file, or a fastText model.

    Handles the files people have: tokens with spaces or non-breaking
    spaces (a row is the last `dim` fields; everything before them is the
    token), CRLF line endings, trailing spaces and tabs, blank lines, a
    last line without a newline, and `.gz`, `.bz2` or `.xz` compression
    (detected by content). Duplicate tokens of a text or word2vec file
    keep their first row (as gensim), with one warning saying how many
    were dropped; a fastText model's repeated word keeps its last (as
    fastText), with one warning too. Files are data: nothing in them
    is ever executed or unpickled. Only regular files are read (not
    directories, FIFOs or devices).

    Text files: lines end with `\\n` or `\\r\\n` (a `\\r` anywhere else is
    an error); only ASCII spaces and tabs separate fields. A line has at
    most 16 MiB (`MAX_LINE_BYTES`, also the limit for a binary record) and
    a token at most 10,000 bytes (`MAX_TOKEN_BYTES`).

    fastText models (`.bin`, from fastText 0.9 or gensim's
    `save_facebook_model`; unsupervised models and the input matrix of
    supervised ones) are recognised by their magic number, and models from
    before it (2016, which gensim's `load_facebook_vectors` still reads and
    fastText no longer does) by their header; they give a
    `FastTextVectors`: any word gets a vector, its own row and those of its
    character n-grams averaged, as fastText's `get_word_vector` computes
    it. Their dictionary is read as fastText reads it: the empty word is a
    word, and a word that is not valid UTF-8 is kept (see
    `unicode_errors`). Only the header and dictionary are read at load;
    with `vocabulary` the vectors of its tokens (whole words or not) are
    computed at load by reading just their rows, so memory follows the
    vocabulary, not the matrix. Quantized (`.ftz`), pruned and compressed
    models raise `VectorFileError`; `limit` does not apply to models.

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
            `.vec` files), `"word2vec-binary"` or `"fasttext-binary"` (a
            fastText `.bin` model).
        vocabulary: Optional collection of tokens. Rows for other tokens are
            skipped without parsing their values, so memory follows the
            vocabulary, not the file. The result keeps file order.
        limit: Optional positive int: read only the first `limit` rows of
            the file (before vocabulary filtering).
        encoding: ASCII-compatible encoding of the tokens.
        unicode_errors: `"strict"` (an invalid token raises
            `VectorFileError` naming its line or byte offset), `"replace"`
            or `"ignore"`, as in Python's codecs. fastText models hold
            words as bytes: there `"strict"` keeps a word that is not
            valid UTF-8, each invalid byte as a character U+DC80-U+DCFF
            (Python's `"surrogateescape"`), so its vector is still
            fastText's, with one warning; the `encoding` is UTF-8.
        verbose: `"auto"` shows a progress bar on stderr for files over
            8 MB when stderr is a terminal; 0 or False never, 1 or True
            always.
        nonfinite: What to do with a returned row that holds a NaN or an
            infinite value (including a decimal too large for float32):
            `"error"` (raise `VectorFileError` naming its line and column,
            or binary record and byte offset), `"skip"` (leave the row out,
            with one warning; its token's later duplicates are still
            dropped) or `"keep"`. For a fastText model this applies to the
            vectors computed (at load for `vocabulary`, later for other
            words): with `"skip"` such a token has no vector (see
            `FastTextVectors`).

    Returns:
        A `Vectors`, or for a fastText model a `FastTextVectors`.

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
    check_choice("format", format, FORMATS)
    verbose = _check_arguments(limit, encoding, unicode_errors, verbose)
    check_choice("nonfinite", nonfinite, NONFINITE)
    vocabulary = _as_vocabulary(vocabulary)
    if format == "fasttext-binary" and limit is not None:
        raise ValueError(_MODEL_LIMIT.format(limit=limit))
    source = Source(path, name)
    try:
        head = source.stream.peek(HEAD_BYTES)[:HEAD_BYTES]
        if format == "fasttext-binary" or (
            format == "auto" and is_fasttext(head)
        ):
            if limit is not None:
                raise ValueError(_MODEL_LIMIT.format(limit=limit))
            model = read_model(source, name, unicode_errors)
            return load_fasttext(model, vocabulary, nonfinite)
        show = verbose == 1 or (
            verbose == "auto"
            and source.size > PROGRESS_MIN_BYTES
            and sys.stderr.isatty()
        )
        if show:
            label = f"Loading {os.path.basename(name)}"
            source.progress = Progress(source.size, label)
        head, first_line = read_head(source)
        fmt, count, dim, body, body_line = detect(
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
        collector = Collector(
            name,
            dim,
            vocabulary,
            encoding,
            unicode_errors,
            nonfinite,
            _initial_rows(source, head, binary, stop, dim),
        )
        if binary:
            rows = iter_binary_rows(
                source,
                body,
                source.offset - len(body),
                count,
                dim,
                stop,
                check_extra,
            )
        else:
            rows = iter_text_rows(
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


_MODEL_LIMIT = (
    "`limit` does not apply to a fastText model: every word of its "
    "dictionary is read (the rows are not). Received: limit={limit}."
)


def _initial_rows(source, head, binary, stop, dim):
    """How many rows to allocate at first; more are added as rows arrive.

    Sized by bytes: never more rows than the file's size can hold, and for
    compressed files (whose size says little) `INITIAL_MATRIX_BYTES`.
    Files without a header get an estimate from their first lines.
    """
    wanted = 1 << 62 if stop is None else stop
    if source.compression is not None:
        return min(wanted, INITIAL_MATRIX_BYTES // (4 * dim))
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
