"""Tests for reading and writing word-vector files (NumPy only)."""

import bz2
import gzip
import lzma
import pickle
import re
import struct

import numpy as np
import pytest
from gensim.models import KeyedVectors
from vector_helpers import (  # noqa: F401
    assert_bits_equal,
    seed_everything,
    write,
)

from keras_embedlab import vectors as _vector_formats
from keras_embedlab.vectors import VectorFileError, Vectors, load_vectors

# The code under test never reads KERAS_BACKEND: `make test` runs this
# module in its first backend's session only (pyproject.toml, markers).
pytestmark = pytest.mark.backend_independent

COMPRESSORS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}
TEXT_WORDS = ["the", ". . .", "at\u00a0name@domain.com", "x\u0085y", "東京"]


def binary_record(token, values):
    return token + b" " + struct.pack(f"<{len(values)}f", *values)


def random_vectors(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    return Vectors(words, rng.normal(0, 0.5, (n, dim)).astype(np.float32))


def special_matrix():
    return np.array(
        [
            [0.1, -0.0, 1e-45, 3.4028235e38],
            [np.nan, np.inf, -np.inf, 1e-30],
            [-1.5, 123456.789, 7.0, 1.0 / 3.0],
            [2.5e-5, -9.87654e10, 0.0, 1e-7],
            [np.float32(0.3), 12345678.0, -0.000123, 65504.0],
        ],
        np.float32,
    )


# ---------------------------------------------------------------- Vectors


def test_vectors_attributes_and_lookup():
    vectors = Vectors(["king", "queen"], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert vectors.words == ["king", "queen"]
    assert vectors.matrix.dtype == np.float32
    assert vectors.matrix.shape == (2, 3)
    assert vectors.dim == 3
    assert len(vectors) == 2
    assert "queen" in vectors and "Queen" not in vectors
    np.testing.assert_array_equal(vectors["queen"], [4.0, 5.0, 6.0])
    assert vectors["queen"].shape == (3,)
    assert vectors.index("queen") == 1
    with pytest.raises(KeyError, match="'prince' is not among these 2"):
        vectors["prince"]
    assert "2 words, dim=3" in repr(vectors)


def test_vectors_converts_to_float32():
    vectors = Vectors(np.array(["a", "b"]), np.arange(6).reshape(2, 3))
    assert vectors.matrix.dtype == np.float32
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors["b"], [3.0, 4.0, 5.0])


@pytest.mark.parametrize(
    "words, matrix, message",
    [
        pytest.param(["a", "a"], np.zeros((2, 2)), "unique", id="duplicate"),
        pytest.param(["a", 1], np.zeros((2, 2)), "only strings", id="int"),
        pytest.param("ab", np.zeros((2, 2)), "single string", id="str"),
        pytest.param(["a"], np.zeros(2), "2-D", id="1d"),
        pytest.param(["a"], np.zeros((2, 2)), "len\\(words\\)", id="rows"),
        pytest.param(["a"], np.zeros((1, 0)), "dim >= 1", id="dim0"),
        pytest.param(["a"], [["x", "y"]], "real numbers", id="strings"),
        pytest.param(["a"], np.ones((1, 2), bool), "real numbers", id="bool"),
    ],
)
def test_vectors_rejects_bad_arguments(words, matrix, message):
    with pytest.raises(ValueError, match=message):
        Vectors(words, matrix)


def test_vectors_duplicate_message_names_positions():
    with pytest.raises(ValueError, match="'b' at positions 1 and 2"):
        Vectors(["a", "b", "b"], np.zeros((3, 2)))


# ------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", list(COMPRESSORS), ids=lambda s: s or "raw")
@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_save_load_round_trip_is_bit_exact(tmp_path, fmt, suffix):
    words = ["the", "naïve", "東京", "a\u00a0b", "x\u0085y", "e-mail"]
    if fmt != "word2vec-binary":
        words[-1] = "e mail name@domain.com"
    matrix = special_matrix()
    matrix = np.concatenate([matrix, -matrix[:1]])
    path = tmp_path / f"vectors{suffix}"
    Vectors(words, matrix).save(path, format=fmt)
    magic = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".xz": b"\xfd7zXZ"}
    assert path.read_bytes().startswith(magic.get(suffix, b""))
    for fmt_arg in ("auto", fmt):
        # The matrix holds NaN and inf, which load only on request.
        loaded = load_vectors(path, format=fmt_arg, nonfinite="keep")
        assert loaded.words == words
        assert_bits_equal(loaded.matrix, matrix)


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_round_trip_many_rows_across_chunks(tmp_path, fmt):
    vectors = random_vectors(6000, 50, seed=3)  # several 512 KB chunks
    path = tmp_path / "big.vec"
    vectors.save(path, format=fmt)
    assert path.stat().st_size > 2 * _vector_formats.CHUNK_SIZE
    loaded = load_vectors(path)
    assert loaded.words == vectors.words
    assert_bits_equal(loaded.matrix, vectors.matrix)


