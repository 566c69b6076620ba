"""Word-vector file formats with NumPy only: detection, parsing, writing.

Private helpers behind `keras_embedlab.vectors`. Files are read as bytes in
chunks of complete lines (text) or records (binary), so memory follows the
chunk and the rows kept, never the whole file. Text values are parsed by a
vectorized decimal parser (`parse_numbers`): it reads 8 characters of a
number at once as one `uint64` and combines the digits with a few integer
operations (the "SWAR" trick), which is several times faster than NumPy's
per-value text parsers. It gives the same float32 as `float()`: the digits
form an exact integer `m < 2**53` and the value is one correctly rounded
division `m / 10**k`. Anything else (exponents, `nan`, more than 15 digits)
falls back to `float()` one value at a time.
"""

import bz2
import gzip
import lzma
import os
import sys
import time
import zlib
from collections import Counter

import numpy as np

CHUNK_SIZE = 1 << 19
MAX_TOKEN_BYTES = 10_000
_BOM = b"\xef\xbb\xbf"
# Bytes that never occur in a text vectors file (tab, LF, CR are allowed).
_CONTROL = bytes(range(0, 9)) + b"\x0b\x0c" + bytes(range(14, 32))
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", "bzip2", lambda f: bz2.BZ2File(f, "rb")),
    (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, "rb")),
)
_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


class VectorFileError(ValueError):
    """A word-vector file is malformed, truncated or not in the format."""


VectorFileError.__module__ = "keras_embedlab.vectors"


# --------------------------------------------------------------------------
# Opening files: transparent decompression, progress.


class Progress:
    """A one-line text progress bar of bytes read, and the read rate."""

    def __init__(self, total, label, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()

    def update(self, done, force=False):
        now = time.perf_counter()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "=" * int(frac * 30)
        rate = done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {done / 1e6:,.1f}/"
            f"{self.total / 1e6:,.1f} MB {rate:,.1f} MB/s"
        )
        self.stream.flush()

    def close(self, done):
        self.update(done, force=True)
        self.stream.write("\n")
        self.stream.flush()


class Source:
    """Reads a file's (decompressed) bytes, counting the offset reached.

    gzip, bzip2 and xz files are detected by their magic bytes, not their
    names. Read errors of the decompressor become `VectorFileError`.
    """

    def __init__(self, path, name):
        self.name = name
        self.raw = open(path, "rb")
        self.size = os.fstat(self.raw.fileno()).st_size
        head = self.raw.read(6)
        self.raw.seek(0)
        self.compression = None
        self.stream = self.raw
        for magic, kind, opener in _COMPRESSIONS:
            if head.startswith(magic):
                self.compression = kind
                try:
                    self.stream = opener(self.raw)
                except BaseException:
                    self.raw.close()
                    raise
        self.offset = 0
        self.progress = None

    def read(self, size=CHUNK_SIZE):
        try:
            data = self.stream.read(size)
        except _DECOMPRESSION_ERRORS as error:
            if self.compression is None:
                raise
            raise VectorFileError(
                f"{self.name}: the {self.compression} data is corrupt or "
                f"truncated after byte offset {self.offset} of the "
                f"uncompressed data ({error})."
            ) from None
        self.offset += len(data)
        if self.progress is not None:
            self.progress.update(self.raw.tell())
        return data

    def close(self):
        if self.progress is not None:
            self.progress.close(self.raw.tell())
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


# --------------------------------------------------------------------------
# Format detection.


