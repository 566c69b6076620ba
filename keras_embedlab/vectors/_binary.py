"""word2vec binary: records of a token, a space and `dim` float32."""

import numpy as np

from keras_embedlab.vectors._rows import NONFINITE_FIX, Rows
from keras_embedlab.vectors._rules import (
    CHUNK_SIZE,
    MAX_TOKEN_BYTES,
    WHITESPACE,
    VectorFileError,
    has_control_bytes,
)


class BinaryRows(Rows):
    def __init__(self, name, dim, tokens, offsets, buf, base, vectors, first):
        super().__init__(name, dim, tokens)
        self.offsets = offsets
        self.buf = buf
        self.base = base  # the byte offset of `buf` in the file
        self.vector_offsets = np.array(vectors, np.int64)  # in `buf`
        self.first = first  # records before this chunk

    def where(self, i):
        return f"record {self.first + i + 1} at byte offset {self.offsets[i]}"

    def values(self, select, out=None):
        nbytes = 4 * self.dim
        records = np.ndarray(
            (len(self.buf) - nbytes + 1,),
            f"V{nbytes}",
            buffer=self.buf,
            strides=(1,),
        )
        picked = records[self.vector_offsets[select]]
        values = picked.view("<f4").reshape(-1, self.dim)
        if out is None:
            return values.astype(np.float32)
        out[...] = values
        return out

    def nonfinite_error(self, select, row, col, value):
        i = select[row]
        offset = self.base + int(self.vector_offsets[i]) + 4 * col
        return VectorFileError(
            f"{self.name}: {self.where(i)}: value {col + 1} of {self.dim} "
            f"is {float(value)!r} (at byte offset {offset}). " + NONFINITE_FIX
        )


def iter_binary_rows(source, body, body_offset, count, dim, stop, check_end):
    """Yields `BinaryRows` for the first `stop` of the header's `count`
    records (token, space, `dim` float32), reading no further.

    Tokens may be preceded by whitespace: the word2vec C tool ends each
    vector with a newline, gensim does not. With `check_end` (`stop` is
    `count`), data after the last record raises.
    """
    name, nbytes = source.name, 4 * dim
    buf, base, done = body, body_offset, 0
    while True:
        tokens, offsets, vectors = [], [], []
        pos = need = 0
        while done + len(tokens) < stop:
            start = WHITESPACE.match(buf, pos).end()
            space = buf.find(b" ", start, start + MAX_TOKEN_BYTES + 1)
            if space < 0 or space + 1 + nbytes > len(buf):
                if space < 0 and len(buf) - start > MAX_TOKEN_BYTES:
                    raise _bad_record(
                        name,
                        done + len(tokens) + 1,
                        base + start,
                        dim,
                        f"no space within {MAX_TOKEN_BYTES + 1:,} bytes; a "
                        f"token has at most {MAX_TOKEN_BYTES:,}",
                    )
                if space >= 0:  # Read the rest of the vector at once.
                    need = space + 1 + nbytes - len(buf)
                pos = start
                break
            token = buf[start:space]
            if has_control_bytes(token):
                raise _bad_record(
                    name,
                    done + len(tokens) + 1,
                    base + start,
                    dim,
                    repr(token[:40]),
                )
            tokens.append(token)
            offsets.append(base + start)
            vectors.append(space + 1)
            pos = space + 1 + nbytes
        if tokens:
            yield BinaryRows(
                name, dim, tokens, offsets, buf, base, vectors, done
            )
            done += len(tokens)
        if done >= stop:
            if check_end:
                _check_binary_end(source, buf, pos, base, count)
            return
        data = source.read(max(CHUNK_SIZE, need))
        if not data:
            raise VectorFileError(
                f"{name}: the file is truncated: its header says {count} "
                f"vectors but it ends after {done} (at byte offset "
                f"{base + len(buf)}, in vector {done + 1})."
            )
        buf, base = buf[pos:] + data, base + pos


def _bad_record(name, number, offset, dim, what):
    return VectorFileError(
        f"{name}: record {number} at byte offset {offset} does not start "
        f"with a token and a space ({what}); the header's dim={dim} is "
        "probably wrong or the file is not word2vec binary."
    )


def _check_binary_end(source, buf, pos, base, count):
    """Raises unless only whitespace follows `buf[:pos]`, to the end."""
    while buf:
        start = WHITESPACE.match(buf, pos).end()
        if start < len(buf):
            raise VectorFileError(
                f"{source.name}: the file continues after the {count} "
                f"vectors its header announces (at byte offset "
                f"{base + start}); the header's count or dim is wrong."
            )
        base, buf, pos = base + len(buf), source.read(), 0