@pytest.mark.parametrize("fmt", ["word2vec-text", "glove"])
def test_result_grows_past_the_first_allocation(tmp_path, fmt):
    # Compressed: rows are allocated 65,536 at a time. GloVe: the row count
    # is estimated from the first lines, here much longer than the rest.
    long_words = [f"{i}" + "x" * 6000 for i in range(100)]
    words = long_words + [f"w{i}" for i in range(70_000)]
    matrix = np.arange(2 * len(words), dtype=np.float32).reshape(-1, 2)
    path = tmp_path / ("v.gz" if fmt == "word2vec-text" else "v.txt")
    Vectors(words, matrix).save(path, format=fmt)
    loaded = load_vectors(path)
    assert loaded.words == words
    assert_bits_equal(loaded.matrix, matrix)


def test_huge_header_count_is_truncated_not_out_of_memory(tmp_path):
    data = b"99999999999999 2\na 1 2\n"
    for name, compress in (("v.txt", bytes), ("v.gz", gzip.compress)):
        with pytest.raises(VectorFileError, match="truncated"):
            load_vectors(write(tmp_path, compress(data), name))


def test_format_is_detected_from_content_not_name(tmp_path):
    vectors = random_vectors(4, 3)
    vectors.save(tmp_path / "binary.txt", format="word2vec-binary")
    vectors.save(tmp_path / "glove.bin", format="glove")
    vectors.save(tmp_path / "text.gz.bin", format="word2vec-text")
    for name in ("binary.txt", "glove.bin", "text.gz.bin"):
        loaded = load_vectors(tmp_path / name)
        assert loaded.words == vectors.words
        assert_bits_equal(loaded.matrix, vectors.matrix)


def test_text_writer_uses_nine_significant_digits(tmp_path):
    path = tmp_path / "v.txt"
    Vectors(["a"], [[0.1, -2.0, 1e-30]]).save(path)
    # float32(1e-30) is 1.0000000031710769e-30: 9 digits print "1e-30".
    assert path.read_text() == "1 3\na 0.100000001 -2 1e-30\n"


def test_binary_writer_layout(tmp_path):
    path = tmp_path / "v.bin"
    Vectors(["ab", "c"], [[1.0, -2.0], [0.5, 3.0]]).save(
        path, format="word2vec-binary"
    )
    expected = (
        b"2 2\n"
        + binary_record(b"ab", [1.0, -2.0])
        + b"\n"
        + binary_record(b"c", [0.5, 3.0])
        + b"\n"
    )
    assert path.read_bytes() == expected


@pytest.mark.parametrize(
    "word, fmt, problem",
    [
        pytest.param("", "glove", "empty", id="empty"),
        pytest.param(" a", "word2vec-text", "whitespace", id="leading-space"),
        pytest.param("a\t", "glove", "whitespace", id="trailing-tab"),
        pytest.param("a\nb", "word2vec-text", "line break", id="newline"),
        pytest.param("a\rb", "glove", "line break", id="cr"),
        pytest.param("a b", "word2vec-binary", "space", id="binary-space"),
        pytest.param("a\x01", "word2vec-binary", "control", id="control"),
        pytest.param("pi 3.14", "glove", "number", id="ends-in-number"),
    ],
)
def test_save_rejects_unwritable_tokens(tmp_path, word, fmt, problem):
    with pytest.raises(ValueError, match=problem):
        Vectors([word], [[1.0, 2.0]]).save(tmp_path / "v", format=fmt)