def parse_header(line):
    """`(count, dim)` if `line` is two non-negative integers, else None."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _is_number(field):
    if b"_" in field:  # float() accepts "1_0"; vector files do not.
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_text_row(line, dim):
    parts = line.split()
    return len(parts) > dim and all(_is_number(p) for p in parts[-dim:])


def _has_control_bytes(data):
    return len(data.translate(None, _CONTROL)) != len(data)


def _looks_binary(data, count, dim):
    """Whether the first records of `data` parse as word2vec binary."""
    pos, records = 0, min(count, 3)
    for _ in range(records):
        space = data.find(b" ", pos, pos + MAX_TOKEN_BYTES)
        token = data[pos:space].strip()
        if space < 0 or not token or _has_control_bytes(token):
            return False
        pos = space + 1 + 4 * dim
    return records > 0 and pos <= len(data)


def read_head(source):
    """Reads until the first line is complete; strips a UTF-8 BOM."""
    head = source.read()
    while b"\n" not in head:
        more = source.read()
        if not more:
            break
        head += more
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    if not head.strip():
        if source.read(1):
            raise VectorFileError(
                f"{source.name}: the file starts with over "
                f"{len(head):,} bytes of blank lines; no vectors found."
            )
        raise VectorFileError(f"{source.name}: the file is empty.")
    return head


def detect(head, fmt, name):
    """Returns `(format, count or None, dim, body)` from the file's start.

    `body` is `head` without the header line. With `fmt="auto"`, a first
    line of two integers is a word2vec header; the data after it is text if
    its first row parses as text or it holds no control bytes, else binary.
    Without a header the file is GloVe, and `dim` is the most common number
    of fields per line, minus one, over the first lines.
    """
    end = head.find(b"\n")
    first = head if end < 0 else head[:end]
    header = parse_header(first)
    if fmt == "auto":
        fmt = "glove"
        if header is not None:
            count, dim = header
            rest = head[end + 1 :] if end >= 0 else b""
            row_end = rest.find(b"\n")
            row = rest if row_end < 0 else rest[:row_end]
            if not rest or _is_text_row(row, max(dim, 1)):
                fmt = "word2vec-text"
            elif _looks_binary(rest, count, dim):
                fmt = "word2vec-binary"
            elif _has_control_bytes(rest[:4096]):
                fmt = "word2vec-binary"
            else:
                fmt = "word2vec-text"
    if fmt == "glove":
        sample = [line.split() for line in head.split(b"\n", 1000)[:1000]]
        counts = Counter(len(fields) for fields in sample if fields)
        # The most common number of fields; on a tie, the largest.
        fields = max(counts.items(), key=lambda kv: kv[::-1], default=(1, 0))
        dim = fields[0] - 1
        if dim < 1:
            raise VectorFileError(
                f"{name}: line 1 has no values after its token; this is not "
                "a GloVe or word2vec file."
            )
        return fmt, None, dim, head
    if header is None:
        raise VectorFileError(
            f"{name}: line 1 must be a word2vec header of two integers "
            f"'count dim'. Received: {first[:80]!r}. For a file without a "
            "header use format='glove'."
        )
    count, dim = header
    if dim < 1:
        raise VectorFileError(
            f"{name}: the header says dim={dim}; it must be at least 1."
        )
    return fmt, count, dim, head[end + 1 :] if end >= 0 else b""


# --------------------------------------------------------------------------
# Vectorized decimal parsing.

_U64 = np.uint64
_LO_NIBBLES = _U64(0x0F0F0F0F0F0F0F0F)
_HI_NIBBLES = _U64(0xF0F0F0F0F0F0F0F0)
_ZEROS = _U64(0x3030303030303030)
_SIXES = _U64(0x0606060606060606)
_PAIRS = _U64(0x00FF00FF00FF00FF)
_QUADS = _U64(0x0000FFFF0000FFFF)
_OCTS = _U64(0x00000000FFFFFFFF)
_TEN, _HUNDRED, _TEN_THOUSAND = _U64(10), _U64(100), _U64(10000)
_SHIFT = [_U64(8 * k) for k in range(9)]
_LOW = [_U64((1 << (8 * k)) - 1) for k in range(9)]  # k low bytes set
_FILL = [_U64(0x3030303030303030 & ((1 << (64 - 8 * k)) - 1)) for k in range(9)]
_DOT, _MINUS = 46, 45


def _digits8(x, k):
    """Values and validity of the `k` ASCII digits in the low bytes of x.

    `x` (uint64, the first character in the lowest byte) is overwritten.
    """
    if k < 8:  # Move the digits to the high bytes, pad with '0' characters.
        x &= _LOW[k]
        x <<= _SHIFT[8 - k]
        x |= _FILL[k]
    t = x + _SIXES  # Digits are the bytes 0x30-0x39, 0x36-0x3f after + 6.
    t &= _HI_NIBBLES
    ok = t == _ZEROS
    np.bitwise_and(x, _HI_NIBBLES, out=t)
    ok &= t == _ZEROS
    x &= _LO_NIBBLES
    for shift, scale, mask in _STAGES:  # pairs, then quads, then octets
        np.right_shift(x, shift, out=t)
        x *= scale
        x += t
        x &= mask
    return x, ok


_STAGES = (
    (_SHIFT[1], _TEN, _PAIRS),
    (_SHIFT[2], _HUNDRED, _QUADS),
    (_SHIFT[4], _TEN_THOUSAND, _OCTS),
)


def _parse_layout(words, s, w0, length, dot):
    """Parses unsigned numbers of one layout; returns `(values, ok)`.

    All numbers start at `s`, have `length` bytes and a '.' at index `dot`
    (or none when `dot` is None), which the caller has checked. `w0` holds
    their first 8 bytes and is overwritten.
    """
    ndigits = length - (dot is not None)
    if not 1 <= ndigits <= 15:  # 15 digits are exact in a float64.
        return np.zeros(s.size), np.zeros(s.size, bool)
    w1 = words[s + 8] if length > 8 else None
    if dot is not None and dot < 8:  # Cut the dot out of the 16 bytes.
        if dot < 7:
            high = (w0 >> _SHIFT[dot + 1]) << _SHIFT[dot]
            w0 &= _LOW[dot]
            w0 |= high
        else:
            w0 &= _LOW[dot]
        if w1 is not None:
            w0 |= w1 << _SHIFT[7]
            w1 >>= _SHIFT[1]
    elif dot is not None:
        q = dot - 8
        high = (w1 >> _SHIFT[q + 1]) << _SHIFT[q] if q < 7 else 0
        w1 &= _LOW[q]
        w1 |= high
    value, ok = _digits8(w0, min(ndigits, 8))
    if ndigits > 8:
        low, ok1 = _digits8(w1, ndigits - 8)
        value *= _U64(10 ** (ndigits - 8))
        value += low
        ok &= ok1
    value = value.astype(np.float64)
    if dot is not None and dot < length - 1:
        value /= 10.0 ** (length - 1 - dot)  # One correctly rounded step.
    return value, ok


def _dot_positions(length):
    """Where to look for the dot, most common first, then None (no dot)."""
    return (
        [d for d in (1, 2, 0) if d < length] + list(range(3, length)) + [None]
    )


def parse_numbers(a, starts, ends):
    """Parses the byte ranges `a[starts[i]:ends[i]]` as floats.

    `a` is a uint8 array with at least 16 bytes after the last range.
    Returns `(values, bad)`: float64 values and the indices of ranges the
    fast path could not parse; `fallback` handles those.
    """
    n = starts.size
    values = np.empty(n, np.float64)
    bad = []
    if not n:
        return values, np.empty(0, np.intp)
    words = np.ndarray((a.size - 7,), "<u8", buffer=a, strides=(1,))
    neg = a[starts] == _MINUS
    s = starts + neg
    lengths = ends - s
    groups = np.flatnonzero(np.bincount(lengths)).tolist()
    for length in groups:
        # `rows` (None: all) indexes `values`; `s_`, `w0` are for those rows.
        rows = None if len(groups) == 1 else np.flatnonzero(lengths == length)
        s_ = s if rows is None else s[rows]
        if not 1 <= length <= 16:
            bad.append(np.arange(n) if rows is None else rows)
            continue
        w0 = words[s_]
        for dot in _dot_positions(length):
            if dot is None:
                hit = None
            elif dot < 8:
                hit = ((w0 >> _SHIFT[dot]) & _U64(0xFF)) == _U64(_DOT)
            else:
                hit = a[s_ + dot] == _DOT
            if hit is not None and not hit.all():
                if not hit.any():
                    continue
                miss = ~hit
                rows = np.arange(s_.size) if rows is None else rows
                part = (rows[hit], s_[hit], w0[hit])
                rows, s_, w0 = rows[miss], s_[miss], w0[miss]
            else:
                part, s_ = (rows, s_, w0), None
            value, ok = _parse_layout(words, part[1], part[2], length, dot)
            if part[0] is None:
                values[:] = value
            else:
                values[part[0]] = value
            if not ok.all():
                where = np.flatnonzero(~ok)
                bad.append(where if part[0] is None else part[0][where])
            if s_ is None:
                break
    # Set the sign bit of negative numbers (also gives -0.0 for "-0").
    sign = neg.view(np.uint8).astype(np.uint64)
    sign <<= _U64(63)
    values.view(np.uint64)[...] |= sign
    bad = np.concatenate(bad) if bad else np.empty(0, np.intp)
    return values, bad


def fallback(a, starts, ends, bad, values):
    """Parses `bad` ranges with float(); returns the first unparsable one."""
    for i in np.sort(bad).tolist():
        field = a[starts[i] : ends[i]].tobytes()
        if not _is_number(field):
            return i
        values[i] = float(field)
    return None


# --------------------------------------------------------------------------
# Rows: tokens now, values only for the rows kept.


class Rows:
    """A chunk of rows: `tokens` (bytes) and their values on demand.

    `values(select)` parses only the selected rows, so rows that a
    vocabulary filters out never have their values built.
    """

    def __init__(self, name, dim, tokens):
        self.name = name
        self.dim = dim
        self.tokens = tokens

    def where(self, i):
        raise NotImplementedError

    def decode(self, encoding, errors):
        blob = b"\n".join(self.tokens)
        try:
            words = blob.decode(encoding, errors).split("\n")
            if len(words) == len(self.tokens):
                return words
        except UnicodeDecodeError:
            pass
        words = []
        for i, token in enumerate(self.tokens):
            try:
                words.append(token.decode(encoding, errors))
            except UnicodeDecodeError as e:
                raise VectorFileError(
                    f"{self.name}: {self.where(i)}: the token {token!r} is "
                    f"not valid {encoding} (byte {e.start} of the token: "
                    f"{e.reason}). Pass unicode_errors='replace' or 'ignore' "
                    "to load it anyway."
                ) from None
        return words


class TextRows(Rows):
    def __init__(self, name, dim, tokens, line_numbers, fields, last_line):
        super().__init__(name, dim, tokens)
        self.line_numbers = line_numbers
        self.fields = fields  # select -> (a, starts, ends), dim per row
        self.last_line = last_line

    def where(self, i):
        return f"line {self.line_numbers[i]}"

    def values(self, select, out=None):
        a, starts, ends = self.fields(select)
        values, bad = parse_numbers(a, starts, ends)
        if bad.size:
            i = fallback(a, starts, ends, bad, values)
            if i is not None:
                row, col = divmod(i, self.dim)
                field = a[starts[i] : ends[i]].tobytes()
                raise VectorFileError(
                    f"{self.name}: {self.where(select[row])}: value "
                    f"{col + 1} of {self.dim}, {field!r}, is not a number."
                )
        values = values.reshape(-1, self.dim)
        if out is None:
            out = np.empty(values.shape, np.float32)
        with np.errstate(over="ignore"):
            out[...] = values
        return out


def _wrong_count(name, line_no, fields, dim, last, glove_line1):
    message = (
        f"{name}: line {line_no} has {fields} fields; expected a token "
        f"followed by {dim} values."
    )
    if last:
        message += " It is the last line: the file may be truncated."
    if glove_line1:
        message += (
            " (If line 1 is meant as a word2vec header, it must be two "
            "integers 'count dim'.)"
        )
    return VectorFileError(message)


def _check_spaced_token(name, line_no, token, dim):
    """A token with spaces must not end in a number: that is a long row."""
    if _is_number(token.split()[-1]):
        raise VectorFileError(
            f"{name}: line {line_no} has more than {dim} values (or a token "
            f"{token!r} that ends in a number); rows must have a token "
            f"followed by exactly {dim} values."
        )


def _pad(data):
    return np.frombuffer(data + bytes(16), np.uint8)


def _split_simple(buf, size, dim):
    """Field boundaries of `buf[:size]` if all separators are single spaces.

    Returns None when a line has fewer than `dim` spaces, or a separator is
    not a single space (tabs, runs of spaces, blank lines, CR, control
    bytes), or else `(a, bounds, newline, ends, spaces)`: the bytes as uint8
    (with at least 16 more after `size`), the offsets of all spaces and
    newlines, which of those are newlines, the index in `bounds` of each
    line's newline, and the number of spaces of each line.
    """
    if len(buf) - size >= 16:
        a = np.frombuffer(buf, np.uint8)
    else:
        a = _pad(buf[:size])
    bounds = np.flatnonzero(a[:size] <= 32)
    kinds = a[bounds]
    newline = kinds == 10
    if (
        not bounds.size
        or bounds[0] == 0
        or not (newline | (kinds == 32)).all()
        or (np.diff(bounds) == 1).any()
    ):
        return None
    ends = np.flatnonzero(newline)
    spaces = np.diff(ends, prepend=-1) - 1
    if not (spaces >= dim).all():
        return None
    return a, bounds, newline, ends, spaces


def text_rows(buf, size, first_line, dim, name, last, glove):
    """Splits the complete lines `buf[:size]` into `TextRows`.

    `buf[:size]` ends with b"\n". A row is the last `dim` fields of a line;
    everything before them is the token, which may contain spaces and any
    non-ASCII character. Fields are separated by ASCII spaces and tabs
    only. The vectorized path handles lines separated by single spaces
    (after dropping CRs before newlines and trailing spaces, as fastText
    writes); others go line by line through `_slow_rows`.
    """
    split = _split_simple(buf, size, dim)
    if split is None and (
        buf.find(b"\r", 0, size) >= 0 or buf.find(b" \n", 0, size) >= 0
    ):
        buf = buf[:size].replace(b"\r\n", b"\n")
        while b" \n" in buf:
            buf = buf.replace(b" \n", b"\n")
        size = len(buf)
        split = _split_simple(buf, size, dim)
    if split is None:
        return _slow_rows(buf[:size], first_line, dim, name, last, glove)
    a, bounds, newline, ends, spaces = split
    token_ends = bounds[ends - dim]
    starts = np.empty_like(token_ends)
    starts[0] = 0
    starts[1:] = bounds[ends[:-1]] + 1
    tokens = [buf[s:e] for s, e in zip(starts.tolist(), token_ends.tolist())]
    line_numbers = np.arange(first_line, first_line + len(tokens))
    spaced = np.flatnonzero(spaces > dim)
    for i in spaced.tolist():
        _check_spaced_token(name, line_numbers[i], tokens[i], dim)

    def fields(select):
        if select.size == len(tokens) and not spaced.size:
            # Every space (the one after the token too) precedes a value.
            left = ~newline
            return a, bounds[left] + 1, bounds[np.flatnonzero(left) + 1]
        left = (ends[select][:, None] - dim + np.arange(dim)).ravel()
        return a, bounds[left] + 1, bounds[left + 1]

    return TextRows(name, dim, tokens, line_numbers, fields, last)


def _slow_rows(chunk, first_line, dim, name, last, glove):
    """Line-by-line split for chunks with tabs, runs of spaces, blanks."""
    tokens, line_numbers, tails = [], [], []
    lines = chunk.split(b"\n")[:-1]
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        line_no = first_line + i
        parts = line.rsplit(None, dim)
        if len(parts) != dim + 1:
            raise _wrong_count(
                name,
                line_no,
                len(parts),
                dim,
                last and i == len(lines) - 1,
                glove and line_no == 1,
            )
        if len(parts[0].split()) > 1:
            _check_spaced_token(name, line_no, parts[0], dim)
        tokens.append(parts[0])
        line_numbers.append(line_no)
        tails.append(b" ".join(parts[1:]))

    def fields(select):
        data = b"\n".join([tails[i] for i in select.tolist()]) + b"\n"
        a = _pad(data)
        bounds = np.flatnonzero(a[: len(data)] <= 32)
        if bounds.size != select.size * dim:  # control bytes in a value
            for row, i in enumerate(select.tolist()):
                for col, field in enumerate(tails[i].split(b" ")):
                    if not _is_number(field) or _has_control_bytes(field):
                        raise VectorFileError(
                            f"{name}: line {line_numbers[i]}: value "
                            f"{col + 1} of {dim}, {field!r}, is not a number."
                        )
        starts = np.empty_like(bounds)
        starts[0] = 0
        starts[1:] = bounds[:-1] + 1
        return a, starts, bounds

    return TextRows(
        name, dim, tokens, np.array(line_numbers, np.int64), fields, last
    )


def iter_text_rows(source, body, first_line, dim, glove):
    """Yields `TextRows` for chunks of complete lines of the file."""
    pending, line_no, eof = body, first_line, False
    while True:
        data = source.read()
        eof = not data
        buf = pending + data if pending else data
        unterminated = False
        if eof:
            if buf and not buf.endswith(b"\n"):
                buf += b"\n"
                unterminated = True
            cut = len(buf)
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                pending = buf
                continue
        if cut:
            yield text_rows(
                buf, cut, line_no, dim, source.name, unterminated, glove
            )
            line_no += buf.count(b"\n", 0, cut)
        if eof:
            return
        pending = buf[cut:]


# --------------------------------------------------------------------------
# word2vec binary.


class BinaryRows(Rows):
    def __init__(self, name, dim, tokens, offsets, buf, vector_offsets):
        super().__init__(name, dim, tokens)
        self.offsets = offsets
        self.buf = buf
        self.vector_offsets = np.array(vector_offsets, np.int64)

    def where(self, i):
        return f"byte offset {self.offsets[i]}"

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


def iter_binary_rows(source, body, body_offset, count, dim):
    """Yields `BinaryRows` for up to `count` records (token, space, floats).

    Tokens may be preceded by whitespace: the word2vec C tool ends each
    vector with a newline, gensim does not.
    """
    name, nbytes = source.name, 4 * dim
    buf, base, done = body, body_offset, 0
    if count == 0:
        _check_binary_end(source, buf, count)
    while done < count:
        tokens, offsets, vectors = [], [], []
        pos = 0
        while done + len(tokens) < count:
            space = buf.find(b" ", pos, pos + MAX_TOKEN_BYTES)
            if space < 0 or space + 1 + nbytes > len(buf):
                if space < 0 and len(buf) - pos >= MAX_TOKEN_BYTES:
                    raise _bad_record(name, base + pos, dim, "no space")
                break
            token = buf[pos:space]
            stripped = token.lstrip()
            if not stripped or _has_control_bytes(stripped):
                raise _bad_record(name, base + pos, dim, repr(token[:40]))
            tokens.append(stripped)
            offsets.append(base + pos + len(token) - len(stripped))
            vectors.append(space + 1)
            pos = space + 1 + nbytes
        if tokens:
            yield BinaryRows(name, dim, tokens, offsets, buf, vectors)
            done += len(tokens)
        if done >= count:
            _check_binary_end(source, buf[pos:], count)
            return
        data = source.read()
        if not data:
            raise VectorFileError(
                f"{name}: the file is truncated: its header says {count} "
                f"vectors but it ends after {done} (at byte offset "
                f"{base + len(buf)}, in vector {done + 1})."
            )
        buf, base = buf[pos:] + data, base + pos


def _bad_record(name, offset, dim, what):
    return VectorFileError(
        f"{name}: the record at byte offset {offset} does not start with a "
        f"token and a space ({what}); the header's dim={dim} is probably "
        "wrong or the file is not word2vec binary."
    )


def _check_binary_end(source, rest, count):
    if not rest.strip():
        rest = source.read(4096)
    if rest.strip():
        raise VectorFileError(
            f"{source.name}: the file continues after the {count} vectors "
            "its header announces; the header's count or dim is wrong."
        )


# --------------------------------------------------------------------------
# Writing.


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


def write_vectors(f, tokens, matrix, fmt):
    """Writes encoded `tokens` and float32 `matrix` rows in `fmt`."""
    n, dim = matrix.shape
    if fmt != "glove":
        f.write(f"{n} {dim}\n".encode("ascii"))
    if fmt == "word2vec-binary":
        little = matrix.astype("<f4", copy=False)
        for token, row in zip(tokens, little):
            f.write(token + b" " + row.tobytes() + b"\n")
        return
    # '%.9g' round-trips every float32 (9 significant digits suffice).
    line = " ".join(["%.9g"] * dim) + "\n"
    step = 512
    for start in range(0, n, step):
        block = matrix[start : start + step].tolist()
        f.write(
            b"".join(
                token + b" " + (line % tuple(row)).encode("ascii")
                for token, row in zip(tokens[start : start + step], block)
            )
        )
