"""The start of a vector file: BOM, blank lines, header, format and dim.

`read_head` reads up to the first line that is not blank; `detect` tells
GloVe, word2vec text and word2vec binary apart and finds `dim`.
"""

from collections import Counter

from keras_embedlab.vectors._rules import (
    BLANK_LINES,
    CHUNK_SIZE,
    MAX_LINE_BYTES,
    MAX_TOKEN_BYTES,
    WHITESPACE,
    VectorFileError,
    check_lone_cr,
    has_control_bytes,
    is_number,
    line_too_long,
    split_fields,
    strip_cr,
)

_BOM = b"\xef\xbb\xbf"


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
                raise line_too_long(source.name, line)
            return b"".join(pieces), False
        size += len(data)
        if size > MAX_LINE_BYTES:
            raise line_too_long(source.name, line)


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
        end = BLANK_LINES.match(data).end()
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
    parts = split_fields(strip_cr(line))
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _trailing_numbers(fields, most):
    """How many of the last `most` fields are numbers, from the end."""
    n = 0
    while n < most and is_number(fields[-1 - n]):
        n += 1
    return n


def _is_text_row(line, dim, complete=True):
    """Whether `line` reads as a text row of `dim` values; of a line cut
    short (not `complete`), whether its last fields are numbers."""
    parts = split_fields(strip_cr(line))
    if complete:
        return len(parts) > dim and _trailing_numbers(parts, dim) == dim
    tail = min(len(parts) - 2, 100)  # the last field may be cut
    return tail > 0 and _trailing_numbers(parts[:-1], tail) == tail



def _looks_binary(data, count, dim):
    """Whether the first records of `data` parse as word2vec binary."""
    pos, records = 0, min(count, 3)
    for _ in range(records):
        start = WHITESPACE.match(data, pos).end()
        space = data.find(b" ", start, start + MAX_TOKEN_BYTES + 1)
        if space <= start or has_control_bytes(data[start:space]):
            return False
        pos = space + 1 + 4 * dim
    return records > 0 and pos <= len(data)


def _first_row(data):
    """The first line of `data` that is not blank, and if it is complete."""
    start = BLANK_LINES.match(data).end()
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
        fields = split_fields(strip_cr(line))
        if fields:
            trailing = _trailing_numbers(fields, len(fields) - 1)
            counts[trailing or len(fields) - 1] += 1
            numeric += bool(trailing) or any(map(is_number, fields[1:]))
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
            elif has_control_bytes(rest[:4096]):
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
