"""Word-vector file formats with NumPy only: detection, parsing, writing.

Private helpers behind `keras_embedlab.vectors`. Files are read as bytes in
chunks of complete lines (text) or records (binary), so memory follows the
chunk and the rows kept, never the whole file, and time is linear in the
bytes read. Text values are parsed by a vectorized decimal parser
(`parse_numbers`): it reads 8 characters of a number at once as one
`uint64` and combines the digits with a few integer operations (the "SWAR"
trick), which is several times faster than NumPy's per-value text parsers.
It gives the same float32 as `float()`: the digits form an exact integer
`m < 2**53` and the value is one correctly rounded division `m / 10**k`.
Anything else (exponents, `nan`, more than 15 digits) falls back to
`float()` one value at a time.

Text rules: a line ends at b"\\n" (a b"\\r" just before it is dropped; one
anywhere else is an error). Fields are separated by runs of ASCII spaces
and tabs, nothing else. A row is the last `dim` fields of a line; all
before them is the token. A line has at most `MAX_LINE_BYTES` bytes and a
token at most `MAX_TOKEN_BYTES`, in every format.
"""

import bz2
import gzip
import lzma
import math
import os
import re
import stat
import sys
import time
import zlib
from collections import Counter

import numpy as np

try:  # Python 3.14 and later
    from compression import zstd
except ImportError:
    zstd = None

CHUNK_SIZE = 1 << 19
# The longest token, and the longest text line or binary record (without
# its line break), in bytes. Longer ones raise `VectorFileError`.
MAX_TOKEN_BYTES = 10_000
MAX_LINE_BYTES = 16 << 20
# The matrix of a compressed file starts at this size, then grows.
INITIAL_MATRIX_BYTES = 64 << 20
_BOM = b"\xef\xbb\xbf"
# Bytes that never occur in a binary token (tab, LF, CR are checked apart).
_CONTROL = bytes(range(0, 9)) + b"\x0b\x0c" + bytes(range(14, 32))
# Bytes that never occur in a number: controls, space, '_', non-ASCII.
_NOT_IN_NUMBERS = bytes(range(0, 33)) + b"_" + bytes(range(127, 256))
_BLANK_LINES = re.compile(rb"(?:[ \t\r]*\n)*")
_LONE_CR = re.compile(rb"\r(?!\n)")
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_IN_FIELDS = np.ones(256, bool)  # bytes that are part of a field
_IN_FIELDS[[9, 10, 32]] = False
_NONFINITE_FIX = (
    "A NaN or infinite value would make statistics over the vectors (such "
    "as the rows made for out-of-vocabulary tokens) NaN. Fix the file, or "
    "pass nonfinite='skip' to leave out such rows or nonfinite='keep' to "
    "load them as they are."
)


class VectorFileError(ValueError):
    """A word-vector file is malformed, truncated or not in the format."""


VectorFileError.__module__ = "keras_embedlab.vectors"


# --------------------------------------------------------------------------
# Opening files: regular files only, transparent decompression, progress.


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


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(name, mode):
    kind = next((k for is_kind, k in _FILE_KINDS if is_kind(mode)), "?")
    return VectorFileError(
        f"{name}: not a regular file ({kind}); vectors are read from "
        "regular files only. Save a stream to a file first."
    )


def _open_regular(path, name):
    """Opens a regular file for reading; refuses others before opening.

    (A FIFO would block in `open()` and a device like /dev/zero never
    ends.) O_NONBLOCK makes `open()` return at once should a FIFO replace
    the file after the check; `fstat` then refuses it.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(name, mode)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | nonblock)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(name, mode)
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# bzip2: "BZh", the block size '1'-'9', then the magic of a block (pi) or
# of the end of the stream (sqrt(pi)), for an empty file.
_BZIP2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")


def sniff_compression(head):
    """The compression of a file starting with `head` (10 bytes) or None."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if (
        head.startswith(b"BZh")
        and head[3:4] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9")
        and head[4:10] in _BZIP2_BLOCKS
    ):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def _decompressor(kind, raw):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    return zstd.ZstdFile(raw, "r")


_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error) + (
    (zstd.ZstdError,) if zstd is not None else ()
)


