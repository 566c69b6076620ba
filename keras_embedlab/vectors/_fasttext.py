"""Reading Facebook's fastText binary model format (`.bin`).

The layout (fastText 0.9, and gensim's `save_facebook_model`), all
little-endian: the magic 793712314 and the version (11 or 12) as int32;
the training arguments (12 int32: dim, ws, epoch, minCount, neg,
wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate, then a float64
t); the dictionary (int32 size, nwords, nlabels, int64 ntokens,
pruneidx_size, then `size` entries of a NUL-terminated UTF-8 word, an int64
count and an int8 type, then `pruneidx_size` int32 pairs); a byte saying
whether the input matrix is quantized; the input matrix (int64 rows, int64
columns, then float32 values, row-major); then the output matrix.

Row `i < nwords` of the input matrix is word `i`; row `nwords + h` is the
n-gram bucket `h`. `read_model` checks every size against the file before
anything is allocated, and reads only the header and the dictionary (from
a read-only map of the file): the matrix is read later, and only the rows
needed, window by window (`_subwords`).
"""

import mmap
import os
import re
import struct

import numpy as np

from keras_embedlab.vectors._rules import MAX_TOKEN_BYTES, VectorFileError

MAGIC = 793712314
VERSIONS = (11, 12)
MAGIC_BYTES = struct.pack("<i", MAGIC)
_ARGS = struct.Struct("<12id")
_ARG_NAMES = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams",
              "loss", "model", "bucket", "minn", "maxn", "lr_update_rate")
_DICT = struct.Struct("<3i2q")
_MATRIX = struct.Struct("<2q")
SUPERVISED = 3  # fastText's model_name::sup
# The largest dim (a row must fit a binary record's limit) and n-gram size.
MAX_DIM = 1 << 22
MAX_NGRAM = 64
# An entry: a word of at most MAX_TOKEN_BYTES bytes, its NUL, 9 bytes.
_ENTRY = re.compile(rb"([^\0]{1,%d})\0(.{9})" % MAX_TOKEN_BYTES, re.DOTALL)
_ENTRY_TAIL = np.dtype([("count", "<i8"), ("type", "i1")])


def is_fasttext(head):
    """Whether a file starting with `head` (8 bytes) is a fastText model."""
    return head[:4] == MAGIC_BYTES


class Model:
    """What `read_model` finds: arguments, words, and where rows are.

    Attributes: `name`, `path`, `dim`, `minn`, `maxn`, `bucket`, `nwords`,
    `words` (the dictionary's words and labels, in file order), `rows` (the
    input matrix's row count) and `offset` (the byte offset of its first
    value).
    """


def _fail(name, offset, what):
    return VectorFileError(
        f"{name}: byte offset {offset:,}: {what} This is not a complete "
        "fastText .bin model (fastText 0.9 or gensim's save_facebook_model)."
    )


def _unpack(view, name, struct_, offset, what):
    if offset + struct_.size > len(view):
        raise _fail(name, offset, f"the file is truncated: it ends inside "
                    f"the {what} ({struct_.size} bytes needed, "
                    f"{len(view) - offset} left).")
    return struct_.unpack_from(view, offset)


def _check_args(name, args):
    values = dict(zip(_ARG_NAMES, args))

    def offset(key):
        return 8 + 4 * _ARG_NAMES.index(key)

    checks = [
        ("dim", 1 <= values["dim"] <= MAX_DIM, f"between 1 and {MAX_DIM:,}"),
        ("bucket", values["bucket"] >= 0, "non-negative"),
        ("minn", 0 <= values["minn"] <= MAX_NGRAM,
         f"between 0 and {MAX_NGRAM}"),
        ("maxn", 0 <= values["maxn"] <= MAX_NGRAM,
         f"between 0 and {MAX_NGRAM}"),
    ]
    for key, ok, valid in checks:
        if not ok:
            raise _fail(name, offset(key), f"the header says {key}="
                        f"{values[key]:,}; it must be {valid}.")
    return values


def _read_entries(view, name, offset, size):
    """The `size` dictionary entries from `offset`: words (bytes) and types;
    the offset after them.

    `findall` reads a stretch of entries at a time; the stretch is kept
    only if its entries, joined, are exactly the bytes they came from
    (`findall` skips what does not match).
    """
    entries, pos = [], offset
    while len(entries) < size:
        left = size - len(entries)
        stop = min(len(view), pos + 32 * left + MAX_TOKEN_BYTES + 10)
        found = _ENTRY.findall(view, pos, stop)[:left]
        data = b"".join([word + b"\0" + tail for word, tail in found])
        if not found or view[pos:pos + len(data)] != data:
            entries += _entries_until_error(view, name, pos, size,
                                            len(entries))
        entries += found
        pos += len(data)
    words = [word for word, _ in entries]
    tails = b"".join([tail for _, tail in entries])
    return words, np.frombuffer(tails, _ENTRY_TAIL)["type"], pos


def _entries_until_error(view, name, pos, size, done):
    """Reads entries one by one from `pos` to raise at the bad one."""
    for match in _ENTRY.finditer(view, pos):
        if match.start() != pos:
            break
        done += 1
        pos = match.end()
    match = None  # no buffer of the map outlives the read
    if view.find(b"\0", pos, pos + MAX_TOKEN_BYTES + 1) < 0:
        problem = (f"no NUL ends the word within {MAX_TOKEN_BYTES + 1:,} "
                   "bytes (or the file ends)")
    elif view[pos:pos + 1] == b"\0":
        problem = "the word is empty"
    else:
        problem = "the file ends inside the entry"
    raise _fail(name, pos, f"dictionary entry {done + 1:,} of {size:,}: "
                f"{problem}.")


