"""Hostile and odd vectors files: the loader fails clearly, never silently.

Each test here reproduces a problem found in the loader (issue 12 of the
tracker); the item number is in the test's docstring or comment.
"""

import bz2
import gzip
import lzma
import os
import struct
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from vector_helpers import (  # noqa: F401
    assert_bits_equal,
    fasttext_model,
    seed_everything,
    write,
)

from keras_embedlab import vectors as _vector_formats
from keras_embedlab.vectors import VectorFileError, Vectors, load_vectors

# The code under test never reads KERAS_BACKEND: `make test` runs this
# module in its first backend's session only (pyproject.toml, markers).
pytestmark = pytest.mark.backend_independent

MAX_LINE = _vector_formats.MAX_LINE_BYTES
MAX_TOKEN = _vector_formats.MAX_TOKEN_BYTES


def error_of(path, **kwargs):
    with pytest.raises(VectorFileError) as info:
        load_vectors(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    return message


def record(token, values):
    return token + b" " + struct.pack(f"<{len(values)}f", *values)


# ---------------------------------------------- 8: non-finite values


@pytest.mark.parametrize(
    "field, kind",
    [
        ("nan", "NaN"),
        ("-NaN", "NaN"),
        ("inf", "infinite"),
        ("-Infinity", "infinite"),
        ("3.5e38", "overflows float32"),
        ("-1e39", "overflows float32"),
        ("1" + "0" * 39, "overflows float32"),
    ],
)
@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
def test_nonfinite_text_value_names_line_and_column(
    tmp_path, field, kind, header
):
    text = f"a 1 2 3\nbb 4 {field} 6\nc 7 8 9\n"
    path = write(tmp_path, ("3 3\n" if header else "") + text)
    message = error_of(path)
    line = 3 if header else 2
    assert f"line {line}: value 2 of 3, {field.encode()!r}, " in message
    assert "column 6" in message and kind in message
    assert "nonfinite='skip'" in message


def test_nonfinite_after_the_first_chunk_and_in_slow_rows(tmp_path):
    lines = [f"w{i} {i}.5 -{i}.25" for i in range(60_000)]
    lines[45_000] = "w45000\t1.5  inf"  # tab and a run: the general path
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert path.stat().st_size > 2 * _vector_formats.CHUNK_SIZE
    message = error_of(path)
    assert "line 45001: value 2 of 2, b'inf', is not finite" in message
    assert "column 13" in message


def test_largest_float32_is_finite(tmp_path):
    path = write(tmp_path, "a 3.4028235e38 -3.4028234663852886e38 1e-45\n")
    vectors = load_vectors(path)
    expected = np.array([3.4028235e38, -3.4028235e38, 1e-45], np.float32)
    assert_bits_equal(vectors["a"], expected)


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
def test_nonfinite_binary_names_record_and_offset(tmp_path, suffix):
    data = b"3 2\n" + b"\n".join(
        [
            record(b"a", [1.0, 2.0]),
            record(b"bb", [3.0, float("inf")]),
            record(b"c", [5.0, 6.0]),
        ]
    )
    path = write(
        tmp_path, gzip.compress(data) if suffix else data, "v.bin" + suffix
    )
    message = error_of(path)
    # "3 2\n" + "a " + 8 bytes + "\n" = 15 bytes before "bb"; its second
    # value starts 3 + 4 bytes later.
    assert "record 2 at byte offset 15" in message
    assert "value 2 of 2 is inf (at byte offset 22)" in message
    assert "nonfinite='skip'" in message


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_nonfinite_skip_leaves_out_rows_with_one_warning(tmp_path, binary):
    nan, inf = float("nan"), float("inf")
    rows = [
        ("a", [1.0, 2.0]),
        ("b", [nan, 1.0]),
        ("c", [3.0, 4.0]),
        ("b", [5.0, 6.0]),  # a duplicate of a skipped row stays dropped
        ("d", [-inf, 0.0]),
        ("e", [7.0, 8.0]),
    ]
    if binary:
        data = b"6 2\n" + b"".join(
            record(w.encode(), v) + b"\n" for w, v in rows
        )
    else:
        data = "".join(f"{w} {v[0]} {v[1]}\n" for w, v in rows).encode()
    path = write(tmp_path, data)
    with pytest.warns(UserWarning) as record_:
        vectors = load_vectors(path, nonfinite="skip")
    messages = [str(w.message) for w in record_]
    assert len(messages) == 2, messages
    assert any(
        "left out 2 row(s) with a NaN or infinite value" in m
        and "the first is 'b' at " in m
        for m in messages
    )
    assert any("dropped 1 duplicate" in m for m in messages)
    assert vectors.words == ["a", "c", "e"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4], [7, 8]])
    assert vectors.index("e") == 2 and "b" not in vectors
    with pytest.warns(UserWarning, match="dropped 1 duplicate"):
        kept = load_vectors(path, nonfinite="keep", vocabulary={"b", "d"})
    assert kept.words == ["b", "d"]
    assert np.isnan(kept["b"][0]) and kept["d"][0] == -np.inf