class Source:
    """Reads a file's (decompressed) bytes, counting the offset reached.

    Only regular files are opened. gzip, bzip2, xz (and, on Python 3.14+,
    zstd) files are detected by their full signatures, not their names.
    Read errors of the decompressor become `VectorFileError`.
    """

    def __init__(self, path, name):
        self.name = name
        self.raw = _open_regular(path, name)
        try:
            self.size = os.fstat(self.raw.fileno()).st_size
            self.compression = sniff_compression(self.raw.read(10))
            self.raw.seek(0)
            self.stream = self.raw
            if self.compression == "zstd" and zstd is None:
                raise VectorFileError(
                    f"{name}: the file is zstd-compressed, which Python "
                    f"{sys.version.split()[0]} cannot read; decompress it "
                    "first (`zstd -d`) or use Python 3.14 or later."
                )
            if self.compression is not None:
                self.stream = _decompressor(self.compression, self.raw)
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
# Lines: line breaks, the line length limit, format detection.


def split_fields(line):
    """The fields of `line` (no line break): runs between spaces and tabs."""
    return [field for field in line.replace(b"\t", b" ").split(b" ") if field]


def _strip_cr(line):
    return line[:-1] if line.endswith(b"\r") else line


def check_lone_cr(name, data, first_line, end=None):
    """Raises for a b"\\r" in `data[:end]` that is not followed by b"\\n"."""
    match = _LONE_CR.search(data, 0, len(data) if end is None else end)
    if match is None:
        return
    i = match.start()
    line = first_line + data.count(b"\n", 0, i)
    column = i - data.rfind(b"\n", 0, i)
    raise VectorFileError(
        f"{name}: line {line}, column {column}: a carriage return (\\r) "
        "that does not end the line. Lines end with \\n or \\r\\n, and only "
        "spaces and tabs separate fields; convert a file with old Mac \\r "
        "line endings first."
    )


def _line_too_long(name, line):
    return VectorFileError(
        f"{name}: line {line} is longer than {MAX_LINE_BYTES:,} bytes, the "
        "limit for a line; this is not a vectors file, or its line breaks "
        "are missing."
    )


def _read_to_line_end(source, pending, line):
    """Reads until `pending` (part of line `line`) has its line break.

    Returns `(data, eof)`: `pending` and what was read, joined once.
    """
    pieces, size = [pending], len(pending)
    while True:
        data = source.read()
        if not data:
            return b"".join(pieces), True
        pieces.append(data)
        end = data.find(b"\n")
        if end >= 0:
            if size + end > MAX_LINE_BYTES:
                raise _line_too_long(source.name, line)
            return b"".join(pieces), False
        size += len(data)
        if size > MAX_LINE_BYTES:
            raise _line_too_long(source.name, line)


def read_head(source):
    """Reads the start of the file for `detect`.

    Skips a UTF-8 BOM and blank lines, however many, then reads until the
    first line that is not blank is complete, and at least a chunk.
    Returns `(head, line)`: `head` starts with that line, number `line`.
    """
    data = source.read()
    eof = not data
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    line = 1
    while True:
        end = _BLANK_LINES.match(data).end()
        if end:
            check_lone_cr(source.name, data, line, end)
            line += data.count(b"\n", 0, end)
            data = data[end:]
        if eof or b"\n" in data:
            break
        data, eof = _read_to_line_end(source, data, line)
    if not data.strip(b" \t\r"):
        if line == 1 and not data:
            raise VectorFileError(f"{source.name}: the file is empty.")
        raise VectorFileError(
            f"{source.name}: the file is empty: it has only blank lines; no "
            "vectors found."
        )
    if len(data) < CHUNK_SIZE and not eof:
        data += source.read()
    return data, line


def parse_header(line):
    """`(count, dim)` if `line` is two non-negative integers, else None."""
    parts = split_fields(_strip_cr(line))
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _is_number(field):
    """Whether bytes `field` are a number as float() reads it, in printable
    ASCII without '_' (float() accepts "1_0"; vector files do not)."""
    if len(field.translate(None, _NOT_IN_NUMBERS)) != len(field):
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def _trailing_numbers(fields, most):
    """How many of the last `most` fields are numbers, from the end."""
    n = 0
    while n < most and _is_number(fields[-1 - n]):
        n += 1
    return n