# The round-trip property: `save` either refuses (a ValueError naming the
# word) or writes what `load_vectors` reads back bit-exact. An oracle of
# what each format can hold, written from the documented rules:
ALPHABET = list("abxyz019.-+eE_") + [" ", " ", "\t", "é", "東", "\u00a0"]
ALPHABET += ["\u0085", "\u3000", "\x01", "\x0b", "\x0c", "\x1f", "\x7f"]
ALPHABET += ["\r", "\n", "nan", "inf", "1e5", "-0"]
SPECIAL_BITS = [
    0x00000000, 0x80000000, 0x3F800000, 0x00000001, 0x807FFFFF, 0x7F7FFFFF,
    0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7FC00001, 0xFFFFFFFF,
]  # fmt: skip
MAX_TOKEN = _vector_formats.MAX_TOKEN_BYTES


def oracle_is_number(field):
    if not re.fullmatch(r"[!-~]+", field) or "_" in field:
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def oracle_token_ok(word, fmt):
    token = word.encode("utf-8")
    if not token or len(token) > MAX_TOKEN or "\n" in word or "\r" in word:
        return False
    if word[0] in " \t" or word[-1] in " \t":
        return False
    if fmt == "word2vec-binary":  # no spaces or control bytes but tab
        return all(byte == 9 or byte > 32 for byte in token)
    fields = re.split(r"[ \t]+", word)
    return len(fields) == 1 or not oracle_is_number(fields[-1])


def oracle_values_ok(bits, fmt):
    """Text holds NaN only as nan and -nan."""
    nan = ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)
    odd = nan & ((bits & 0x7FFFFFFF) != 0x7FC00000)
    return fmt == "word2vec-binary" or not odd.any()