def test_nonfinite_skip_with_many_rows_across_chunks(tmp_path):
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(30_000, 8)).astype(np.float32)
    bad = np.sort(rng.choice(30_000, 400, replace=False))
    matrix[bad, rng.integers(0, 8, 400)] = np.nan
    vectors = Vectors([f"w{i}" for i in range(30_000)], matrix)
    path = tmp_path / "v.txt"
    vectors.save(path)
    assert path.stat().st_size > 2 * _vector_formats.CHUNK_SIZE
    with pytest.warns(UserWarning, match="left out 400 row"):
        loaded = load_vectors(path, nonfinite="skip")
    good = np.setdiff1d(np.arange(30_000), bad)
    assert loaded.words == [f"w{i}" for i in good]
    assert_bits_equal(loaded.matrix, matrix[good])
    assert [loaded.index(f"w{i}") for i in good[:3]] == [0, 1, 2]


def test_nonfinite_argument_is_checked(tmp_path):
    with pytest.raises(ValueError, match="`nonfinite` must be one of"):
        load_vectors(tmp_path / "missing.txt", nonfinite="drop")


# ------------------------------------------------ 9: line breaks, fields


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
def test_lone_carriage_return_is_an_error_naming_line_and_column(
    tmp_path, header
):
    data = (b"3 2\n" if header else b"") + b"a 1 2\nb 3 4\rc 5 6\nd 7 8\n"
    path = write(tmp_path, data)
    message = error_of(path)
    line = 3 if header else 2
    assert f"line {line}, column 6: a carriage return" in message
    assert "\\r\\n" in message


def test_lone_carriage_return_deep_in_a_file(tmp_path):
    lines = [b"w%d 1 2" % i for i in range(100_000)]
    lines[70_000] = b"w70000 1\r 2"
    path = write(tmp_path, b"\r\n".join(lines) + b"\r\n")
    assert "line 70001, column 9: a carriage return" in error_of(path)


@pytest.mark.parametrize("byte", [b"\x0b", b"\x0c", b"\x1c", b"\x85"])
def test_only_spaces_and_tabs_separate_fields(tmp_path, byte):
    # Vertical tab, form feed and others are ordinary token bytes.
    data = b"a" + byte + b" 1 2\nx" + byte + b"y\t3\t4\n" + byte + b"z 5 6\n"
    vectors = load_vectors(write(tmp_path, data), encoding="latin-1")
    word = byte.decode("latin-1")
    assert vectors.words == [f"a{word}", f"x{word}y", f"{word}z"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4], [5, 6]])


def test_vertical_tab_inside_a_value_is_not_a_number(tmp_path):
    path = write(tmp_path, b"a 1 2\nb 3\x0b4 5\n")
    message = error_of(path)
    assert "line 2: value 1 of 2, b'3\\x0b4', is not a number" in message
    path = write(tmp_path, b"a 1 2\nb 3 4\x0c\n")
    assert "line 2: value 2 of 2, b'4\\x0c', is not a number" in error_of(path)


def test_crlf_and_trailing_blanks_still_read(tmp_path):
    data = b"2 2 \r\na 1 2\t \r\nb 3 4  \r\n\r\n \t\r\n"
    vectors = load_vectors(write(tmp_path, data))
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