def _is_text_row(line, dim, complete=True):
    """Whether `line` reads as a text row of `dim` values; of a line cut
    short (not `complete`), whether its last fields are numbers."""
    parts = split_fields(_strip_cr(line))
    if complete:
        return len(parts) > dim and _trailing_numbers(parts, dim) == dim
    tail = min(len(parts) - 2, 100)  # the last field may be cut
    return tail > 0 and _trailing_numbers(parts[:-1], tail) == tail


def _has_control_bytes(data):
    return len(data.translate(None, _CONTROL)) != len(data)


def _looks_binary(data, count, dim):
    """Whether the first records of `data` parse as word2vec binary."""
    pos, records = 0, min(count, 3)
    for _ in range(records):
        start = _WHITESPACE.match(data, pos).end()
        space = data.find(b" ", start, start + MAX_TOKEN_BYTES + 1)
        if space <= start or _has_control_bytes(data[start:space]):
            return False
        pos = space + 1 + 4 * dim
    return records > 0 and pos <= len(data)


def _first_row(data):
    """The first line of `data` that is not blank, and if it is complete."""
    start = _BLANK_LINES.match(data).end()
    end = data.find(b"\n", start)
    return (data[start:] if end < 0 else data[start:end]), end >= 0


def _glove_dim(head):
    """The number of values per row of a GloVe file starting with `head`.

    Tokens may contain spaces, so the number of fields alone does not
    tell. Each of the first lines counts its trailing fields that are
    numbers (at most all but the first), or if its last field is not a
    number (a bad value), all its fields but the first. The result is the
    most common count, the largest on a tie; 0 when most lines have no
    number after their first field (this is not a vectors file).
    """
    lines = head.split(b"\n", 100)
    if len(lines) > 1:
        lines.pop()  # cut short, or everything after the first 100 lines
    counts, numeric = Counter(), 0
    for line in lines:
        fields = split_fields(_strip_cr(line))
        if fields:
            trailing = _trailing_numbers(fields, len(fields) - 1)
            counts[trailing or len(fields) - 1] += 1
            numeric += bool(trailing) or any(map(_is_number, fields[1:]))
    if 2 * numeric < sum(counts.values()):
        return 0
    return max(counts.items(), key=lambda kv: kv[::-1])[0]


def check_dim(name, fmt, dim):
    """A header's `dim` must allow a row within `MAX_LINE_BYTES`."""
    what = "binary record" if fmt == "word2vec-binary" else "line"
    shortest = 4 * dim + 2 if fmt == "word2vec-binary" else 2 * dim + 1
    if shortest > MAX_LINE_BYTES:
        raise VectorFileError(
            f"{name}: the header says dim={dim:,}; a {what} of that many "
            f"values takes at least {shortest:,} bytes, over the "
            f"{MAX_LINE_BYTES:,}-byte limit for a {what}. The header is "
            "wrong, or this is not a vectors file."
        )