def random_case(rng):
    n, dim = int(rng.integers(1, 12)), int(rng.integers(1, 6))
    words = []
    while len(words) < n:
        word = "".join(rng.choice(ALPHABET, int(rng.integers(1, 8))))
        if rng.random() < 0.02:
            word = "é" * int(
                rng.integers(MAX_TOKEN // 2 - 1, MAX_TOKEN // 2 + 2)
            )
        if word not in words:
            words.append(word)
    bits = rng.integers(0, 2**32, (n, dim), dtype=np.uint64).astype(np.uint32)
    special = rng.random((n, dim)) < 0.3
    bits[special] = rng.choice(SPECIAL_BITS, int(special.sum()))
    if rng.random() < 0.3:  # everyday values, short decimals
        values = np.round(rng.normal(0, 2, (n, dim)), int(rng.integers(0, 4)))
        bits = values.astype(np.float32).view(np.uint32)
    return words, bits


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_save_load_round_trip_property(tmp_path, fmt):
    rng = np.random.default_rng(["word2vec-text", "word2vec-binary"].count(fmt))
    written = refused = 0
    for case in range(150):
        words, bits = random_case(rng)
        path = tmp_path / f"v{case}{rng.choice(['', '.gz', '.bz2', '.xz'])}"
        ok_tokens = [oracle_token_ok(w, fmt) for w in words]
        ok_rows = [oracle_values_ok(row, fmt) for row in bits]
        vectors = Vectors(words, bits.view(np.float32))
        if not all(ok_tokens) or not all(ok_rows):
            with pytest.raises(ValueError) as info:
                vectors.save(path, format=fmt)
            # Tokens are checked first, then values; the first is named.
            bad = [w for w, ok in zip(words, ok_tokens) if not ok]
            bad = bad or [w for w, ok in zip(words, ok_rows) if not ok]
            assert repr(bad[0][:40])[:-1] in str(info.value), case
            assert not path.exists()
            refused += 1
            keep = [i for i, ok in enumerate(ok_tokens) if ok and ok_rows[i]]
            if not keep:
                continue
            words, bits = [words[i] for i in keep], bits[keep]
            vectors = Vectors(words, bits.view(np.float32))
        vectors.save(path, format=fmt)
        written += 1
        formats = [fmt, "auto"]
        first_value = "%.9g" % bits.view(np.float32)[0, 0]
        if fmt == "glove" and bits.shape[1] == 1 and words[0].isdecimal():
            if first_value.isdecimal():  # "12 3" reads as a header (docs)
                formats.remove("auto")
        for fmt_arg in formats:
            loaded = load_vectors(path, format=fmt_arg, nonfinite="keep")
            assert loaded.words == words, (case, fmt_arg)
            assert_bits_equal(loaded.matrix, bits.view(np.float32))
    assert written > 100 and refused > 20, (written, refused)


def test_save_rejects_bad_format_and_empty_glove(tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of"):
        random_vectors(2, 2).save(tmp_path / "v", format="auto")
    empty = Vectors([], np.zeros((0, 3)))
    with pytest.raises(ValueError, match="0 vectors"):
        empty.save(tmp_path / "v", format="glove")
    empty.save(tmp_path / "v", format="word2vec-text")
    loaded = load_vectors(tmp_path / "v")
    assert len(loaded) == 0 and loaded.dim == 3


# ------------------------------------------------------------ messy files


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
def test_tokens_with_spaces_and_unicode_spaces(tmp_path, header):
    lines = [f"{w} {i}.5 -{i}.25" for i, w in enumerate(TEXT_WORDS)]
    text = ("5 2\n" if header else "") + "\n".join(lines) + "\n"
    vectors = load_vectors(write(tmp_path, text))
    assert vectors.words == TEXT_WORDS
    np.testing.assert_array_equal(vectors[". . ."], [1.5, -1.25])
    np.testing.assert_array_equal(vectors["x\u0085y"], [3.5, -3.25])


def test_latin1_non_breaking_space_bytes_are_not_separators(tmp_path):
    data = b"2 2\ncaf\xe9\xa0au\xa0lait 1 2\nnext\x85line 3 4\n"
    vectors = load_vectors(write(tmp_path, data), encoding="latin-1")
    assert vectors.words == ["café\u00a0au\u00a0lait", "next\u0085line"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2 3\r\na 1 2 3\r\nb 4 5 6\r\n", id="crlf"),
        pytest.param("2 3\na 1 2 3 \nb 4 5 6 \n", id="fasttext-space"),
        pytest.param("2 3\na 1 2 3  \t\nb 4 5 6\t\n", id="trailing-tabs"),
        pytest.param("2 3\na 1 2 3\nb 4 5 6", id="no-final-newline"),
        pytest.param("2 3 \r\na\t1\t2\t3\r\nb  4   5 6", id="tabs-runs"),
        pytest.param("2 3\n\na 1 2 3\n\n\nb 4 5 6\n\n", id="blank-lines"),
        pytest.param("\ufeff2 3\na 1 2 3\nb 4 5 6\n", id="bom"),
        pytest.param("a 1 2 3\r\nb 4 5 6", id="glove-crlf-no-newline"),
        pytest.param("  a 1 2 3\n b 4 5 6 \n", id="glove-leading-space"),
    ],
)
def test_line_ending_and_whitespace_variants(tmp_path, text):
    vectors = load_vectors(write(tmp_path, text))
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2, 3], [4, 5, 6]])


def test_number_syntax_matches_python_float(tmp_path):
    fields = [
        "0", "-0", ".5", "5.", "-.5", "+1.5", "1e-05", "1E+3", "-2.5e-7",
        "nan", "-inf", "0.12345678901234567", "1234567890123456789",
        "0.000000001", "12345678.9", "99999999.9999999",
    ]  # fmt: skip
    data = "tok " + " ".join(fields) + "\n"
    vectors = load_vectors(write(tmp_path, data), nonfinite="keep")
    expected = np.array([float(f) for f in fields], np.float32)
    assert_bits_equal(vectors["tok"], expected)