# ------------------------------------------------ 10: linear time, limits


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
def test_long_runs_of_trailing_spaces(tmp_path, suffix):
    # The old loader removed one trailing space per pass over the chunk:
    # 40,000 spaces took 6 s, this input minutes. Correctness only here.
    data = b"a 1 2" + b" " * 300_000 + b"\nb 3 4" + b"\t " * 50_000 + b"\n"
    compress = gzip.compress if suffix else bytes
    path = write(tmp_path, compress(data), "v.txt" + suffix)
    vectors = load_vectors(path)
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


def test_long_runs_of_separators_between_values(tmp_path):
    data = b"a" + b" " * 200_000 + b"1\t2\nb 3" + b"\t" * 300_000 + b"4\n"
    vectors = load_vectors(write(tmp_path, data))
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "prefix, line",
    [(b"", 1), (b"1 3\n", 2), (b"a 1 2\n", 2), (b"\n\n", 3)],
    ids=["glove-first", "word2vec", "glove-second", "after-blanks"],
)
def test_line_over_the_limit_is_an_error(tmp_path, prefix, line):
    # A file without line breaks used to be held whole, in quadratic time.
    data = prefix + b"tok" + b" 1" * (MAX_LINE // 2)
    path = write(tmp_path, data)
    message = error_of(path)
    assert f"line {line} is longer than {MAX_LINE:,} bytes" in message


def test_line_at_the_limit_loads(tmp_path):
    line = b" " * (MAX_LINE - 2) + b"1"  # MAX_LINE bytes with a token
    data = b"a 2\nt" + line + b"\nu" + line  # the last one unterminated
    vectors = load_vectors(write(tmp_path, data))
    assert vectors.words == ["a", "t", "u"]
    np.testing.assert_array_equal(vectors.matrix, [[2], [1], [1]])


def test_gzip_without_line_breaks_stops_at_the_limit(tmp_path):
    path = write(tmp_path, gzip.compress(b"x" * (2 * MAX_LINE)), "v.gz")
    assert f"line 1 is longer than {MAX_LINE:,} bytes" in error_of(path)


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
def test_text_token_length_limit(tmp_path, header):
    ok, long = "k" * MAX_TOKEN, "x y" + "z" * (MAX_TOKEN - 2)
    text = f"{ok} 1 2\n{long} 3 4\n"
    path = write(tmp_path, ("2 2\n" if header else "") + text)
    message = error_of(path)
    line = 3 if header else 2
    assert f"line {line}: the token is {MAX_TOKEN + 1:,} bytes long" in message
    assert f"limit is {MAX_TOKEN:,}" in message
    assert load_vectors(path, limit=1).words == [ok]


def test_binary_token_length_limit(tmp_path):
    ok = b"k" * MAX_TOKEN
    data = b"2 1\n" + record(b"a", [1]) + b"\n" + record(ok, [2]) + b"\n"
    vectors = load_vectors(write(tmp_path, data, "v.bin"))
    assert vectors.words == ["a", ok.decode()]
    data = b"2 1\n" + record(b"a", [1]) + b"\n" + record(ok + b"k", [2])
    message = error_of(write(tmp_path, data, "v.bin"))
    assert "record 2 at byte offset 11" in message
    assert f"no space within {MAX_TOKEN + 1:,} bytes" in message


# ------------------------------------------- 11: sizes before allocation


@pytest.mark.parametrize(
    "header",
    [b"1 100000000000", b"1 99999999999999999999", b"2 20000000"],
)
@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
@pytest.mark.parametrize("fmt", ["auto", "word2vec-text", "word2vec-binary"])
def test_huge_header_dim_is_refused_before_allocating(
    tmp_path, header, suffix, fmt
):
    data = header + b"\na 1 2\n"
    compress = gzip.compress if suffix else bytes
    path = write(tmp_path, compress(data), "v" + suffix)
    message = error_of(path, format=fmt)
    dim = int(header.split()[1])
    assert f"dim={dim:,}" in message
    assert f"{MAX_LINE:,}-byte limit" in message


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_header_count_beyond_the_file_size(tmp_path, binary):
    row = record(b"a", [0.5] * 300) if binary else b"a" + b" 0.5" * 300
    path = write(tmp_path, b"1000000000 300\n" + row + b"\n")
    message = error_of(path)
    if binary:  # Checked before reading: 1.2 TB cannot follow the header.
        assert "header says 1,000,000,000 vectors of dim=300" in message
    assert "truncated" in message and "1000000000" in message.replace(",", "")
    assert load_vectors(path, limit=1).words == ["a"]


@pytest.mark.parametrize("fmt", ["glove", "word2vec-text", "word2vec-binary"])
def test_compressed_file_with_large_dim_loads(tmp_path, fmt):
    # The old loader allocated 65,536 rows for any compressed file: 24 GiB
    # for 100,000 dims.
    matrix = (np.arange(300_000, dtype=np.float32) % 7).reshape(3, -1)
    path = tmp_path / "v.gz"
    Vectors(["a", "b", "c"], matrix).save(path, format=fmt)
    vectors = load_vectors(path)
    assert vectors.words == ["a", "b", "c"]
    assert_bits_equal(vectors.matrix, matrix)


def test_binary_record_larger_than_a_chunk(tmp_path):
    dim = 3 * _vector_formats.CHUNK_SIZE // 4 + 5
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(3, dim)).astype(np.float32)
    path = tmp_path / "v.bin.gz"
    Vectors(["a", "b", "c"], matrix).save(path, format="word2vec-binary")
    vectors = load_vectors(path)
    assert vectors.words == ["a", "b", "c"]
    assert_bits_equal(vectors.matrix, matrix)


