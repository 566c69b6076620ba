"""The one loading pipeline of vectors files, whatever keeps the rows.

`load_vectors` (float rows, `_collect.Collector`) and the int8 loader
(`_quantized.load_int8`, `_collect.StreamingCollector`) both check their
common arguments here (`check_path`, `check_arguments`) and read through
`read_rows`: progress, format detection, the stop rule, the readers, the
truncation check. Only what keeps the rows differs: the collector.

A collector has `start(dim, capacity)`, called once the format and `dim`
are known (`capacity`: how many rows to allocate at first, see
`_initial_rows`), then `add(rows)` for each chunk of rows read (a
`_rows.Rows`). `read_rows` never calls its `result()`: the loader does,
so that its warnings name the loader's caller.
"""

import os
import sys

from keras_embedlab.utils.argument_checks import check_choice
from keras_embedlab.vectors._binary import iter_binary_rows
from keras_embedlab.vectors._detect import detect, read_head
from keras_embedlab.vectors._rules import VectorFileError
from keras_embedlab.vectors._source import Progress
from keras_embedlab.vectors._text import iter_text_rows

FORMATS = ("auto", "glove", "word2vec-text", "word2vec-binary",
           "fasttext-binary")
UNICODE_ERRORS = ("strict", "replace", "ignore")
VERBOSE_MODES = ("auto", 0, 1)
# verbose="auto" shows progress for files larger than this, on a terminal.
PROGRESS_MIN_BYTES = 8 << 20
# The matrix of a compressed file starts at this size, then grows.
INITIAL_MATRIX_BYTES = 64 << 20


def check_path(path):
    """The name of `path` for messages; a TypeError if it is not a path."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise TypeError(
            "`path` must be a file path (str or os.PathLike). Received: "
            f"path={path!r} (of type {type(path).__name__})."
        ) from None
    return os.fsdecode(name)


def check_arguments(format, limit, encoding, unicode_errors, verbose):
    """Checks the arguments every loader has; returns `verbose` as
    `"auto"`, 0 or 1."""
    check_choice("format", format, FORMATS)
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


def read_rows(source, format, limit, verbose, collector):
    """Reads the rows of the text or word2vec file open as `source` (a
    `_source.Source`, at its start) into `collector`.

    `format`, `limit` and `verbose` are checked (`check_arguments`).
    Reads the first `limit` rows (all without it); without a limit below
    the header's count, more rows than the count are an error, and fewer
    are one too (the file is truncated).
    """
    name = source.name
    if verbose == 1 or (
        verbose == "auto"
        and source.size > PROGRESS_MIN_BYTES
        and sys.stderr.isatty()
    ):
        label = f"Loading {os.path.basename(name)}"
        source.progress = Progress(source.size, label)
    head, first_line = read_head(source)
    fmt, count, dim, body, body_line = detect(head, format, name, first_line)
    binary = fmt == "word2vec-binary"
    # Read `stop` rows (None: all). Without a limit below the header's
    # count, more rows than the count are an error.
    if count is None or (limit is not None and limit <= count):
        stop, check_extra = limit, False
    else:
        stop, check_extra = count, True
    if binary:
        _check_binary_size(source, len(body), count, stop, dim)
    collector.start(dim, _initial_rows(source, head, binary, stop, dim))
    if binary:
        rows = iter_binary_rows(
            source, body, source.offset - len(body), count, dim, stop,
            check_extra,
        )
    else:
        rows = iter_text_rows(
            source, body, body_line, dim, fmt == "glove", stop, check_extra
        )
    seen = 0
    for chunk in rows:
        collector.add(chunk)
        seen += len(chunk.tokens)
    if count is not None and seen < stop:
        raise VectorFileError(
            f"{name}: the file is truncated: its header says {count} "
            f"vectors but it has only {seen} rows."
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