def test_mixed_formatting_across_chunks_matches_reference(tmp_path):
    rng = np.random.default_rng(7)
    formats = ["%.6f", "%.5g", "%g", "%e", "%.9g", "%.17g", "%.3f"]
    lines, expected = [], []
    for i in range(4000):
        values = rng.normal(0, 10.0 ** rng.integers(-6, 6), 30)
        fmt = formats[i % len(formats)]
        fields = [fmt % v for v in values]
        token = f"tok {i}x" if i % 97 == 0 else f"w{i}"
        lines.append(token + " " + " ".join(fields))
        expected.append([float(f) for f in fields])
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert path.stat().st_size > 2 * _vector_formats.CHUNK_SIZE
    vectors = load_vectors(path)
    assert len(vectors) == 4000 and vectors.words[97] == "tok 97x"
    assert_bits_equal(vectors.matrix, np.array(expected))


@pytest.mark.parametrize(
    "text, line, count",
    [
        pytest.param("3 3\na 1 2 3\nb 1 2\nc 1 2 3\n", 3, 2, id="short"),
        pytest.param("3 3\na 1 2 3\nb 1\nc 1 2 3\n", 3, 1, id="one-value"),
        pytest.param("a 1 2 3\nb 1 2 3\nc 1 2\n", 3, 2, id="glove-short"),
        pytest.param("a 1 2\nb 1 2\nc\t1\n", 3, 1, id="glove-tab"),
    ],
)
def test_wrong_number_of_values_names_file_and_line(
    tmp_path, text, line, count
):
    path = write(tmp_path, text)
    with pytest.raises(VectorFileError) as info:
        load_vectors(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line} has {count + 1} fields" in message


def test_too_many_values_is_an_error_not_a_token(tmp_path):
    path = write(tmp_path, "2 2\na 1 2\nb 1 2 3\n")
    with pytest.raises(VectorFileError, match="line 3 has more than 2 values"):
        load_vectors(path)


def test_bad_row_deep_in_a_large_file_reports_its_line(tmp_path):
    vectors = random_vectors(20000, 10)
    path = tmp_path / "v.txt"
    vectors.save(path)
    lines = path.read_bytes().split(b"\n")
    lines[15000] = b"broken 1 2 3"  # line 15001, in a later chunk
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(VectorFileError, match="line 15001 has 4 fields"):
        load_vectors(path)


def test_unparsable_value_names_line_and_column(tmp_path):
    path = write(tmp_path, "2 3\na 1 2 3\nb 4 x5 6\n")
    with pytest.raises(VectorFileError) as info:
        load_vectors(path)
    assert "line 3: value 2 of 3, b'x5', is not a number" in str(info.value)
    for bad in ("1_0", "0x10", "--1", "1.2.3"):
        path = write(tmp_path, f"a 1 {bad}\n")
        with pytest.raises(VectorFileError, match="line 1: value 2 of 2"):
            load_vectors(path)


def test_last_line_cut_short_mentions_truncation(tmp_path):
    path = write(tmp_path, "a 1 2 3\nb 4 5")
    with pytest.raises(VectorFileError, match="may be truncated"):
        load_vectors(path)


def test_header_count_larger_than_rows_is_truncated(tmp_path):
    path = write(tmp_path, "4 2\na 1 2\nb 3 4\nc 5 6\n")
    with pytest.raises(VectorFileError) as info:
        load_vectors(path)
    assert "truncated" in str(info.value) and str(path) in str(info.value)
    assert "says 4 vectors but it has only 3" in str(info.value)
    vectors = load_vectors(path, limit=2)  # a limit below the count is fine
    assert vectors.words == ["a", "b"]
    with pytest.raises(VectorFileError, match="truncated"):
        load_vectors(path, limit=4)