# ------------------------------------------------ 12: save and read back


def test_glove_save_with_spaced_tokens_reads_back(tmp_path):
    words = ["a b", "c d e", "f\tg", "h  i", "1 x", "2019", "nan"]
    matrix = np.arange(14, dtype=np.float32).reshape(7, 2) - 3.5
    path = tmp_path / "v.txt"
    Vectors(words, matrix).save(path, format="glove")
    for fmt in ("auto", "glove"):
        vectors = load_vectors(path, format=fmt)
        assert vectors.words == words
        assert_bits_equal(vectors.matrix, matrix)


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_tokens_at_the_length_limit_round_trip(tmp_path, fmt):
    words = ["a", "b" * MAX_TOKEN, "東" * (MAX_TOKEN // 3), "c"]
    matrix = np.arange(8, dtype=np.float32).reshape(4, 2)
    path = tmp_path / "v"
    Vectors(words, matrix).save(path, format=fmt)
    vectors = load_vectors(path)
    assert vectors.words == words
    assert_bits_equal(vectors.matrix, matrix)
    too_long = Vectors(["a", "é" * (MAX_TOKEN // 2 + 1)], matrix[:2])
    with pytest.raises(ValueError) as info:
        too_long.save(path, format=fmt)
    message = str(info.value)
    assert "'éééé" in message and f"{MAX_TOKEN + 2:,} bytes" in message
    assert f"limit is {MAX_TOKEN:,}" in message


@pytest.mark.parametrize(
    "word, fmt, problem",
    [
        ("a\x0b", "glove", None),
        ("\x0cb", "word2vec-text", None),
        ("x\x01y", "glove", None),
        ("a\x0b", "word2vec-binary", "control"),
        ("a b\x0b1", "glove", None),  # "\x0b1" is not a number
        ("a\t1", "word2vec-text", "number"),
        ("a 1e5", "glove", "number"),
        ("a -nan", "glove", "number"),
        ("a\tb", "word2vec-binary", None),
        ("\ta", "word2vec-binary", "whitespace"),
        ("a\r", "glove", "line break"),
    ],
)
def test_save_accepts_exactly_what_load_reads(tmp_path, word, fmt, problem):
    vectors = Vectors(["w", word], [[1.0, 2.0], [3.0, 4.0]])
    path = tmp_path / "v"
    if problem:
        with pytest.raises(ValueError, match=problem) as info:
            vectors.save(path, format=fmt)
        assert repr(word) in str(info.value)
        return
    vectors.save(path, format=fmt)
    loaded = load_vectors(path, format=fmt)
    assert loaded.words == ["w", word]
    np.testing.assert_array_equal(loaded.matrix, vectors.matrix)


def test_text_formats_refuse_nan_payloads_and_keep_the_nan_sign(tmp_path):
    bits = np.array([[0x7FC00000, 0xFFC00000, 0x3F800000]], np.uint32)
    vectors = Vectors(["n"], bits.view(np.float32))
    for fmt in ("word2vec-text", "glove", "word2vec-binary"):
        path = tmp_path / f"v.{fmt}"
        vectors.save(path, format=fmt)
        loaded = load_vectors(path, nonfinite="keep")
        np.testing.assert_array_equal(loaded.matrix.view(np.uint32), bits)
    assert (tmp_path / "v.glove").read_text() == "n nan -nan 1\n"
    payload = np.array([[1.0, 0.0]], np.float32)
    payload.view(np.uint32)[0, 1] = 0x7FC00001
    for fmt in ("word2vec-text", "glove"):
        with pytest.raises(ValueError) as info:
            Vectors(["p"], payload).save(tmp_path / "p", format=fmt)
        message = str(info.value)
        assert "'p'" in message and "value 2" in message
        assert "0x7fc00001" in message and "word2vec-binary" in message
    Vectors(["p"], payload).save(tmp_path / "p", format="word2vec-binary")
    loaded = load_vectors(tmp_path / "p", nonfinite="keep")
    assert_bits_equal(loaded.matrix, payload)


def test_word2vec_text_with_blank_lines_after_the_header(tmp_path):
    # With 10 rows of dim 5 the old detector took this for binary.
    rows = "".join(
        f"w{i} " + " ".join(f"{i + j}.5" for j in range(5)) + "\n"
        for i in range(10)
    )
    for blank in ("\n", "\n \t\r\n\n"):
        path = write(tmp_path, "10 5\n" + blank + rows)
        vectors = load_vectors(path)
        assert vectors.words == [f"w{i}" for i in range(10)]
        np.testing.assert_array_equal(vectors["w3"], [3.5, 4.5, 5.5, 6.5, 7.5])


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
@pytest.mark.parametrize("suffix", ["", ".bz2"], ids=["raw", "bz2"])
def test_leading_blank_lines_longer_than_a_chunk(tmp_path, header, suffix):
    blanks = b"\n" * 400_000 + b" \t\r\n" * 100_000
    rows = b"a 1 2\nc 5 6\nb 3\n"
    data = blanks + (b"3 2\n" if header else b"") + rows
    compress = bz2.compress if suffix else bytes
    path = write(tmp_path, compress(data), "v" + suffix)
    line = 500_001 + 2 + header
    assert f"line {line} has 2 fields" in error_of(path)
    vectors = load_vectors(path, limit=1)
    assert vectors.words == ["a"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2]])


def test_file_of_blank_lines_is_empty(tmp_path):
    path = write(tmp_path, b"\n \t\r\n" * 300_000)
    assert "no vectors" in error_of(path)


# ---------------------------------------------- 13: vocabulary and limit


BAD_ROWS = [
    pytest.param(b"bad 1\n", "line 3 has 2 fields", id="short"),
    pytest.param(b"bad 1 2 3\n", "line 3 has more than 2 values", id="long"),
    pytest.param(b"bad 1\r2 3\n", "line 3, column 6", id="cr"),
    pytest.param(b"b\xffd 1 2\n", "line 3: the token", id="utf8"),
    pytest.param(b"x" * 10_001 + b" 1 2\n", "line 3: the token", id="len"),
]


@pytest.mark.parametrize("bad, message", BAD_ROWS)
def test_every_row_read_is_checked_with_or_without_vocabulary(
    tmp_path, bad, message
):
    path = write(tmp_path, b"a 1 2\nb 3 4\n" + bad + b"c 5 6\n")
    for vocabulary in (None, {"a"}, {"c"}, set()):
        assert message in error_of(path, vocabulary=vocabulary)


@pytest.mark.parametrize("bad, message", BAD_ROWS)
def test_rows_after_the_limit_are_never_read(tmp_path, bad, message):
    path = write(tmp_path, b"a 1 2\nb 3 4\n\n" + bad + b"c 5 6\n")
    vectors = load_vectors(path, limit=2)
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])
    message = message.replace("line 3", "line 4")
    assert message in error_of(path, limit=3)


def test_values_are_parsed_only_for_rows_returned(tmp_path):
    path = write(tmp_path, "a 1 2\nb x nan\nc 5 6\n")
    vectors = load_vectors(path, vocabulary={"a", "c"})
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [5, 6]])
    assert "line 2: value 1 of 2, b'x'" in error_of(path)


