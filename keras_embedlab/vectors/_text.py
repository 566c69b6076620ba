"""Text rows (GloVe, word2vec text): chunks of lines, split into rows.

The rules for lines and fields are in `_rules`. Values are parsed by
`_numbers` when the collector asks for them.
"""

import math

import numpy as np

from keras_embedlab.vectors._numbers import fallback, parse_numbers
from keras_embedlab.vectors._rows import NONFINITE_FIX, Rows
from keras_embedlab.vectors._rules import (
    BLANK_LINES,
    MAX_LINE_BYTES,
    MAX_TOKEN_BYTES,
    VectorFileError,
    check_lone_cr,
    is_number,
    line_too_long,
    split_fields,
)

_IN_FIELDS = np.ones(256, bool)  # bytes that are part of a field
_IN_FIELDS[[9, 10, 32]] = False


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
            + NONFINITE_FIX
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
    if is_number(split_fields(token)[-1]):
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
                raise line_too_long(source.name, line + lines)
            pieces.append(data)
            continue
        if size + data.find(b"\n") > MAX_LINE_BYTES:
            raise line_too_long(source.name, line + lines)
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
        end = BLANK_LINES.match(chunk, pos).end()
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