def test_more_rows_than_header_count_is_an_error(tmp_path):
    path = write(tmp_path, "2 2\na 1 2\nb 3 4\nc 5 6\n")
    with pytest.raises(VectorFileError, match="line 4: the header says 2"):
        load_vectors(path)
    assert load_vectors(path, limit=2).words == ["a", "b"]


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
def test_binary_cut_mid_vector_is_truncated(tmp_path, suffix):
    data = b"3 4\n" + b"".join(
        binary_record(w, [1.0, 2.0, 3.0, 4.0]) + b"\n" for w in (b"a", b"b")
    )
    data += binary_record(b"c", [1.0, 2.0, 3.0, 4.0])[:-3]
    path = write(tmp_path, COMPRESSORS[suffix](data), "v.bin" + suffix)
    with pytest.raises(VectorFileError, match="truncated") as info:
        load_vectors(path)
    assert str(path) in str(info.value)
    vectors = load_vectors(path, limit=2)
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors["b"], [1, 2, 3, 4])


def test_binary_with_and_without_newlines_after_vectors(tmp_path):
    records = [binary_record(w, [i, -i]) for i, w in enumerate([b"a", b"b"])]
    for sep in (b"", b"\n"):
        path = write(tmp_path, b"2 2\n" + sep.join(records) + sep, "v.bin")
        vectors = load_vectors(path)
        assert vectors.words == ["a", "b"]
        np.testing.assert_array_equal(vectors.matrix, [[0, 0], [1, -1]])


@pytest.mark.parametrize("suffix", ["", ".xz"], ids=["raw", "xz"])
@pytest.mark.parametrize("header_dim", [2, 8], ids=["too-small", "too-big"])
def test_binary_header_dim_that_does_not_fit(tmp_path, header_dim, suffix):
    rng = np.random.default_rng(0)
    records = [binary_record(b"w%d" % i, rng.normal(size=4)) for i in range(3)]
    data = f"3 {header_dim}\n".encode() + b"\n".join(records) + b"\n"
    path = write(tmp_path, COMPRESSORS[suffix](data), "v.bin" + suffix)
    with pytest.raises(VectorFileError, match="dim") as info:
        load_vectors(path)
    assert str(path) in str(info.value)