def test_binary_records_after_the_limit_are_never_read(tmp_path):
    data = b"3 2\n" + record(b"a", [1, 2]) + record(b"b", [3, 4])
    data += b"\x01bad " + bytes(8)
    path = write(tmp_path, data, "v.bin")
    vectors = load_vectors(path, limit=2)
    assert vectors.words == ["a", "b"]
    message = error_of(path)
    assert "record 3 at byte offset 24 does not start with a token" in message


def test_header_count_with_rows_after_it(tmp_path):
    # Rows past the header's count are an error even when malformed.
    path = write(tmp_path, b"2 2\na 1 2\nb 3 4\n\n\nbad\n")
    assert "line 6: the header says 2 vectors" in error_of(path)
    assert load_vectors(path, limit=2).words == ["a", "b"]


# ------------------------------------------------ 14: non-regular files


def test_directory_is_refused(tmp_path):
    message = error_of(tmp_path)
    assert "not a regular file (a directory)" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_is_refused_without_opening(tmp_path):
    fifo = tmp_path / "v.fifo"
    os.mkfifo(fifo)

    def unblock():  # Lets an old loader's open() return instead of hanging.
        time.sleep(3)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    threading.Thread(target=unblock, daemon=True).start()
    message = error_of(fifo)
    assert "not a regular file (a FIFO" in message


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_character_device_is_refused():
    with pytest.raises(VectorFileError) as info:
        load_vectors("/dev/zero")
    assert "/dev/zero: not a regular file (a character device)" in str(
        info.value
    )