def detect(head, fmt, name, first_line=1):
    """Returns `(format, count or None, dim, body, body_line)`.

    `head` is from `read_head`, its first line number `first_line`; `body`
    is `head` without the header line, and `body_line` its first line
    number. With `fmt="auto"`, a first line of two integers is a word2vec
    header; the data after it is text if its first row (blank lines
    skipped) parses as text or it holds no control bytes, else binary.
    Without a header the file is GloVe (see `_glove_dim`).
    """
    end = head.find(b"\n")
    first = head if end < 0 else head[:end]
    rest = head[end + 1 :] if end >= 0 else b""
    header = parse_header(first)
    if fmt == "auto":
        fmt = "glove"
        if header is not None:
            count, dim = header
            row, complete = _first_row(rest)
            if not row.strip(b" \t\r") or _is_text_row(
                row, max(dim, 1), complete
            ):
                fmt = "word2vec-text"
            elif _looks_binary(rest, count, dim):
                fmt = "word2vec-binary"
            elif _has_control_bytes(rest[:4096]):
                fmt = "word2vec-binary"
            else:
                fmt = "word2vec-text"
    if fmt == "glove":
        dim = _glove_dim(head)
        if dim < 1:
            raise VectorFileError(
                f"{name}: this is not a vectors file: line {first_line} "
                f"({first[:60]!r}), like most of the first lines, has no "
                "values (numbers) after its token. A GloVe row is a token "
                "followed by numbers; a word2vec file starts with a header "
                "line 'count dim'."
            )
        return fmt, None, dim, head, first_line
    if header is None:
        raise VectorFileError(
            f"{name}: line {first_line} must be a word2vec header of two "
            f"integers 'count dim'. Received: {first[:80]!r}. For a file "
            "without a header use format='glove'."
        )
    count, dim = header
    if dim < 1:
        raise VectorFileError(
            f"{name}: the header says dim={dim}; it must be at least 1."
        )
    check_dim(name, fmt, dim)
    return fmt, count, dim, rest, first_line + 1


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

    def nonfinite_error(self, select, row, col, value):
        """The error for value `col` of row `select[row]`, not finite."""
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
    def __init__(self, name, dim, tokens, line_numbers, line_starts, fields):
        super().__init__(name, dim, tokens)
        self.line_numbers = line_numbers
        self.line_starts = line_starts  # offsets in the chunk, for columns
        self.fields = fields  # select -> (a, starts, ends), dim per row

    def where(self, i):
        return f"line {self.line_numbers[i]}"

    def _value(self, i, col, a, start, end):
        """`(field, column, description)` of value `col` of row `i`."""
        field = a[start:end].tobytes()
        column = int(start - self.line_starts[i]) + 1
        return (
            field,
            column,
            f"{self.name}: {self.where(i)}: value {col + 1} of {self.dim}, "
            f"{field!r}",
        )

    def values(self, select, out=None):
        a, starts, ends = self.fields(select)
        values, bad = parse_numbers(a, starts, ends)
        if bad.size:
            i = fallback(a, starts, ends, bad, values)
            if i is not None:
                row, col = divmod(i, self.dim)
                _, column, value = self._value(
                    select[row], col, a, starts[i], ends[i]
                )
                raise VectorFileError(
                    f"{value}, is not a number (at column {column})."
                )
        values = values.reshape(-1, self.dim)
        if out is None:
            out = np.empty(values.shape, np.float32)
        with np.errstate(over="ignore"):
            out[...] = values
        return out

    def nonfinite_error(self, select, row, col, value):
        a, starts, ends = self.fields(select[row : row + 1])
        field, column, described = self._value(
            select[row], col, a, starts[col], ends[col]
        )
        number = float(field)
        if math.isnan(number):
            kind = "NaN"
        elif math.isinf(number):
            kind = "infinite"
        else:
            kind = "it overflows float32 (the largest float32 is 3.4e38)"
        return VectorFileError(
            f"{described}, is not finite: {kind} (at column {column}). "
            + _NONFINITE_FIX
        )


def _wrong_count(name, line_no, fields, dim, last, header_hint):
    message = (
        f"{name}: line {line_no} has {fields} fields (a token and "
        f"{fields - 1} values); expected a token followed by {dim} values."
    )
    if last:
        message += " It is the last line: the file may be truncated."
    if header_hint:
        message += (
            f" (If line {line_no} is meant as a word2vec header, it must be "
            "two integers 'count dim'.)"
        )
    return VectorFileError(message)


def _check_spaced_token(name, line_no, token, dim):
    """A token with spaces must not end in a number: that is a long row."""
    if _is_number(split_fields(token)[-1]):
        raise VectorFileError(
            f"{name}: line {line_no} has more than {dim} values (or a token "
            f"{token!r} that ends in a number); rows must have a token "
            f"followed by exactly {dim} values."
        )


def _pad(data):
    return np.frombuffer(data + bytes(16), np.uint8)