def test_corrupt_compressed_file(tmp_path):
    data = gzip.compress(b"2 2\na 1 2\nb 3 4\n" * 1000)
    path = write(tmp_path, data[: len(data) // 2], "v.gz")
    with pytest.raises(VectorFileError, match="gzip data is corrupt or trunc"):
        load_vectors(path)


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_duplicates_first_wins_with_one_warning(tmp_path, fmt):
    words = ["a", "b", "a", "c", "b", "a"]
    matrix = np.arange(12, dtype=np.float32).reshape(6, 2)
    path = tmp_path / "v"
    with open(path, "wb") as f:
        tokens = [w.encode() for w in words]
        _vector_formats.write_vectors(f, tokens, matrix, fmt)
    with pytest.warns(UserWarning) as record:
        vectors = load_vectors(path)
    assert len(record) == 1
    assert "dropped 3 duplicate token(s)" in str(record[0].message)
    assert "'a' at " in str(record[0].message)
    assert vectors.words == ["a", "b", "c"]
    np.testing.assert_array_equal(vectors.matrix, matrix[[0, 1, 3]])
    assert vectors.index("c") == 2


def test_invalid_encoding_strict_names_line(tmp_path):
    path = write(tmp_path, b"2 2\nok 1 2\ncaf\xe9 3 4\n")
    with pytest.raises(VectorFileError) as info:
        load_vectors(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message
    assert "not valid utf-8" in message and "unicode_errors" in message
    replaced = load_vectors(path, unicode_errors="replace")
    assert replaced.words == ["ok", "caf\ufffd"]
    np.testing.assert_array_equal(replaced["caf\ufffd"], [3, 4])
    assert load_vectors(path, unicode_errors="ignore").words == ["ok", "caf"]
    assert load_vectors(path, encoding="latin-1").words == ["ok", "café"]


def test_invalid_encoding_in_binary_names_byte_offset(tmp_path):
    data = b"2 1\n" + binary_record(b"ok", [1.0]) + binary_record(b"\xff", [2])
    path = write(tmp_path, data, "v.bin")
    with pytest.raises(VectorFileError, match="byte offset 11"):
        load_vectors(path)
    assert load_vectors(path, unicode_errors="replace").words == [
        "ok",
        "\ufffd",
    ]


@pytest.mark.parametrize(
    "data, fmt, message",
    [
        pytest.param(b"", "auto", "empty", id="empty"),
        pytest.param(b"\n  \r\n", "auto", "empty", id="blank"),
        pytest.param(b"3 x\na 1\n", "word2vec-text", "two integers", id="hdr"),
        pytest.param(b"a 1 2\n", "word2vec-binary", "two integers", id="bin"),
        pytest.param(b"3 0\n", "auto", "dim=0", id="dim0"),
        pytest.param(b"3 2 1\na 1 2 3 4\n", "auto", "line 1 has 3", id="3"),
        pytest.param(b"x 4\na 1 2 3\n", "auto", "must be two integers", id="x"),
        pytest.param(b"justtokens\nmore\n", "auto", "no values", id="novals"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, data, fmt, message):
    path = write(tmp_path, data)
    with pytest.raises(VectorFileError, match=message) as info:
        load_vectors(path, format=fmt)
    assert str(path) in str(info.value)


def test_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = write(tmp_path, pickle.dumps(Payload()), "vectors.pkl")
    with pytest.raises(VectorFileError):
        load_vectors(path)
    assert not marker.exists()
    np.save(tmp_path / "m.npy", np.zeros((2, 2)))
    with pytest.raises(VectorFileError):
        load_vectors(tmp_path / "m.npy")


def test_zero_count_header(tmp_path):
    vectors = load_vectors(write(tmp_path, "0 5\n"))
    assert len(vectors) == 0 and vectors.matrix.shape == (0, 5)


# ------------------------------------------------- vocabulary and limit


def test_vocabulary_keeps_file_order_and_skips_other_rows(tmp_path):
    # Rows outside the vocabulary are not parsed: their bad values pass.
    text = "4 2\nb 1 2\nskip not numbers\na 3 4\nmissing? 5 6\n"
    path = write(tmp_path, text)
    vectors = load_vectors(path, vocabulary={"a", "b", "zzz"})
    assert vectors.words == ["b", "a"]
    np.testing.assert_array_equal(vectors.matrix, [[1, 2], [3, 4]])
    for vocabulary in (["a"], ("a",), {"a": 0}, frozenset(["a"]), iter("a")):
        assert load_vectors(path, vocabulary=vocabulary).words == ["a"]
    with pytest.raises(VectorFileError, match="line 3"):
        load_vectors(path, vocabulary={"skip"})


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_vocabulary_across_chunks(tmp_path, fmt):
    vectors = random_vectors(8000, 40, seed=1)
    path = tmp_path / "v"
    vectors.save(path, format=fmt)
    wanted = {f"w{i}" for i in range(5, 8000, 7)} | {"absent"}
    loaded = load_vectors(path, vocabulary=wanted)
    expected = [w for w in vectors.words if w in wanted]
    assert loaded.words == expected
    rows = [vectors.index(w) for w in expected]
    assert_bits_equal(loaded.matrix, vectors.matrix[rows])


def test_load_warnings_name_the_callers_line(tmp_path):
    """The duplicate and non-finite warnings point at the caller of
    `load_vectors`, not at the package's own code."""
    path = write(tmp_path, "a 1 2\na 3 4\nb nan 1\nc 5 6\n")
    with pytest.warns(UserWarning) as record:
        vectors = load_vectors(path, nonfinite="skip")
    assert vectors.words == ["a", "c"]
    assert len(record) == 2
    assert [w.filename for w in record] == [__file__] * 2


def test_vocabulary_with_duplicates_and_limit(tmp_path):
    text = "a 1\nb 2\na 3\nc 4\nd 5\n"
    path = write(tmp_path, text)
    with pytest.warns(UserWarning, match="dropped 1 duplicate"):
        vectors = load_vectors(path, vocabulary={"a", "c"})
    assert vectors.words == ["a", "c"]
    np.testing.assert_array_equal(vectors.matrix, [[1], [4]])
    with pytest.warns(UserWarning, match="dropped 1 duplicate"):
        limited = load_vectors(path, vocabulary={"a", "d"}, limit=4)
    assert limited.words == ["a"]  # "d" is row 5, beyond the limit


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "glove"])
def test_limit_reads_first_rows(tmp_path, fmt):
    vectors = random_vectors(50, 3)
    path = tmp_path / "v"
    vectors.save(path, format=fmt)
    loaded = load_vectors(path, limit=7)
    assert loaded.words == vectors.words[:7]
    assert_bits_equal(loaded.matrix, vectors.matrix[:7])
    assert len(load_vectors(path, limit=1000 if fmt == "glove" else 50)) == 50


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"format": "fasttext"}, "format='fasttext'", id="format"),
        pytest.param({"limit": 0}, "limit=0", id="limit0"),
        pytest.param({"limit": -3}, "limit=-3", id="limit-neg"),
        pytest.param({"limit": 2.0}, "limit=2.0", id="limit-float"),
        pytest.param({"limit": True}, "limit=True", id="limit-bool"),
        pytest.param({"unicode_errors": "x"}, "unicode_errors='x'", id="ue"),
        pytest.param({"encoding": "utf-16"}, "encoding='utf-16'", id="u16"),
        pytest.param({"encoding": "nope"}, "encoding='nope'", id="enc"),
        pytest.param({"verbose": 2}, "verbose=2", id="verbose2"),
        pytest.param({"verbose": "yes"}, "verbose='yes'", id="verbose-s"),
        pytest.param({"vocabulary": "abc"}, "single string", id="vocab-str"),
        pytest.param({"vocabulary": [1, 2]}, "only strings", id="vocab-int"),
    ],
)
def test_load_rejects_bad_arguments(tmp_path, kwargs, message):
    path = write(tmp_path, "a 1 2\n")
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        load_vectors(path, **kwargs)
    assert message in str(info.value)
    assert not isinstance(info.value, VectorFileError)