def test_symlink_to_a_file_is_read(tmp_path):
    target = write(tmp_path, "a 1 2\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert load_vectors(link).words == ["a"]


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vectors(tmp_path / "missing.txt")


# ------------------------------------------- 16: compression signatures


@pytest.mark.parametrize(
    "start",
    [b"BZh", b"BZh9", b"BZh91AY&S", b"\x1f\x8b", b"\xfd7zXZ", b"(\xb5/"],
)
def test_tokens_that_start_like_a_compression_magic(tmp_path, start):
    data = start + b" 1 2\nb 3 4\n"
    vectors = load_vectors(write(tmp_path, data), encoding="latin-1")
    assert vectors.words == [start.decode("latin-1"), "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


def test_empty_bzip2_and_gzip_streams(tmp_path):
    for name, compress in (("v.bz2", bz2.compress), ("v.gz", gzip.compress)):
        path = write(tmp_path, compress(b""), name)
        assert "the file is empty" in error_of(path)


def test_bzip2_with_each_block_size(tmp_path):
    data = b"2 2\na 1 2\nb 3 4\n"
    for level in (1, 5, 9):
        path = write(tmp_path, bz2.compress(data, level), "v.bz2")
        assert load_vectors(path).words == ["a", "b"]


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="zstd supported")
def test_zstd_file_is_named_not_misread(tmp_path):
    data = bytes.fromhex("28b52ffd2400790000") + b"a 1 2\n"  # one frame
    message = error_of(write(tmp_path, data, "v.zst"))
    assert "zstd-compressed" in message and "zstd -d" in message


@pytest.mark.skipif(sys.version_info < (3, 14), reason="no zstd module")
def test_zstd_file_loads(tmp_path):
    from compression import zstd

    path = write(tmp_path, zstd.compress(b"2 2\na 1 2\nb 3 4\n"), "v.zst")
    vectors = load_vectors(path)
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


def test_xz_still_detected(tmp_path):
    path = write(tmp_path, lzma.compress(b"a 1 2\n"), "v")
    assert load_vectors(path).words == ["a"]


def test_arguments_are_checked_before_the_file(tmp_path):
    fifo = tmp_path / "missing.txt"  # does not exist: argument errors first
    for kwargs in (
        {"limit": 0},
        {"format": "x"},
        {"nonfinite": None},
        {"vocabulary": "ab"},
        {"encoding": "utf-16"},
    ):
        with pytest.raises(ValueError):
            load_vectors(fifo, **kwargs)
    with pytest.raises(TypeError, match="`path` must be"):
        load_vectors(None)
    with pytest.raises(TypeError, match="`path` must be"):
        load_vectors(3)


# ------------------------------------------------------------ friction


@pytest.mark.parametrize("size", [64, 4096, 1 << 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_are_not_a_vectors_file(tmp_path, size, seed):
    data = np.random.default_rng(seed).bytes(size)
    for fmt in ("auto", "glove"):
        message = error_of(write(tmp_path, data), format=fmt)
        assert "not a vectors file" in message, message


def test_wrong_count_message_says_how_many_values(tmp_path):
    lines = [" ".join([f"w{i}"] + ["1"] * 20) for i in range(6)]
    lines.append(" ".join(["w7"] + ["1"] * 19))
    path = write(tmp_path, "\n".join(lines) + "\nw8" + " 1" * 20 + "\n")
    message = error_of(path)
    assert (
        "line 7 has 20 fields (a token and 19 values); expected a token "
        "followed by 20 values." in message
    )


def test_no_warning_for_clean_files(tmp_path):
    path = write(tmp_path, "a 1 2\nb 3 4\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_vectors(path, nonfinite="skip").words == ["a", "b"]


# ------------------------------------------- fastText .bin models (issue 15)

FT_WORDS = ["chat", "café"]


def ft_model(**kwargs):
    # 2 words + 5 buckets, dim 3
    matrix = np.arange(21, dtype=np.float32).reshape(7, 3) / 8
    return fasttext_model(FT_WORDS, matrix, minn=2, maxn=3, **kwargs)


# Where the parts of `ft_model()` start: args at 8, dictionary at 64,
# entries at 92 ("chat\0" + 9, "café\0" + 9: 29 bytes), quant byte at 121,
# matrix header at 122, values at 138 (84 bytes), output matrix at 222.
@pytest.mark.parametrize(
    "cut, where",
    [(3, "byte offset 0"), (30, "byte offset 8"), (70, "byte offset 64"),
     (100, "byte offset 92"), (121, "byte offset 121"),
     (130, "byte offset 122"), (200, "byte offset 138"),
     (222, "byte offset 222"), (230, "byte offset 223"),
     (240, "byte offset 223")],
)
def test_fasttext_truncated_anywhere(tmp_path, cut, where):
    data = ft_model()
    assert load_vectors(write(tmp_path, data, "m.bin")).words == FT_WORDS
    message = error_of(write(tmp_path, data[:cut], "m.bin"),
                       format="fasttext-binary")
    assert where in message and "fastText" in message


def test_fasttext_truncated_file_is_detected_by_content(tmp_path):
    message = error_of(write(tmp_path, ft_model()[:200], "m.bin"))
    assert "truncated" in message and "byte offset 138" in message


@pytest.mark.parametrize(
    "offset, value, expected",
    [
        (0, struct.pack("<i", 793712315), "magic number is 793712315"),
        (4, struct.pack("<i", 13), "byte offset 4: the format version is 13"),
        (8, struct.pack("<i", 0), "dim=0"),
        (8, struct.pack("<i", 1 << 30), "dim=1,073,741,824"),
        (40, struct.pack("<i", -1), "bucket=-1"),
        (44, struct.pack("<i", 1000), "minn=1,000"),
        (64, struct.pack("<i", 2**31 - 1), "size=2,147,483,647"),
        (68, struct.pack("<i", 3), "nwords=3"),
        (84, struct.pack("<q", 5), "pruneidx_size=5"),
        (121, b"\x01", "quantized"),
        (122, struct.pack("<q", 6), "input matrix is 6 x 3"),
        (122, struct.pack("<q", 2**62), "needs 7 x 3"),
        (130, struct.pack("<q", 4), "needs 7 x 3"),
        (223, struct.pack("<q", 2**40), "output matrix"),
    ],
    ids=["magic", "version", "dim-0", "dim-huge", "bucket", "minn",
         "size-huge", "nwords", "pruned", "ftz", "rows-smaller",
         "rows-huge", "cols", "output-huge"],
)
def test_fasttext_bad_header_values(tmp_path, offset, value, expected):
    data = bytearray(ft_model())
    data[offset:offset + len(value)] = value
    message = error_of(write(tmp_path, bytes(data), "m.bin"),
                       format="fasttext-binary")
    assert expected in message and "byte offset" in message


def test_fasttext_matrix_smaller_than_its_header(tmp_path):
    # The header's bucket (50) needs 52 rows; the matrix has 7.
    data = ft_model(bucket=50)
    message = error_of(write(tmp_path, data, "m.bin"))
    assert "input matrix is 7 x 3; the header needs 52 x 3" in message


def test_fasttext_invalid_utf8_in_the_dictionary(tmp_path):
    # fastText reads words as bytes: the word is kept, with one warning
    # naming where it is ("ok\0" + 9 bytes = 12; then "caf", the bad byte).
    data = fasttext_model([b"ok", b"caf\xe9"], np.zeros((4, 2), np.float32))
    path = write(tmp_path, data, "m.bin")
    with pytest.warns(UserWarning, match=r"m\.bin: 1 dictionary word\(s\) "
                      r"are not valid UTF-8; the first, b'caf\\xe9', at "
                      "byte offset 107"):
        vectors = load_vectors(path)
    assert vectors.words == ["ok", "caf\udce9"]
    for errors, word in [("replace", "caf\ufffd"), ("ignore", "caf")]:
        assert load_vectors(path, unicode_errors=errors).words == [
            "ok", word]


def test_fasttext_bad_dictionary_entry(tmp_path):
    data = fasttext_model([b"ok", b"w" * (MAX_TOKEN + 1)],
                          np.zeros((4, 2), np.float32))
    message = error_of(write(tmp_path, data, "m.bin"))
    assert "byte offset 104: dictionary entry 2 of 2" in message
    assert "no NUL ends the word" in message


def fnv(text):
    """fastText's hash of `text`: FNV-1a over its bytes, sign-extended."""
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ (byte | (0xFFFFFF00 if byte > 127 else 0)))
             * 16777619) % 2**32
    return h


def test_fasttext_empty_word_is_a_word(tmp_path):
    # As fastText reads it: "" is the word "<>" (its row, no 2-3 n-gram
    # but "<>" itself).
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = fasttext_model([b"ok", b""], matrix, minn=2, maxn=3, bucket=2)
    vectors = load_vectors(write(tmp_path, data, "m.bin"))
    assert vectors.words == ["ok", ""] and "" in vectors
    np.testing.assert_array_equal(
        vectors[""], matrix[[1, 2 + fnv("<>") % 2]].mean(axis=0))


def test_fasttext_compressed_model_is_refused(tmp_path):
    path = write(tmp_path, gzip.compress(ft_model()), "m.bin.gz")
    assert "decompress it first" in error_of(path, format="fasttext-binary")


def test_fasttext_model_vectors_are_fasttexts(tmp_path):
    # "ab" is "<ab>": n-grams "<a", "ab", "b>", "<ab", "ab>" (2-3 chars).
    matrix = np.random.default_rng(0).normal(size=(1003, 4))
    data = fasttext_model(["ab"], matrix, minn=2, maxn=3)
    vectors = load_vectors(write(tmp_path, data, "m.bin"))

    for word, grams in [("ab", ["<a", "ab", "b>", "<ab", "ab>"]),
                        ("é", ["<é", "é>", "<é>"])]:
        rows = [1 + fnv(g) % 1002 for g in grams]
        rows = [0] + rows if word == "ab" else rows
        expected = matrix[rows].astype(np.float32).mean(axis=0)
        np.testing.assert_allclose(vectors[word], expected, atol=1e-6)
