"""`load_vectors`: its arguments, then a fastText model, or the loading
pipeline (`_pipeline.read_rows`) into a `Collector`."""

import os
from collections.abc import Iterable

from keras_embedlab.utils.argument_checks import check_choice
from keras_embedlab.vectors._collect import Collector
from keras_embedlab.vectors._fasttext import (
    HEAD_BYTES,
    is_fasttext,
    read_header,
)
from keras_embedlab.vectors._fasttext_vectors import (
    FastTextVectors,
    load_fasttext,
)
from keras_embedlab.vectors._pipeline import (
    check_arguments,
    check_path,
    read_rows,
)
from keras_embedlab.vectors._source import Source
from keras_embedlab.vectors._vectors import Vectors

NONFINITE = ("error", "skip", "keep")


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
    name = check_path(path)
    verbose = check_arguments(format, limit, encoding, unicode_errors,
                              verbose)
    check_choice("nonfinite", nonfinite, NONFINITE)
    vocabulary = _as_vocabulary(vocabulary)
    if format == "fasttext-binary" and limit is not None:
        raise ValueError(_MODEL_LIMIT.format(limit=limit))
    with Source(path, name) as source:
        head = source.stream.peek(HEAD_BYTES)[:HEAD_BYTES]
        if format == "fasttext-binary" or (
            format == "auto" and is_fasttext(head)
        ):
            if limit is not None:
                raise ValueError(_MODEL_LIMIT.format(limit=limit))
            header = read_header(source, name, unicode_errors)
            return load_fasttext(header, vocabulary, nonfinite)
        collector = Collector(name, vocabulary, encoding, unicode_errors,
                              nonfinite)
        read_rows(source, format, limit, verbose, collector)
        return collector.result()


_MODEL_LIMIT = (
    "`limit` does not apply to a fastText model: every word of its "
    "dictionary is read (the rows are not). Received: limit={limit}."
)