# --------------------------------------------------------------- progress


def test_progress_bar_follows_verbose(tmp_path, capsys):
    path = tmp_path / "v.txt"
    random_vectors(100, 4).save(path)
    load_vectors(path, verbose=1)
    err = capsys.readouterr().err
    assert "Loading v.txt" in err and "MB/s" in err and err.endswith("\n")
    for verbose in (0, False, "auto"):  # "auto": stderr is not a terminal
        load_vectors(path, verbose=verbose)
        assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ gensim


def gensim_safe_vectors():
    words = ["the", "naïve", "東京", "a\u00a0b", "Paris", "e-mail"]
    matrix = special_matrix()[:, :3].copy()
    matrix[1] = [0.5, -0.25, 1e-3]  # gensim's text reader: no nan/inf
    matrix = np.concatenate([matrix, matrix[:1] * 2])
    return Vectors(words, matrix)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_gensim_reads_our_word2vec_files(tmp_path, binary):
    vectors = gensim_safe_vectors()
    path = tmp_path / "v"
    vectors.save(path, format="word2vec-binary" if binary else "word2vec-text")
    keyed = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert list(keyed.index_to_key) == vectors.words
    assert_bits_equal(keyed.vectors, vectors.matrix)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_we_read_gensim_word2vec_files(tmp_path, binary):
    vectors = gensim_safe_vectors()
    keyed = KeyedVectors(vector_size=vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix)
    path = tmp_path / "v"
    keyed.save_word2vec_format(str(path), binary=binary)
    loaded = load_vectors(path)
    assert loaded.words == vectors.words
    assert_bits_equal(loaded.matrix, vectors.matrix)