def _split_simple(chunk, dim):
    """The rows of `chunk` if all its separators are single spaces.

    Returns None when a line has fewer than `dim` spaces, or a separator is
    not a single space (tabs, runs of spaces, blank lines, control bytes),
    or else `(a, line_starts, token_ends, fields, extra)`: the bytes as
    uint8 (with 16 more), where each line and its token start and end, the
    value boundaries of selected rows, and which rows have spaced tokens.
    """
    a = _pad(chunk)
    separator = a[: len(chunk)] <= 32
    if 2 * np.count_nonzero(separator) > len(chunk):
        return None  # runs of blanks: do not index them all
    bounds = np.flatnonzero(separator)
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
    line_starts = np.empty_like(ends)
    line_starts[0] = 0
    line_starts[1:] = bounds[ends[:-1]] + 1
    spaced = np.flatnonzero(spaces > dim)

    def fields(select):
        if select.size == ends.size and not spaced.size:
            # Every space (the one after the token too) precedes a value.
            left = ~newline
            return a, bounds[left] + 1, bounds[np.flatnonzero(left) + 1]
        left = (ends[select][:, None] - dim + np.arange(dim)).ravel()
        return a, bounds[left] + 1, bounds[left + 1]

    lines = np.arange(ends.size)
    return (
        a,
        lines,
        line_starts,
        line_starts,
        bounds[ends - dim],
        fields,
        spaced,
    )


def _split_general(chunk, dim, first_line, name, last, header_line):
    """The rows of `chunk`, any separators; as `_split_simple`."""
    a = _pad(chunk)
    b = a[: len(chunk)]
    content = _IN_FIELDS[b]
    # Fields start and end where `content` changes, alternately; the chunk
    # ends with a line break, outside any field.
    changes = np.flatnonzero(content[1:] != content[:-1]) + 1
    if content[0]:
        changes = np.concatenate([[0], changes])
    starts, ends = changes[0::2], changes[1::2]
    newlines = np.flatnonzero(b == 10)
    per_line = np.bincount(
        np.searchsorted(newlines, starts), minlength=newlines.size
    )
    lines = np.flatnonzero(per_line)  # lines that are not blank
    count = per_line[lines]
    first = (np.cumsum(per_line) - per_line)[lines]  # their first fields
    short = np.flatnonzero(count <= dim)
    if short.size:
        i = lines[short[0]]
        line_no = first_line + int(i)
        raise _wrong_count(
            name,
            line_no,
            int(count[short[0]]),
            dim,
            last and i == newlines.size - 1,
            line_no == header_line,
        )
    values = first + count - dim  # the first value of each row
    line_starts = np.where(lines > 0, newlines[lines - 1] + 1, 0)

    def fields(select):
        index = (values[select][:, None] + np.arange(dim)).ravel()
        return a, starts[index], ends[index]

    spaced = np.flatnonzero(count > dim + 1)
    return (
        a,
        lines,
        line_starts,
        starts[first],
        ends[values - 1],
        fields,
        spaced,
    )


def text_rows(chunk, first_line, dim, name, last=False, header_line=None):
    """Splits `chunk`, complete lines (ending with b"\\n"), into `TextRows`.

    `first_line` is the number of its first line. `last`: the chunk ends
    with the file's last line, which had no line break (a short row there
    hints at truncation). `header_line`: a GloVe file's first line, where
    a wrong number of fields hints at a bad word2vec header. The fast path
    handles chunks whose separators are single spaces (after dropping the
    CRs of CRLF and one trailing space, as fastText writes); the general
    one any runs of spaces and tabs and blank lines. Both leave the
    columns of fields unchanged.
    """
    split = _split_simple(chunk, dim)
    if split is None:
        if b"\r" in chunk:
            check_lone_cr(name, chunk, first_line)
            chunk = chunk.replace(b"\r\n", b"\n")
        chunk = chunk.replace(b" \n", b"\n")
        split = _split_simple(chunk, dim) or _split_general(
            chunk, dim, first_line, name, last, header_line
        )
    a, lines, line_starts, token_starts, token_ends, fields, spaced = split
    line_numbers = first_line + lines
    lengths = token_ends - token_starts
    long = np.flatnonzero(lengths > MAX_TOKEN_BYTES)
    if long.size:
        raise VectorFileError(
            f"{name}: line {line_numbers[long[0]]}: the token is "
            f"{int(lengths[long[0]]):,} bytes long; the limit is "
            f"{MAX_TOKEN_BYTES:,} bytes. This is not a vectors file, or its "
            "rows have far fewer values than its first lines."
        )
    tokens = [
        chunk[s:e] for s, e in zip(token_starts.tolist(), token_ends.tolist())
    ]
    for i in spaced.tolist():
        _check_spaced_token(name, line_numbers[i], tokens[i], dim)
    return TextRows(name, dim, tokens, line_numbers, line_starts, fields)


