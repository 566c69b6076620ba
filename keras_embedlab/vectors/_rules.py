"""What every reader and the writer share: limits, the error, fields.

Text rules: a line ends at b"\\n" (a b"\\r" just before it is dropped; one
anywhere else is an error). Fields are separated by runs of ASCII spaces
and tabs, nothing else. A row is the last `dim` fields of a line; all
before them is the token. A line has at most `MAX_LINE_BYTES` bytes and a
token at most `MAX_TOKEN_BYTES`, in every format.
"""

import re

# Files are read `CHUNK_SIZE` bytes at a time.
CHUNK_SIZE = 1 << 19
# The longest token, and the longest text line or binary record (without
# its line break), in bytes. Longer ones raise `VectorFileError`.
MAX_TOKEN_BYTES = 10_000
MAX_LINE_BYTES = 16 << 20
# Bytes that never occur in a binary token (tab, LF, CR are checked apart).
_CONTROL = bytes(range(0, 9)) + b"\x0b\x0c" + bytes(range(14, 32))
# Bytes that never occur in a number: controls, space, '_', non-ASCII.
_NOT_IN_NUMBERS = bytes(range(0, 33)) + b"_" + bytes(range(127, 256))
BLANK_LINES = re.compile(rb"(?:[ \t\r]*\n)*")
_LONE_CR = re.compile(rb"\r(?!\n)")
WHITESPACE = re.compile(rb"[ \t\r\n]*")


class VectorFileError(ValueError):
    """A word-vector file is malformed, truncated or not in the format."""


def split_fields(line):
    """The fields of `line` (no line break): runs between spaces and tabs."""
    return [field for field in line.replace(b"\t", b" ").split(b" ") if field]


def strip_cr(line):
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


def line_too_long(name, line):
    return VectorFileError(
        f"{name}: line {line} is longer than {MAX_LINE_BYTES:,} bytes, the "
        "limit for a line; this is not a vectors file, or its line breaks "
        "are missing."
    )


def is_number(field):
    """Whether bytes `field` are a number as float() reads it, in printable
    ASCII without '_' (float() accepts "1_0"; vector files do not)."""
    if len(field.translate(None, _NOT_IN_NUMBERS)) != len(field):
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def has_control_bytes(data):
    return len(data.translate(None, _CONTROL)) != len(data)