def _decode(name, offset, words, errors):
    try:
        return [word.decode("utf-8") for word in words]
    except UnicodeDecodeError:
        pass
    decoded, pos = [], offset
    for word in words:
        try:
            decoded.append(word.decode("utf-8", errors))
        except UnicodeDecodeError as error:
            raise _fail(name, pos + error.start, f"the word {word[:60]!r} "
                        f"is not valid UTF-8 ({error.reason}); pass "
                        "unicode_errors='replace' to read it anyway.") from None
        pos += len(word) + 10
    return decoded


def _read_dictionary(view, name, model, unicode_errors):
    offset = 8 + _ARGS.size
    size, nwords, nlabels, _, pruned = _unpack(view, name, _DICT, offset,
                                               "dictionary header")
    most = (len(view) - offset) // 11  # an entry has at least 11 bytes
    if not (0 <= nwords <= size <= most and nlabels == size - nwords):
        raise _fail(name, offset, f"the dictionary header says size="
                    f"{size:,}, nwords={nwords:,}, nlabels={nlabels:,}: it "
                    "needs 0 <= nwords <= size = nwords + nlabels, and at "
                    f"most {most:,} entries fit in the file.")
    start = offset + _DICT.size
    words, types, pos = _read_entries(view, name, start, size)
    bad = np.flatnonzero(types != (np.arange(size) >= nwords))
    if len(bad):
        raise _fail(name, start, f"dictionary entry {bad[0] + 1:,} has type "
                    f"{types[bad[0]]}; the first nwords={nwords:,} entries "
                    "must be words (type 0) and the rest labels (type 1).")
    model.words = _decode(name, start, words, unicode_errors)
    model.nwords = nwords
    if pruned > 0:
        raise _fail(name, offset + 20, f"pruneidx_size={pruned:,}: pruned "
                    "models (fastText quantize -cutoff) are not supported.")
    if pruned == 0:
        model.maxn = 0  # as fastText: every n-gram was pruned
    return pos


def _check_matrix(view, name, model, pos):
    if pos >= len(view):
        raise _fail(name, pos, "the file is truncated: it ends before the "
                    "input matrix.")
    if view[pos] != 0:
        raise _fail(name, pos, "the input matrix is quantized (a .ftz model "
                    "from fastText quantize): quantized models are not "
                    "supported; use the model's .bin file (or its .vec).")
    rows, cols = _unpack(view, name, _MATRIX, pos + 1, "input matrix header")
    expected = model.nwords + model.bucket
    if rows != expected or cols != model.dim:
        raise _fail(name, pos + 1, f"the input matrix is {rows:,} x "
                    f"{cols:,}; the header needs {expected:,} x {model.dim:,}"
                    f" (nwords + bucket rows, dim columns).")
    model.rows, model.offset = rows, pos + 1 + _MATRIX.size
    end = model.offset + 4 * rows * cols
    if end > len(view):
        raise _fail(name, model.offset, f"the file is truncated: the input "
                    f"matrix of {rows:,} x {cols:,} float32 needs "
                    f"{end - model.offset:,} bytes, only "
                    f"{len(view) - model.offset:,} follow.")
    if end >= len(view):
        raise _fail(name, end, "the file is truncated: it ends before the "
                    "output matrix.")
    if view[end] == 0:
        rows, cols = _unpack(view, name, _MATRIX, end + 1,
                             "output matrix header")
        needed = 4 * rows * cols
        left = len(view) - end - 1 - _MATRIX.size
        if rows < 0 or cols < 0 or needed > left:
            raise _fail(name, end + 1, f"the output matrix of {rows:,} x "
                        f"{cols:,} float32 needs {max(needed, 0):,} bytes, "
                        f"only {left:,} follow: the file is truncated.")


def read_model(source, path, unicode_errors="strict"):
    """Reads the header and dictionary of the fastText model at `path`
    (opened as `source`, a `Source`); returns a `Model`."""
    name = source.name
    if source.compression is not None:
        raise VectorFileError(
            f"{name}: this is a {source.compression}-compressed fastText "
            "model; its matrix is read in place, so decompress it first."
        )
    if source.size == 0:
        raise VectorFileError(f"{name}: the file is empty.")
    view = mmap.mmap(source.raw.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        magic, version = _unpack(view, name, struct.Struct("<2i"), 0,
                                 "magic number and version")
        if magic != MAGIC:
            raise _fail(name, 0, f"the magic number is {magic}, not "
                        f"fastText's {MAGIC}.")
        if version not in VERSIONS:
            raise _fail(name, 4, f"the format version is {version}; "
                        "fastText .bin models of versions 11 and 12 are "
                        "read.")
        model = Model()
        model.name, model.path = name, os.path.abspath(path)
        values = _check_args(name, _unpack(view, name, _ARGS, 8,
                                           "training arguments"))
        for key in ("dim", "minn", "maxn", "bucket"):
            setattr(model, key, values[key])
        if version == 11 and values["model"] == SUPERVISED:
            model.maxn = 0  # as fastText: old supervised, no n-grams
        pos = _read_dictionary(view, name, model, unicode_errors)
        _check_matrix(view, name, model, pos)
    finally:
        try:
            view.close()
        except BufferError:  # a traceback still holds a match
            pass
    return model
