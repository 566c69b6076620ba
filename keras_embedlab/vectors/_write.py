"""Writing vector files; what would not read back bit-exact is refused."""

import bz2
import gzip
import lzma
import math
import os

import numpy as np

from keras_embedlab.vectors._rules import (
    MAX_TOKEN_BYTES,
    has_control_bytes,
    is_number,
    split_fields,
)


def write_file(path, words, matrix, fmt):
    """Writes `words` and float32 `matrix` to `path` in `fmt`; raises
    `ValueError`, before the file is opened, for what would not read back
    bit-exact (see `Vectors.save`)."""
    tokens = [_encode_token(word, fmt) for word in words]
    if fmt != "word2vec-binary":
        _check_text_values(words, matrix, fmt)
    with open_for_writing(path) as f:
        write_vectors(f, tokens, matrix, fmt)


def _short(word):
    """`repr(word)`, cut short for long words."""
    if len(word) <= 60:
        return repr(word)
    return f"{word[:40]!r}... ({len(word):,} characters)"


def _encode_token(word, fmt):
    """`word` in UTF-8, if the format can hold it and read it back.

    A fastText word that is not UTF-8 is held as lone surrogates
    (`surrogateescape`): it is written back as its original bytes.
    """
    token = word.encode("utf-8", "surrogateescape")
    fields = split_fields(token)
    problem = None
    if not token:
        problem = "is empty"
    elif len(token) > MAX_TOKEN_BYTES:
        problem = (
            f"is {len(token):,} bytes long in UTF-8; the limit is "
            f"{MAX_TOKEN_BYTES:,} bytes"
        )
    elif b"\n" in token or b"\r" in token:
        problem = "contains a line break"
    elif token[:1] in (b" ", b"\t") or token[-1:] in (b" ", b"\t"):
        problem = "starts or ends with whitespace (a space or tab)"
    elif fmt == "word2vec-binary":
        if b" " in token or has_control_bytes(token):
            problem = "contains a space or control character (binary format)"
    elif len(fields) > 1 and is_number(fields[-1]):
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


def open_for_writing(path):
    """Opens `path` for binary writing, compressed by its suffix."""
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "gz":
        return gzip.open(path, "wb")
    if suffix == "bz2":
        return bz2.open(path, "wb")
    if suffix == "xz":
        return lzma.open(path, "wb")
    return open(path, "wb")


def _format_row(row):
    """A text row as '%.9g' writes it, but '-nan' for a negative NaN."""
    return (
        " ".join(
            "-nan" if v != v and math.copysign(1.0, v) < 0 else "%.9g" % v
            for v in row.tolist()
        )
        + "\n"
    )


def write_vectors(f, tokens, matrix, fmt):
    """Writes encoded `tokens` and float32 `matrix` rows in `fmt`.

    In text, '%.9g' round-trips every float32 (9 significant digits
    suffice) and NaN is written 'nan' or '-nan'; other NaN payloads are
    the caller's to refuse.
    """
    n, dim = matrix.shape
    if fmt != "glove":
        f.write(f"{n} {dim}\n".encode("ascii"))
    if fmt == "word2vec-binary":
        little = matrix.astype("<f4", copy=False)
        for token, row in zip(tokens, little):
            f.write(token + b" " + row.tobytes() + b"\n")
        return
    line = " ".join(["%.9g"] * dim) + "\n"
    negative_nan = np.flatnonzero(
        (np.isnan(matrix) & np.signbit(matrix)).any(1)
    )
    step = 512
    for start in range(0, n, step):
        rows = [
            line % tuple(row) for row in matrix[start : start + step].tolist()
        ]
        for i in negative_nan[
            (negative_nan >= start) & (negative_nan < start + step)
        ].tolist():
            rows[i - start] = _format_row(matrix[i])
        f.write(
            b"".join(
                token + b" " + row.encode("ascii")
                for token, row in zip(tokens[start : start + step], rows)
            )
        )