def _line_chunks(source, body, first_line):
    """Yields `(chunk, line, last)`: chunks of complete lines of the file.

    `body` is the start; `line` is the number of a chunk's first line;
    `last` says the file's last line had no line break (one is added). A
    line of more than `MAX_LINE_BYTES` raises. Each byte is copied a fixed
    number of times, however long the lines.
    """
    pieces, lines = [body], body.count(b"\n")
    size = len(body) - body.rfind(b"\n") - 1  # of the unfinished line
    line = first_line
    while True:
        data = source.read()
        if not data:
            chunk = b"".join(pieces)
            if chunk:
                last = not chunk.endswith(b"\n")
                yield chunk + b"\n" if last else chunk, line, last
            return
        cut = data.rfind(b"\n") + 1
        if not cut:
            size += len(data)
            if size > MAX_LINE_BYTES:
                raise _line_too_long(source.name, line + lines)
            pieces.append(data)
            continue
        if size + data.find(b"\n") > MAX_LINE_BYTES:
            raise _line_too_long(source.name, line + lines)
        pieces.append(data[:cut])
        chunk = b"".join(pieces)
        yield chunk, line, False
        line += lines + data.count(b"\n", 0, cut)
        pieces, lines, size = [data[cut:]], 0, len(data) - cut


def _end_of_rows(chunk, want):
    """The offset after the `want`-th line of `chunk` that is not blank,
    or None when it has fewer."""
    if want == 0:
        return 0
    if chunk.count(b"\n") < want:
        return None
    a = np.frombuffer(chunk, np.uint8)
    filled = ~((a == 32) | (a == 9) | (a == 13) | (a == 10))
    newlines = np.flatnonzero(a == 10)
    rows = np.flatnonzero(np.diff(np.cumsum(filled)[newlines], prepend=0))
    if rows.size < want:
        return None
    return int(newlines[rows[want - 1]]) + 1


def _check_no_more_rows(name, count, chunk, pos, line, chunks):
    """Raises if a line that is not blank follows the header's rows."""
    while chunk is not None:
        end = _BLANK_LINES.match(chunk, pos).end()
        if end < len(chunk):
            line += chunk.count(b"\n", 0, end)
            raise VectorFileError(
                f"{name}: line {line}: the header says {count} vectors but "
                "the file has more rows; the header's count is wrong."
            )
        chunk, line, _ = next(chunks, (None, None, None))
        pos = 0


def iter_text_rows(source, body, first_line, dim, glove, stop, check_extra):
    """Yields `TextRows` for the first `stop` rows (None: all) of a file.

    `body`, from line `first_line` on, is the data read so far. Lines after
    the `stop`-th row are not split or checked, except with `check_extra`
    (`stop` is the header's count): then one that is not blank raises.
    """
    header_line = first_line if glove else None
    done = 0
    chunks = _line_chunks(source, body, first_line)
    for chunk, line, last in chunks:
        end = None
        # A row takes at least 2 * dim + 1 bytes and its line break.
        if stop is not None and stop - done <= len(chunk) // (2 * dim + 2):
            end = _end_of_rows(chunk, stop - done)
        rows = chunk if end is None else chunk[:end]
        if rows:
            whole = end is None or end == len(chunk)
            rows = text_rows(
                rows, line, dim, source.name, last and whole, header_line
            )
            done += len(rows.tokens)
            if rows.tokens:
                yield rows
        if end is not None:
            if check_extra:
                _check_no_more_rows(source.name, stop, chunk, end, line, chunks)
            return


# --------------------------------------------------------------------------
# word2vec binary.


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
            f"is {float(value)!r} (at byte offset {offset}). " + _NONFINITE_FIX
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
            start = _WHITESPACE.match(buf, pos).end()
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
            if _has_control_bytes(token):
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
        start = _WHITESPACE.match(buf, pos).end()
        if start < len(buf):
            raise VectorFileError(
                f"{source.name}: the file continues after the {count} "
                f"vectors its header announces (at byte offset "
                f"{base + start}); the header's count or dim is wrong."
            )
        base, buf, pos = base + len(buf), source.read(), 0


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
