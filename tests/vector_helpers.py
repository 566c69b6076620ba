"""Shared by the vector-file tests, which use no Keras."""

import struct

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def seed_everything():
    """Overrides the conftest fixture: these tests use no Keras, so they skip
    its Keras seeding and per-test `clear_session`."""
    np.random.seed(1234)
    yield


def write(tmp_path, data, name="vectors.txt"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def assert_bits_equal(actual, expected):
    """Equal float32 values, bit for bit (NaN payloads and -0.0 included)."""
    actual = np.asarray(actual, np.float32)
    expected = np.asarray(expected, np.float32)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(
        actual.view(np.uint32), expected.view(np.uint32)
    )


FASTTEXT_MAGIC = 793712314


def fasttext_model(words, matrix, minn=3, maxn=6, bucket=None, labels=(),
                   version=12, quantized=False, output_rows=1, old=False):
    """The bytes of a fastText `.bin` model (the layout fastText 0.9
    writes): `matrix` is the input matrix, `len(words) + bucket` rows (by
    default bucket is what is left after the words' rows). `old`: the
    layout from before the magic number (no magic, version, pruneidx_size
    nor quantization bytes)."""
    matrix = np.asarray(matrix, "<f4")
    rows, dim = matrix.shape
    bucket = rows - len(words) if bucket is None else bucket
    # dim, ws, epoch, minCount, neg, wordNgrams, loss (ns), model (sg),
    # bucket, minn, maxn, lrUpdateRate, t
    args = struct.pack("<12id", dim, 5, 5, 1, 5, 1, 2, 2, bucket, minn, maxn,
                       100, 1e-4)
    entries = [(w, 0) for w in words] + [(w, 1) for w in labels]
    dictionary = struct.pack("<3i2q", len(entries), len(words), len(labels),
                             1000, -1)
    if old:
        dictionary = dictionary[:-8]
    dictionary += b"".join(
        (w if isinstance(w, bytes) else w.encode()) + b"\0"
        + struct.pack("<qb", 7, kind) for w, kind in entries
    )
    if old:
        return b"".join([
            args, dictionary, struct.pack("<2q", rows, dim), matrix.tobytes(),
            struct.pack("<2q", output_rows, dim),
            bytes(4 * output_rows * dim),
        ])
    return b"".join([
        struct.pack("<2i", FASTTEXT_MAGIC, version), args, dictionary,
        bytes([quantized]), struct.pack("<2q", rows, dim), matrix.tobytes(),
        b"\0", struct.pack("<2q", output_rows, dim),
        bytes(4 * output_rows * dim),
    ])
