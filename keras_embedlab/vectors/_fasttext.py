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

Models written before the magic number existed (fastText before version
11, 2016; gensim's `load_facebook_vectors` still reads them) have the same
layout without the magic, the version, `pruneidx_size` and the two bytes
saying whether a matrix is quantized: the training arguments start the
file. `is_fasttext` recognises them by those arguments (each in its range,
`loss` and `model` among fastText's choices) and the dictionary header
after them, which no text file and hardly any other file has.

As fastText, a word is the bytes before its NUL, none (the empty word)
included; a word that is not valid UTF-8 is kept (see `_decode`); and of a
word the dictionary holds twice, the last copy is the one used.

Row `i < nwords` of the input matrix is word `i`; row `nwords + h` is the
n-gram bucket `h`. `read_header` checks every size against the file before
anything is allocated, and reads only the header and the dictionary (from
a read-only map of the file): the matrix is read later, and only the rows
needed, window by window (`_subwords`).
"""

import math
import mmap
import os
import re
import struct
import warnings

import numpy as np

from keras_embedlab.vectors._rules import MAX_TOKEN_BYTES, VectorFileError

MAGIC = 793712314
VERSIONS = (11, 12)
MAGIC_BYTES = struct.pack("<i", MAGIC)
_ARGS = struct.Struct("<12id")
_ARG_NAMES = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams",
              "loss", "model", "bucket", "minn", "maxn", "lr_update_rate")
_DICT = struct.Struct("<3i2q")
_OLD_DICT = struct.Struct("<3iq")  # no pruneidx_size
# The bytes `is_fasttext` needs: an old model's arguments and dictionary
# header.
HEAD_BYTES = _ARGS.size + _OLD_DICT.size
LOSSES = (1, 2, 3)  # hs, ns, softmax: the choices before version 11
MODELS = (1, 2, 3)  # cbow, sg, sup
_MATRIX = struct.Struct("<2q")
SUPERVISED = 3  # fastText's model_name::sup
# The largest dim (a row must fit a binary record's limit) and n-gram size.
MAX_DIM = 1 << 22
MAX_NGRAM = 64
# An entry: a word of at most MAX_TOKEN_BYTES bytes (maybe none, as
# fastText reads it), its NUL, 9 bytes.
_ENTRY = re.compile(rb"([^\0]{0,%d})\0(.{9})" % MAX_TOKEN_BYTES, re.DOTALL)
_ENTRY_FIXED = 10  # the NUL, the count and the type
_ENTRY_TAIL = np.dtype([("count", "<i8"), ("type", "i1")])


def is_fasttext(head):
    """Whether a file starting with `head` (its first `HEAD_BYTES` bytes,
    or all of a shorter file) is a fastText model: fastText's magic
    number, or the header of a model from before it (`is_old_fasttext`)."""
    return head[:4] == MAGIC_BYTES or is_old_fasttext(head)


def is_old_fasttext(head):
    """Whether `head` starts like a fastText model without a magic number:
    training arguments in their ranges, then a dictionary header."""
    if len(head) < HEAD_BYTES:
        return False
    *ints, t = _ARGS.unpack_from(head, 0)
    args = dict(zip(_ARG_NAMES, ints))
    size, nwords, nlabels, ntokens = _OLD_DICT.unpack_from(head, _ARGS.size)
    return (1 <= args["dim"] <= MAX_DIM and args["ws"] >= 1
            and args["epoch"] >= 1 and args["min_count"] >= 0
            and args["neg"] >= 0 and args["word_ngrams"] >= 1
            and args["loss"] in LOSSES and args["model"] in MODELS
            and args["bucket"] >= 0 and 0 <= args["minn"] <= MAX_NGRAM
            and 0 <= args["maxn"] <= MAX_NGRAM
            and args["lr_update_rate"] >= 0 and math.isfinite(t)
            and 0 <= t <= 1 and 0 <= nwords <= size
            and nlabels == size - nwords and ntokens >= 0)


class ModelHeader:
    """What `read_header` finds in a fastText model: its arguments, its
    dictionary, and where its input matrix is (the rows stay in the file).

    Attributes: `name`, `path`, `dim`, `minn`, `maxn`, `bucket`, `nwords`,
    `words` (the dictionary's words and labels, in file order), `rows` (the
    input matrix's row count), `offset` (the byte offset of its first
    value) and `old` (a model without a magic number).
    """


# The name before `ModelHeader`: a `FastTextVectors` pickled then holds a
# `_fasttext.Model`, and still unpickles.
Model = ModelHeader


def _fail(name, offset, what):
    """The error at `offset`; `read_header` adds which layout it read."""
    return VectorFileError(f"{name}: byte offset {offset:,}: {what}")


_NOT_COMPLETE = (
    " This is not a complete fastText .bin model (fastText 0.9 or gensim's "
    "save_facebook_model)."
)
_NOT_COMPLETE_OLD = (
    " This is not a complete fastText .bin model of the layout before "
    "fastText's magic number (2016; gensim's load_facebook_vectors reads "
    "it), which its start looks like."
)


def _unpack(view, name, struct_, offset, what):
    if offset + struct_.size > len(view):
        raise _fail(name, offset, f"the file is truncated: it ends inside "
                    f"the {what} ({struct_.size} bytes needed, "
                    f"{len(view) - offset} left).")
    return struct_.unpack_from(view, offset)


def _check_args(name, args, start):
    values = dict(zip(_ARG_NAMES, args))

    def offset(key):
        return start + 4 * _ARG_NAMES.index(key)

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
        stop = min(len(view), pos + 32 * left + MAX_TOKEN_BYTES
                   + _ENTRY_FIXED)
        found = _ENTRY.findall(view, pos, stop)[:left]
        data = b"".join([word + b"\0" + tail for word, tail in found])
        if not found or view[pos:pos + len(data)] != data:
            entries += _entries_until_error(view, name, pos, size,
                                            len(entries))
        entries += found
        pos += len(data)
    words = [word for word, _ in entries]
    tails = b"".join([tail for _, tail in entries])
    types = np.frombuffer(tails, _ENTRY_TAIL)["type"] if tails else (
        np.zeros(0, np.int8))
    return words, types, pos


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
    else:
        problem = "the file ends inside the entry"
    raise _fail(name, pos, f"dictionary entry {done + 1:,} of {size:,}: "
                f"{problem}.")


def _decode(name, offset, words, errors, notes):
    """The words as str. fastText keeps words as bytes, whatever they are:
    with `errors="strict"` a word that is not valid UTF-8 is kept too, each
    invalid byte as a character U+DC80-U+DCFF (Python's "surrogateescape",
    as `os.fsdecode` does), so that its n-grams hash to fastText's, with
    a warning (added to `notes`); "replace" and "ignore" change such words,
    as asked."""
    try:
        return [word.decode("utf-8") for word in words]
    except UnicodeDecodeError:
        pass
    handler = "surrogateescape" if errors == "strict" else errors
    decoded, pos, invalid, first = [], offset, 0, None
    for word in words:
        try:
            decoded.append(word.decode("utf-8"))
        except UnicodeDecodeError as error:
            invalid += 1
            if first is None:
                first = (word, pos + error.start)
            decoded.append(word.decode("utf-8", handler))
        pos += len(word) + _ENTRY_FIXED
    if errors == "strict":
        word, at = first
        notes.append(
            f"{name}: {invalid:,} dictionary word(s) are not valid UTF-8; "
            f"the first, {word[:60]!r}, at byte offset {at:,}. As fastText "
            "reads them (as bytes), they are kept, each invalid byte as a "
            "character U+DC80-U+DCFF (Python's 'surrogateescape'), so "
            "their vectors are fastText's. Pass unicode_errors='replace' "
            "or 'ignore' to change them instead."
        )
    return decoded


def _note_repeated(name, start, raw, words, notes):
    """A warning (added to `notes`) for the words the dictionary holds more
    than once."""
    last = {word: i for i, word in enumerate(words)}
    if len(last) == len(words):
        return
    first = next(i for i, word in enumerate(words) if last[word] != i)
    sizes = np.fromiter((len(word) + _ENTRY_FIXED for word in raw),
                        np.int64, len(raw))
    offsets = start + np.cumsum(sizes) - sizes
    word, again = words[first], last[words[first]]
    notes.append(
        f"{name}: the dictionary holds {len(words) - len(last):,} repeated "
        f"word(s); as in fastText, the last copy of each is the one used "
        f"(its row), and `words` lists it once, there. The first is "
        f"{word[:60]!r}: entries {first + 1:,} and {again + 1:,} (byte "
        f"offsets {offsets[first]:,} and {offsets[again]:,})."
    )


def _read_dictionary(view, name, model, unicode_errors, offset, notes):
    if model.old:
        size, nwords, nlabels, _ = _unpack(view, name, _OLD_DICT, offset,
                                           "dictionary header")
        pruned = -1  # pruning came later
        start = offset + _OLD_DICT.size
    else:
        size, nwords, nlabels, _, pruned = _unpack(view, name, _DICT, offset,
                                                   "dictionary header")
        start = offset + _DICT.size
    most = (len(view) - offset) // _ENTRY_FIXED  # the shortest entry
    if not (0 <= nwords <= size <= most and nlabels == size - nwords):
        raise _fail(name, offset, f"the dictionary header says size="
                    f"{size:,}, nwords={nwords:,}, nlabels={nlabels:,}: it "
                    "needs 0 <= nwords <= size = nwords + nlabels, and at "
                    f"most {most:,} entries fit in the file.")
    words, types, pos = _read_entries(view, name, start, size)
    bad = np.flatnonzero(types != (np.arange(size) >= nwords))
    if len(bad):
        raise _fail(name, start, f"dictionary entry {bad[0] + 1:,} has type "
                    f"{types[bad[0]]}; the first nwords={nwords:,} entries "
                    "must be words (type 0) and the rest labels (type 1).")
    model.words = _decode(name, start, words, unicode_errors, notes)
    model.nwords = nwords
    _note_repeated(name, start, words, model.words, notes)
    if pruned > 0:
        raise _fail(name, offset + 20, f"pruneidx_size={pruned:,}: pruned "
                    "models (fastText quantize -cutoff) are not supported.")
    if pruned == 0:
        model.maxn = 0  # as fastText: every n-gram was pruned
    return pos


def _check_matrix(view, name, model, pos):
    # A byte says whether the matrix is quantized (not in old models).
    flag = 0 if model.old else 1
    if pos >= len(view):
        raise _fail(name, pos, "the file is truncated: it ends before the "
                    "input matrix.")
    if flag and view[pos] != 0:
        raise _fail(name, pos, "the input matrix is quantized (a .ftz model "
                    "from fastText quantize): quantized models are not "
                    "supported; use the model's .bin file (or its .vec).")
    pos += flag
    rows, cols = _unpack(view, name, _MATRIX, pos, "input matrix header")
    expected = model.nwords + model.bucket
    if rows != expected or cols != model.dim:
        raise _fail(name, pos, f"the input matrix is {rows:,} x "
                    f"{cols:,}; the header needs {expected:,} x {model.dim:,}"
                    f" (nwords + bucket rows, dim columns).")
    model.rows, model.offset = rows, pos + _MATRIX.size
    end = model.offset + 4 * rows * cols
    if end > len(view):
        raise _fail(name, model.offset, f"the file is truncated: the input "
                    f"matrix of {rows:,} x {cols:,} float32 needs "
                    f"{end - model.offset:,} bytes, only "
                    f"{len(view) - model.offset:,} follow.")
    if end >= len(view):
        raise _fail(name, end, "the file is truncated: it ends before the "
                    "output matrix.")
    if not flag or view[end] == 0:
        rows, cols = _unpack(view, name, _MATRIX, end + flag,
                             "output matrix header")
        needed = 4 * rows * cols
        left = len(view) - end - flag - _MATRIX.size
        if rows < 0 or cols < 0 or needed > left:
            raise _fail(name, end + flag, f"the output matrix of {rows:,} x "
                        f"{cols:,} float32 needs {max(needed, 0):,} bytes, "
                        f"only {left:,} follow: the file is truncated.")


def read_header(source, path, unicode_errors="strict"):
    """Reads the header and dictionary of the fastText model at `path`
    (opened as `source`, a `Source`); returns a `ModelHeader`."""
    name = source.name
    if source.compression is not None:
        raise VectorFileError(
            f"{name}: this is a {source.compression}-compressed fastText "
            "model; its matrix is read in place, so decompress it first."
        )
    if source.size == 0:
        raise VectorFileError(f"{name}: the file is empty.")
    view = mmap.mmap(source.raw.fileno(), 0, access=mmap.ACCESS_READ)
    model = ModelHeader()
    model.name, model.path = name, os.path.abspath(path)
    model.old = view[:4] != MAGIC_BYTES and is_old_fasttext(
        view[:HEAD_BYTES])
    notes = []  # warnings, given once the whole model is read
    try:
        start = 0
        if not model.old:
            magic, version = _unpack(view, name, struct.Struct("<2i"), 0,
                                     "magic number and version")
            if magic != MAGIC:
                raise _fail(name, 0, f"the magic number is {magic}, not "
                            f"fastText's {MAGIC}, and the file does not "
                            "start like a model from before it either.")
            if version not in VERSIONS:
                raise _fail(name, 4, f"the format version is {version}; "
                            "fastText .bin models of versions 11 and 12 "
                            "(and older ones without a version) are read.")
            start = 8
        values = _check_args(name, _unpack(view, name, _ARGS, start,
                                           "training arguments"), start)
        for key in ("dim", "minn", "maxn", "bucket"):
            setattr(model, key, values[key])
        if (model.old or version == 11) and values["model"] == SUPERVISED:
            model.maxn = 0  # as fastText: old supervised, no n-grams
        pos = _read_dictionary(view, name, model, unicode_errors,
                               start + _ARGS.size, notes)
        _check_matrix(view, name, model, pos)
    except VectorFileError as error:
        suffix = _NOT_COMPLETE_OLD if model.old else _NOT_COMPLETE
        raise VectorFileError(f"{error}{suffix}") from None
    finally:
        try:
            view.close()
        except BufferError:  # a traceback still holds a match
            pass
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return model
